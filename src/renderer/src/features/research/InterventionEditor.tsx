import { useState, type JSX } from 'react'
import { errorOf } from '../../ipc/client'
import { humanError } from '../../lib/humanErrors'
import { draftForRow, requestFromDraft, type InterventionDraft } from '../../lib/research'
import type { RunView } from '../../store/slices/runsSlice'
import { startResearchRun } from './startResearchRun'

/**
 * The intervention editor for a picked row: strings (one per line, starting with the row's own
 * explanation), positions (the row's, optionally more), where predictions are read, top-k and the
 * continuation length. Run submits an intervene job whose result becomes the active one.
 */
export function InterventionEditor({
  run,
  position,
  onClose
}: {
  run: RunView
  position: number
  onClose(): void
}): JSX.Element {
  const row = run.rows.find((r) => r.position === position)
  const [draft, setDraft] = useState<InterventionDraft>(() =>
    draftForRow(row ?? { position, explanation: '' })
  )
  const [error, setError] = useState<{ field?: string; message: string } | null>(null)
  const [busy, setBusy] = useState(false)
  const set = (field: keyof InterventionDraft, value: string): void => {
    setDraft((d) => ({ ...d, [field]: value }))
    if (error?.field === field) setError(null)
  }
  const submit = async (): Promise<void> => {
    const checked = requestFromDraft(
      draft,
      run.rows.map((r) => r.position)
    )
    if (!checked.ok) {
      setError({ field: checked.field, message: checked.message })
      return
    }
    setBusy(true)
    try {
      await startResearchRun(run, { kind: 'intervene', intervention: checked.request })
      onClose()
    } catch (err) {
      const e = errorOf(err)
      setError({ ...(e.field ? { field: e.field } : {}), message: humanError(e).message })
    } finally {
      setBusy(false)
    }
  }
  const invalid = (field: string): boolean | undefined =>
    error?.field === field || error?.field === `intervention.${field}` || undefined
  return (
    <form
      className="research-editor"
      aria-label="Intervention"
      data-testid="intervention-editor"
      onSubmit={(e) => {
        e.preventDefault()
        void submit()
      }}
    >
      <h3 className="research-editor__title">
        Intervene at position {position}
        {row ? (
          <span className="muted small">
            {' '}
            · token “{row.token}” · explanation “{row.explanation}”
          </span>
        ) : null}
      </h3>
      <label className="research-editor__strings">
        Intervention strings (one per line)
        <textarea
          rows={3}
          value={draft.strings}
          onChange={(e) => set('strings', e.target.value)}
          aria-invalid={invalid('strings')}
          data-testid="intervention-strings"
        />
      </label>
      <div className="research-editor__row">
        <label>
          Positions
          <input
            value={draft.positions}
            onChange={(e) => set('positions', e.target.value)}
            aria-invalid={invalid('positions')}
            title="The picked row's position; add more separated by commas"
            data-testid="intervention-positions"
          />
        </label>
        <label>
          Predict after position
          <input
            value={draft.nextPosition}
            placeholder="each intervened position"
            onChange={(e) => set('nextPosition', e.target.value)}
            aria-invalid={invalid('nextPosition')}
            data-testid="intervention-next-position"
          />
        </label>
        <label>
          Top-k
          <input
            value={draft.topK}
            inputMode="numeric"
            size={4}
            onChange={(e) => set('topK', e.target.value)}
            aria-invalid={invalid('topK')}
            data-testid="intervention-top-k"
          />
        </label>
        <label>
          Continuation tokens
          <input
            value={draft.maxNewTokens}
            inputMode="numeric"
            size={4}
            onChange={(e) => set('maxNewTokens', e.target.value)}
            aria-invalid={invalid('maxNewTokens')}
            data-testid="intervention-max-new-tokens"
          />
        </label>
        <button type="submit" className="primary" disabled={busy} data-testid="intervention-run">
          {busy ? 'Starting…' : 'Run intervention'}
        </button>
        <button type="button" onClick={onClose} data-testid="intervention-cancel">
          Close
        </button>
      </div>
      {error && (
        <p className="inline-error" role="alert" data-testid="intervention-error">
          {error.message}
        </p>
      )}
    </form>
  )
}
