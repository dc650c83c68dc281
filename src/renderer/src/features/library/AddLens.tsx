import { useState, type DragEvent, type FormEvent, type JSX } from 'react'
import type { LibraryGroup } from '@shared/domain/models'
import { call, errorOf } from '../../ipc/client'
import { humanError } from '../../lib/humanErrors'

/** The path Electron gives a dropped file (a browser never learns paths: the field is typed). */
export function droppedFilePath(e: DragEvent): string | null {
  const file = e.dataTransfer.files[0]
  if (!file) return null
  return window.api.pathForFile?.(file) ?? null
}

/**
 * **Add lens…** on a group card: a training checkpoint (`*.pt`, or a run folder) typed, or in
 * Electron dropped onto the card, becomes a lens of the group (`imports:lens`). The import runs as
 * a job listed with the other imports; when the lens was trained on another model's activations
 * (an `-it` model for a `-pt` base), the refusal asks for that model's folder, typed below.
 */
export function AddLens({
  group,
  dropped
}: {
  group: LibraryGroup
  /** A path dropped onto the card (opens the form with it). */
  dropped: string | null
}): JSX.Element {
  const [open, setOpen] = useState(false)
  const [checkpoint, setCheckpoint] = useState('')
  const [orig, setOrig] = useState('')
  const [error, setError] = useState<{ message: string; field?: string } | null>(null)
  const [busy, setBusy] = useState(false)
  const [lastDrop, setLastDrop] = useState<string | null>(null)
  if (dropped !== lastDrop) {
    setLastDrop(dropped)
    if (dropped) {
      setCheckpoint(dropped)
      setOpen(true)
    }
  }

  const submit = (e: FormEvent): void => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    call('imports:lens', {
      checkpoint: checkpoint.trim(),
      folder: group.folder,
      ...(orig.trim() ? { orig: orig.trim() } : {})
    })
      .then(() => {
        setCheckpoint('')
        setOrig('')
        setOpen(false)
      })
      .catch((err: unknown) => {
        const e2 = errorOf(err)
        setError({ message: humanError(e2).message, field: e2.field })
      })
      .finally(() => setBusy(false))
  }

  if (!open) {
    return (
      <button
        type="button"
        className="button button--small"
        onClick={() => setOpen(true)}
        data-testid="add-lens"
      >
        Add lens…
      </button>
    )
  }
  return (
    <form className="add-model__form" onSubmit={submit} data-testid="add-lens-form">
      <label className="small">
        Lens checkpoint (*.pt) or training run folder
        <input
          type="text"
          value={checkpoint}
          placeholder="/path/to/run/checkpoint.pt"
          aria-invalid={error?.field === 'checkpoint'}
          onChange={(e) => setCheckpoint(e.target.value)}
          spellCheck={false}
        />
      </label>
      <label className="small">
        Activations model folder, if not the base (optional)
        <input
          type="text"
          value={orig}
          placeholder="Hugging Face folder or PEFT adapter of orig_model_name"
          aria-invalid={error?.field === 'orig'}
          onChange={(e) => setOrig(e.target.value)}
          spellCheck={false}
        />
      </label>
      {error && (
        <p className="group-card__error" role="alert">
          {error.message}
        </p>
      )}
      <div className="add-model__actions">
        <button
          type="submit"
          className="button button--small button--primary"
          disabled={busy || checkpoint.trim() === ''}
        >
          Import lens
        </button>
        <button type="button" className="button button--small" onClick={() => setOpen(false)}>
          Close
        </button>
      </div>
    </form>
  )
}
