import { useState, type JSX } from 'react'
import { call, errorOf } from '../../ipc/client'
import { runPhase, type RunPhase } from '../../lib/runStatus'
import { announce } from '../../store'
import type { RunView } from '../../store/slices/runsSlice'

/** What one row of a run counts (a result's rows are positions, layers or interventions). */
function countWords(run: RunView, total?: number): { count: number; unit: string; where: string } {
  const s = run.summary
  const plural = (n: number, one: string, many: string): string => (n === 1 ? one : many)
  if (s.kind === 'intervene') {
    const positions = s.intervention?.positions ?? [
      ...new Set(run.interventions.map((r) => r.interventionPosition))
    ]
    const n = total ?? run.interventions.length
    return {
      count: n,
      unit: plural(n, 'intervention', 'interventions'),
      where:
        positions.length > 0
          ? ` at ${plural(positions.length, 'position', 'positions')} ${positions.join(', ')}`
          : ''
    }
  }
  const n = total ?? run.rows.length
  if (s.kind === 'sweep') {
    const at = s.sweep?.position ?? run.rows[0]?.position
    return {
      count: n,
      unit: plural(n, 'layer', 'layers'),
      where: at === undefined ? '' : ` at position ${at}`
    }
  }
  return { count: n, unit: plural(n, 'position', 'positions'), where: '' }
}

/** The run line's sentence for a phase (pure: the run view and its phase decide it). */
export function runLineText(run: RunView, phase: RunPhase): string {
  const job = run.job
  const p = job?.progress
  const { count, unit, where } = countWords(run)
  switch (phase) {
    case 'queued':
      return `Queued${job?.queuePosition ? ` (position ${job.queuePosition})` : ''}`
    case 'loading':
      return `Loading${job?.stage ? `: ${job.stage}` : ''}`
    case 'running':
      return [
        'Running',
        p ? `${p.rowsDone}/${p.rowsTotal} ${countWords(run, p.rowsTotal).unit}${where}` : null,
        // While an analysis optimises its explanations, the job's stage says where the optimiser is.
        job?.stage ?? null,
        job?.etaSeconds != null ? `ETA ${Math.ceil(job.etaSeconds)} s` : null
      ]
        .filter((part) => part !== null)
        .join(' · ')
    case 'streaming':
      return `Running · ${count} ${unit} so far${where}`
    case 'done':
      return `Done · ${count} ${unit}${where}`
    case 'cancelled':
      return `Cancelled · ${count} ${unit} kept${where}`
    case 'interrupted':
      return `Interrupted (the app stopped) · ${count} ${unit} kept${where}`
    default:
      return `Failed${count === 0 ? ' before its first row' : ` · ${count} ${unit} kept${where}`}`
  }
}

/** The active run's progress, status and Cancel (only while cancelling can still do something). */
export function RunLine({ run }: { run: RunView }): JSX.Element {
  const [cancelError, setCancelError] = useState<string | null>(null)
  const job = run.job
  const { phase, cancellable } = runPhase(job, run.summary.status, run.jobId)
  const p = job?.progress
  const fraction = phase === 'done' ? 1 : p && p.rowsTotal > 0 ? p.rowsDone / p.rowsTotal : 0
  const text = runLineText(run, phase)
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
