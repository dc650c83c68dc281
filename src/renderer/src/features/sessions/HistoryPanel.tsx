import { useState, type JSX } from 'react'
import type { ExportFormat, SessionSummary } from '@shared/domain/sessions'
import { call, errorOf } from '../../ipc/client'
import { humanError } from '../../lib/humanErrors'
import { announce, notify, reportError, useAppStore, type AppState } from '../../store'
import { closedRun, openedSession, startedRun } from '../../store/slices/runsSlice'

async function open(id: string): Promise<void> {
  try {
    const session = await call('sessions:get', { id })
    useAppStore.setState((s) => openedSession(s, session))
  } catch (err) {
    reportError('open session', errorOf(err))
  }
}

/**
 * Compare: with a result on screen, this run opens next to it in the Compare view; with none, it
 * becomes the result and the next Compare pairs with it. Either way the page says what happened.
 */
async function compareWith(id: string, name: string): Promise<void> {
  try {
    const session = await call('sessions:get', { id })
    const { runs } = useAppStore.getState()
    const active = runs.activeId ? runs.byId[runs.activeId] : undefined
    if (!active || active.sessionId === id) {
      useAppStore.setState((s) => openedSession(s, session))
      announce(`Opened ${name}. Press Compare on another run to see the two side by side.`)
      notify(`Opened “${name}”: press Compare on another run to compare it with this one.`)
      return
    }
    useAppStore.setState((s) => ({
      ...openedSession(s, session, true),
      ui: { ...s.ui, resultsView: 'compare' }
    }))
    announce(`Comparing ${active.summary.name} with ${name}`)
    notify(`Comparing “${active.summary.name}” (A) with “${name}” (B).`)
  } catch (err) {
    reportError('compare', errorOf(err))
  }
}

