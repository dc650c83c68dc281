import type { JSX } from 'react'
import { DeviceGrid } from './features/devices/DeviceGrid'
import { RuntimePanel } from './features/system/RuntimePanel'
import { useAppStore } from './store'

function StatusLine(): JSX.Element {
  const status = useAppStore((s) => s.system.status)
  const error = useAppStore((s) => s.system.error)
  const updates = useAppStore((s) => s.system.updates)
  if (status === 'error' && error) {
    return (
      <p className="status status--error" role="alert" data-testid="status">
        {error.message}
      </p>
    )
  }
  return (
    <p className={`status status--${status}`} data-testid="status" data-updates={updates}>
      {status === 'connecting' ? 'Connecting…' : updates > 0 ? 'Live' : 'Ready'}
    </p>
  )
}

export function App(): JSX.Element {
  const appVersion = useAppStore((s) => s.system.snapshot?.appVersion)
  return (
    <div className="app">
      <header className="app__bar">
        <h1 className="app__title">Talkative Workbench</h1>
        {appVersion && <span className="app__version">v{appVersion}</span>}
        <StatusLine />
      </header>
      <main className="app__main">
        <RuntimePanel />
        <DeviceGrid />
      </main>
    </div>
  )
}
