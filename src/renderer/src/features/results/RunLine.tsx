import { useState, type JSX } from 'react'
import { call, errorOf } from '../../ipc/client'
import { runPhase } from '../../lib/runStatus'
import { announce } from '../../store'
import type { RunView } from '../../store/slices/runsSlice'

/** The active run's progress, status and Cancel (only while cancelling can still do something). */
export function RunLine({ run }: { run: RunView }): JSX.Element {
  const [cancelError, setCancelError] = useState<string | null>(null)
  const job = run.job
  const { phase, cancellable } = runPhase(job, run.summary.status, run.jobId)
  const p = job?.progress
  const rows = run.rows.length
  const fraction = phase === 'done' ? 1 : p && p.rowsTotal > 0 ? p.rowsDone / p.rowsTotal : 0
  const text =
    phase === 'queued'
      ? `Queued${job?.queuePosition ? ` (position ${job.queuePosition})` : ''}`
      : phase === 'loading'
        ? `Loading${job?.stage ? `: ${job.stage}` : ''}`
        : phase === 'running'
          ? `Running · ${p ? `${p.rowsDone}/${p.rowsTotal} positions` : ''}${job?.etaSeconds != null ? ` · ETA ${Math.ceil(job.etaSeconds)} s` : ''}`
          : phase === 'streaming'
            ? `Running · ${rows} positions so far`
            : phase === 'done'
              ? `Done · ${rows} positions`
              : phase === 'cancelled'
                ? `Cancelled · ${rows} positions kept`
                : phase === 'interrupted'
                  ? `Interrupted (the app stopped) · ${rows} positions kept`
                  : `Failed${rows === 0 ? ' before its first row' : ` · ${rows} positions kept`}`
  return (
    <div className="run-progress" data-testid="run-progress" data-status={phase}>
      {(cancellable || phase === 'done') && (
        <progress max={1} value={fraction} aria-label="analysis progress" />
      )}
      <span role="status" data-testid="run-status">
        {text}
      </span>
      {cancellable && run.jobId && (
        <button
          type="button"
          className="button button--danger button--small"
          data-testid="cancel-run"
          onClick={() =>
            call('jobs:cancel', { jobId: run.jobId as string }).then(
              () => announce('Cancelling the run'),
              (err: unknown) => setCancelError(errorOf(err).message)
            )
          }
        >
          Cancel
        </button>
      )}
      {cancelError && <span className="inline-error">{cancelError}</span>}
    </div>
  )
}