function download(fileName: string, mimeType: string, content: string): void {
  const url = URL.createObjectURL(new Blob([content], { type: mimeType }))
  const a = document.createElement('a')
  a.href = url
  a.download = fileName
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

/** Sessions read from a file carry where they came from; runs of this app carry nothing. */
export function isImported(summary: SessionSummary): boolean {
  return summary.importedFrom !== undefined
}

function importedTitle(summary: SessionSummary): string {
  const from = summary.importedFrom
  if (!from) return ''
  const who = from.format === 'predecessor' ? "the predecessor's export" : 'a Workbench export'
  return `imported from ${from.fileName} (${who}) on ${new Date(from.importedAt).toLocaleString()}; not run by this app`
}

function SessionItem({
  summary,
  active,
  comparing
}: {
  summary: SessionSummary
  active: boolean
  comparing: boolean
}): JSX.Element {
  const [editing, setEditing] = useState(false)
  const [confirmDelete, setConfirmDelete] = useState(false)
  const [name, setName] = useState(summary.name)
  const [rerun, setRerun] = useState<{ possible: boolean; reason: string } | null>(null)
  const [error, setError] = useState<string | null>(null)
  const act = (p: Promise<unknown>): void => {
    setError(null)
    p.catch((err: unknown) => setError(humanError(errorOf(err)).message))
  }
  const imported = isImported(summary)
  const empty = summary.rowCount === 0 && summary.status !== 'running'
  return (
    <li
      className={`session${active ? ' session--active' : ''}${comparing ? ' session--comparing' : ''}${empty ? ' session--empty' : ''}`}
      data-testid="session-item"
      data-session-id={summary.id}
      data-status={summary.status}
      data-imported={imported || undefined}
      data-empty={empty || undefined}
    >
      {editing ? (
        <form
          onSubmit={(e) => {
            e.preventDefault()
            setEditing(false)
            act(call('sessions:rename', { id: summary.id, name }))
          }}
        >
          <input
            aria-label="Session name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            autoFocus
            data-testid="session-name-input"
          />
          <button type="submit" className="button button--small">
            Save
          </button>
        </form>
      ) : (
        <button
          type="button"
          className="session__open link"
          onClick={() => void open(summary.id)}
          data-testid="session-open"
          title={summary.name}
        >
          {summary.name}
        </button>
      )}
      <div className="session__meta muted small">
        <span className={`badge badge--${summary.status}`} data-testid="session-status">
          {summary.status}
        </span>
        {empty && (
          <span
            className="badge badge--empty"
            data-testid="session-no-rows"
            title={summary.error?.message ?? 'this run produced no rows'}
          >
            no rows
          </span>
        )}
        {imported && (
          <span
            className="badge badge--imported"
            data-testid="session-imported"
            title={importedTitle(summary)}
          >
            imported
          </span>
        )}
        {active && <span className="badge badge--shown">shown</span>}
        {comparing && <span className="badge badge--shown">B</span>}
        <span>
          {summary.lensId}
          {empty ? '' : ` · ${summary.rowCount} rows`} ·{' '}
          {new Date(summary.createdAt).toLocaleTimeString()}
        </span>
      </div>
      {empty && summary.error && (
        <p className="small session__why" data-testid="session-why">
          {humanError(summary.error).message}
        </p>
      )}
      {confirmDelete ? (
        <div
          className="session__confirm"
          role="group"
          aria-label={`Delete ${summary.name}?`}
          data-testid="session-delete-confirm"
        >
          <span className="small">Delete this run’s saved file?</span>
          <button
            type="button"
            className="button button--small button--danger"
            data-testid="session-delete-yes"
            onClick={() => {
              setConfirmDelete(false)
              act(
                call('sessions:delete', { id: summary.id }).then(() => {
                  useAppStore.setState((s) => closedRun(s, summary.id))
                  announce(`Deleted ${summary.name}`)
                })
              )
            }}
          >
            Delete
          </button>
          <button
            type="button"
            className="button button--small"
            data-testid="session-delete-no"
            onClick={() => setConfirmDelete(false)}
            autoFocus
          >
            Keep
          </button>
        </div>
      ) : (
        <div className="session__actions">
          <button
            type="button"
            className="link"
            onClick={() => {
              setName(summary.name)
              setEditing(true)
            }}
          >
            Rename
          </button>
          <button
            type="button"
            className="link"
            onClick={() => void compareWith(summary.id, summary.name)}
            data-testid="session-compare"
            disabled={empty}
            title={
              empty
                ? 'a run with no rows has nothing to compare'
                : 'Show this run next to the one on screen, aligned by position'
            }
          >
            Compare
          </button>
          {(['json', 'jsonl', 'csv'] as ExportFormat[]).map((format) => (
            <button
              key={format}
              type="button"
              className="link"
              data-testid={`export-${format}`}
              onClick={() =>
                act(
                  call('sessions:export', { id: summary.id, format }).then((f) =>
                    download(f.fileName, f.mimeType, f.content)
                  )
                )
              }
            >
              {format.toUpperCase()}
            </button>
          ))}
          <button
            type="button"
            className="link"
            data-testid="session-rerun"
            title={rerun?.reason}
            onMouseEnter={() => {
              if (!rerun)
                call('sessions:rerun-check', { id: summary.id }).then(setRerun, () => undefined)
            }}
            onFocus={() => {
              if (!rerun)
                call('sessions:rerun-check', { id: summary.id }).then(setRerun, () => undefined)
            }}
            onClick={() =>
              act(
                call('sessions:rerun', { id: summary.id }).then((r) => {
                  useAppStore.setState((s) => ({ ...s, ...startRun(s, r) }))
                  announce('Re-running the session with the same bundle, options and seed')
                })
              )
            }
          >
            Re-run
          </button>
          <button
            type="button"
            className="link link--danger"
            data-testid="session-delete"
            onClick={() => setConfirmDelete(true)}
          >
            Delete
          </button>
        </div>
      )}
      {rerun && !rerun.possible && <p className="small inline-error">Re-run: {rerun.reason}</p>}
      {error && (
        <p className="small inline-error" role="alert" data-testid="session-error">
          {error}
        </p>
      )}
    </li>
  )
}

function startRun(s: AppState, r: { session: SessionSummary; jobId: string }): Partial<AppState> {
  return startedRun(s, r.session, r.jobId)
}

/** Saved runs: reopen without recomputing, rename, compare, export, re-run, delete, import. */
export function HistoryPanel(): JSX.Element {
  const { list, problems, loaded, folder } = useAppStore((s) => s.sessions)
  const activeId = useAppStore((s) => s.runs.activeId)
  const compareId = useAppStore((s) => s.runs.compareId)
  const [importError, setImportError] = useState<string | null>(null)
  return (
    <section className="history" aria-label="History" data-testid="history">
      <header className="panel-head">
        <h2 className="section-title">History</h2>
        <label className="button button--small">
          Import…
          <input
            type="file"
            accept=".json,.jsonl"
            className="visually-hidden"
            data-testid="import-file"
            onChange={(e) => {
              const file = e.target.files?.[0]
              e.target.value = ''
              if (!file) return
              setImportError(null)
              void file
                .text()
                .then((content) => call('sessions:import', { fileName: file.name, content }))
                .then(({ sessions }) => {
                  // A JSONL file of several analyses gives several sessions: open the first.
                  if (sessions[0]) open(sessions[0].id)
                })
                .catch((err: unknown) => setImportError(humanError(errorOf(err)).message))
            }}
          />
        </label>
      </header>
      {importError && (
        <p className="inline-error" role="alert" data-testid="import-error">
          {importError}
        </p>
      )}
      {folder && (
        <p className="muted small" title={folder}>
          Saved in {folder}
        </p>
      )}
      {problems.map((p) => (
        <p key={p.file} className="small inline-error" data-testid="session-problem">
          Skipped {p.file}: {p.message}
        </p>
      ))}
      {loaded && list.length === 0 && (
        <p className="empty">Every run is saved here as it streams.</p>
      )}
      <ul className="session-list">
        {list.map((s) => (
          <SessionItem
            key={s.id}
            summary={s}
            active={s.id === activeId}
            comparing={s.id === compareId && s.id !== activeId}
          />
        ))}
      </ul>
    </section>
  )
}
