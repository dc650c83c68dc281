import { useState, type JSX } from 'react'
import type { LibraryGroup } from '@shared/domain/models'
import type { SweepRequestInput } from '@shared/domain/research'
import { errorOf } from '../../ipc/client'
import { humanError } from '../../lib/humanErrors'
import { layersFromText } from '../../lib/research'
import type { RunView } from '../../store/slices/runsSlice'
import { startResearchRun } from './startResearchRun'

type LensChoice = NonNullable<SweepRequestInput['lenses']>

/**
 * What a sweep of a picked row explains with, before it starts: at each layer the lens trained
 * there (the job's lens elsewhere), or the job's lens at every layer as the predecessor did; and
 * every layer or a subset of them.
 */
export function SweepPicker({
  run,
  position,
  group,
  onClose
}: {
  run: RunView
  position: number
  group: LibraryGroup | undefined
  onClose(): void
}): JSX.Element {
  const [lenses, setLenses] = useState<LensChoice>('trained')
  const [layersText, setLayersText] = useState('')
  const [error, setError] = useState<{ field: 'layers' | 'lenses' | null; message: string } | null>(
    null
  )
  const [busy, setBusy] = useState(false)
  const depth = group?.base?.layers ?? null
  const lens = group?.lenses.find((l) => l.id === run.summary.lensId)
  const lensName = lens ? `${lens.name} (trained at layer ${lens.layer})` : run.summary.lensId
  const trainedAt = [...new Set(group?.lenses.map((l) => l.layer) ?? [])].sort((a, b) => a - b)

  const submit = async (): Promise<void> => {
    const parsed = layersFromText(layersText, depth)
    if (!parsed.ok) {
      setError({ field: 'layers', message: parsed.message })
      return
    }
    setBusy(true)
    try {
      await startResearchRun(run, {
        kind: 'sweep',
        sweep: { position, lenses, ...(parsed.layers ? { layers: parsed.layers } : {}) }
      })
      onClose()
    } catch (err) {
      const e = errorOf(err)
      setError({
        field: e.field?.startsWith('sweep.layers') ? 'layers' : null,
        message: humanError(e).message
      })
    } finally {
      setBusy(false)
    }
  }

  return (
    <form
      className="research-editor"
      aria-label="Layer sweep"
      data-testid="sweep-picker"
      onSubmit={(e) => {
        e.preventDefault()
        void submit()
      }}
    >
      <h3 className="research-editor__title">Sweep position {position} over the layers</h3>
      <div className="research-editor__row">
        <label>
          Lenses
          <select
            value={lenses}
            onChange={(e) => setLenses(e.target.value as LensChoice)}
            data-testid="sweep-lenses"
          >
            <option value="trained">
              {trainedAt.length > 0
                ? `The lens trained at each layer (layers ${trainedAt.join(', ')}), elsewhere ${lens?.name ?? 'this lens'}`
                : 'The lens trained at each layer, elsewhere this lens'}
            </option>
            <option value="fixed">{`${lensName} at every layer`}</option>
          </select>
        </label>
        <label>
          Layers
          <input
            value={layersText}
            placeholder={depth === null ? 'all layers' : `all ${depth} (0–${depth - 1})`}
            title="Empty for every layer; or layers and ranges, e.g. 0-2, 5"
            onChange={(e) => {
              setLayersText(e.target.value)
              if (error?.field === 'layers') setError(null)
            }}
            aria-invalid={error?.field === 'layers' || undefined}
            data-testid="sweep-layers-input"
          />
        </label>
        <button
          type="submit"
          className="button button--primary button--small"
          disabled={busy}
          data-testid="sweep-run"
        >
          {busy ? 'Starting…' : 'Run sweep'}
        </button>
        <button
          type="button"
          className="button button--small"
          onClick={onClose}
          data-testid="sweep-cancel"
        >
          Close
        </button>
      </div>
      {error && (
        <p className="inline-error" role="alert" data-testid="sweep-error">
          {error.message}
        </p>
      )}
    </form>
  )
}
