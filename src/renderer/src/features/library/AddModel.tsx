import { useMemo, useState, type DragEvent, type FormEvent, type JSX } from 'react'
import type { ImportJob } from '@shared/domain/imports'
import { call, errorOf } from '../../ipc/client'
import { formatBytes } from '../../lib/format'
import { humanError } from '../../lib/humanErrors'
import { useAppStore } from '../../store'
import { importsNewestFirst } from '../../store/slices/importsSlice'

/** `12 s`, `3 min` */
function formatSeconds(s: number): string {
  return s < 90 ? `${Math.ceil(s)} s` : `${Math.round(s / 60)} min`
}

/** The path Electron gives a dropped folder (a browser never learns paths: the field is typed). */
function droppedPath(e: DragEvent): string | null {
  const file = e.dataTransfer.files[0]
  if (!file) return null
  return window.api.pathForFile?.(file) ?? null
}

function ImportRow({ job }: { job: ImportJob }): JSX.Element {
  const [cancelling, setCancelling] = useState(false)
  const p = job.progress
  const fraction = p && p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 0
  return (
    <li className="import-job" data-testid="import-job" data-status={job.status}>
      <div className="import-job__head">
        <strong title={job.source}>{job.folder}</strong>
        <span className="badge">{job.kind === 'base' ? 'model' : job.kind}</span>
        <span className="muted small">{job.status}</span>
        {job.status === 'running' && (
          <button
            type="button"
            className="button button--small button--danger"
            disabled={cancelling}
            onClick={() => {
              setCancelling(true)
              call('imports:cancel', { importId: job.id }).catch(() => setCancelling(false))
            }}
          >
            {cancelling ? 'Cancelling…' : 'Cancel'}
          </button>
        )}
      </div>
      {job.status === 'running' && p && (
        <div className="import-job__progress" data-testid="import-progress">
          <progress max={1} value={fraction} aria-label={`import of ${job.folder}`} />
          <span className="small">
            {p.stage}
            {p.tensorsTotal > 0 && ` · ${p.tensorsDone}/${p.tensorsTotal} tensors`}
            {p.bytesTotal > 0 && ` · ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}`}
            {p.mbPerSecond !== null && ` · ${p.mbPerSecond.toFixed(0)} MB/s`}
            {p.etaSeconds !== null &&
              p.bytesDone < p.bytesTotal &&
              ` · ${formatSeconds(p.etaSeconds)} left`}
          </span>
        </div>
      )}
      {job.status === 'done' && job.result && (
        <p className="small" data-testid="import-result">
          Added {job.result.name}: {job.result.architecture}, {job.result.checkpointDtype} → runs in{' '}
          {job.result.graphDtype}
        </p>
      )}
      {job.status === 'done' && job.lens && (
        <p className="small" data-testid="import-result">
          Added lens {job.lens.name}: layer {job.lens.layer}, T {job.lens.explanationTokens}
          {job.lens.orig !== 'base' && `, activations from ${job.lens.orig}`}
        </p>
      )}
      {job.error && (
        <p className="group-card__error" role="alert">
          {job.error.file ? <code>{job.error.file}</code> : null} {humanError(job.error).message}
        </p>
      )}
      {job.warnings.map((w, i) => (
        <p key={i} className="small import-job__warning">
          {w}
        </p>
      ))}
    </li>
  )
}

/**
 * **Add model…**: import a Hugging Face model folder (save_pretrained, or a folder of the Hugging
 * Face cache) as a new group. The path is typed (on the headless host: a path on the server's
 * disk) or, in Electron, taken from a folder dropped on the form. Imports run as jobs with
 * progress and cancel; a finished one appears in the library.
 */
export function AddModel(): JSX.Element {
  const [open, setOpen] = useState(false)
  const [source, setSource] = useState('')
  const [folder, setFolder] = useState('')
  const [error, setError] = useState<{ message: string; field?: string } | null>(null)
  const [busy, setBusy] = useState(false)
  const [dragging, setDragging] = useState(false)
  // Select the stored object and sort outside the selector: a selector that returns a new array
  // on every call never settles (React re-renders until it gives up, leaving a blank page).
  const importsById = useAppStore((s) => s.imports.byId)
  const imports = useMemo(
    () => importsNewestFirst({ imports: { byId: importsById } }),
    [importsById]
  )
  const canDrop = typeof window !== 'undefined' && window.api?.pathForFile !== undefined

  const submit = (e: FormEvent): void => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    call('imports:base', {
      source: source.trim(),
      ...(folder.trim() ? { folder: folder.trim() } : {})
    })
      .then(() => {
        setSource('')
        setFolder('')
      })
      .catch((err: unknown) => {
        const e2 = errorOf(err)
        setError({ message: humanError(e2).message, field: e2.field })
      })
      .finally(() => setBusy(false))
  }

  return (
    <div className="add-model" data-testid="add-model">
      {!open ? (
        <button type="button" className="button button--small" onClick={() => setOpen(true)}>
          Add model…
        </button>
      ) : (
        <form
          className={`add-model__form${dragging ? ' add-model__form--drop' : ''}`}
          onSubmit={submit}
          onDragOver={(e) => {
            if (!canDrop) return
            e.preventDefault()
            setDragging(true)
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            setDragging(false)
            if (!canDrop) return
            e.preventDefault()
            const p = droppedPath(e)
            if (p) setSource(p)
            else setError({ message: 'That drop has no folder path; type the path instead.' })
          }}
        >
          <label className="small">
            Hugging Face model folder{canDrop ? ' (type a path or drop a folder here)' : ''}
            <input
              type="text"
              value={source}
              placeholder="/path/to/models--org--name or a save_pretrained folder"
              aria-invalid={error?.field === 'source'}
              onChange={(e) => setSource(e.target.value)}
              data-testid="add-model-source"
              spellCheck={false}
            />
          </label>
          <label className="small">
            Group folder in the models folder (optional)
            <input
              type="text"
              value={folder}
              placeholder="from the model's name"
              aria-invalid={error?.field === 'folder'}
              onChange={(e) => setFolder(e.target.value)}
              data-testid="add-model-folder"
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
              disabled={busy || source.trim() === ''}
            >
              Import
            </button>
            <button type="button" className="button button--small" onClick={() => setOpen(false)}>
              Close
            </button>
          </div>
        </form>
      )}
      {imports.length > 0 && (
        <ul className="import-list" aria-label="Imports">
          {imports.slice(0, 5).map((j) => (
            <ImportRow key={j.id} job={j} />
          ))}
        </ul>
      )}
    </div>
  )
}
