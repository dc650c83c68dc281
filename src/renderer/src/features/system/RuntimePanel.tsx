import type { JSX } from 'react'
import { useAppStore } from '../../store'
import { selectProviders } from '../../store/selectors'

/**
 * ONNX Runtime version and which execution providers could start a session here; why one could
 * not is in its tooltip (the bar stays one line).
 */
export function RuntimePanel(): JSX.Element | null {
  const version = useAppStore((s) => s.system.snapshot?.onnxRuntimeVersion)
  const providers = useAppStore(selectProviders)
  if (!version) return null
  return (
    <section className="runtime-panel" aria-label="ONNX Runtime">
      <span className="runtime-panel__version" data-testid="ort-version">
        ONNX Runtime {version}
      </span>
      <ul className="provider-list">
        {providers.map((p) => (
          <li
            key={p.provider}
            className={`provider provider--${p.available ? 'on' : 'off'}`}
            data-testid={`provider-${p.provider}`}
            data-available={p.available}
            title={p.error ?? 'can create a session on this machine'}
          >
            <span className="provider__name">{p.provider}</span>
            <span className="provider__state">{p.available ? 'available' : 'unavailable'}</span>
            {p.error && (
              <span className="provider__why" aria-label={`why: ${p.error}`}>
                ?
              </span>
            )}
          </li>
        ))}
      </ul>
    </section>
  )
}
