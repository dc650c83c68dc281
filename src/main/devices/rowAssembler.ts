/**
 * Row assembly: rows arrive from the devices in any order (a data-parallel analysis streams from
 * several workers at once) and leave in position order (a sweep's in layer order, an
 * intervention's in index order), each exactly once, with the job's progress and ETA. Pure over
 * the job record and the time it is given: no events, no timers.
 */
import type { AnalysisRow } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import type { JobRows } from '@shared/domain/jobs'
import type { DeviceTask, JobRecord } from './records'

/**
 * Takes rows a task streamed. A position already received (a share retried after a crash) is kept
 * as first received. An unplanned analysis learns its total from the worker.
 */
export function acceptRows(
  job: JobRecord,
  task: DeviceTask,
  rows: readonly AnalysisRow[],
  chunkTotal: number
): void {
  for (const row of rows) {
    const key = job.rowKey(row)
    task.received.add(key)
    if (!job.rows.has(key)) job.rows.set(key, row)
  }
  if (!job.positions && job.state.progress && job.state.progress.rowsTotal < chunkTotal) {
    job.state.progress.rowsTotal = chunkTotal
  }
}

export interface AssembledRows {
  /** The rows now contiguous in position order, to stream (null: none new). */
  rows: JobRows | null
  /** The job's state changed enough to publish. */
  publish: boolean
}

/**
 * Takes intervention rows a task streamed (a row already received, after a retry, is kept as first
 * received) and moves the ones now contiguous by index to the job's list, with progress and ETA.
 */
export function assembleInterventions(
  job: JobRecord,
  rows: readonly InterventionRow[],
  rowsTotal: number,
  now: number
): AssembledRows {
  for (const row of rows)
    if (!job.interventionRows.has(row.index)) job.interventionRows.set(row.index, row)
  const start = job.interventions.length
  for (
    let next = job.interventionRows.get(start);
    next;
    next = job.interventionRows.get(job.interventions.length)
  )
    job.interventions.push(next)
  const s = job.state
  const done = job.interventionRows.size
  s.progress = { rowsDone: done, rowsTotal: Math.max(rowsTotal, done) }
  if (job.runStartedAt !== null && done > 0) {
    const elapsed = (now - job.runStartedAt) / 1000
    s.etaSeconds = Math.max(0, (elapsed / done) * (s.progress.rowsTotal - done))
  }
  const grew = job.interventions.length > start
  return {
    rows: grew
      ? { jobId: s.id, startIndex: start, rows: [], interventions: job.interventions.slice(start) }
      : null,
    publish: true
  }
}

/**
 * Moves the rows that are now contiguous in position order (the plan's order; without a plan,
 * ascending positions) to the job's ordered list, and updates progress and ETA.
 */
export function assembleRows(job: JobRecord, final: boolean, now: number): AssembledRows {
  const start = job.ordered.length
  if (job.positions) {
    while (job.ordered.length < job.positions.length) {
      const row = job.rows.get(job.positions[job.ordered.length]!)
      if (!row) break
      job.ordered.push(row)
    }
  } else {
    const seen = new Set(job.ordered.map(job.rowKey))
    const fresh = [...job.rows.values()]
      .filter((r) => !seen.has(job.rowKey(r)))
      .sort((a, b) => job.rowKey(a) - job.rowKey(b))
    job.ordered.push(...fresh)
  }
  const s = job.state
  const total = s.progress?.rowsTotal ?? job.ordered.length
  const done = job.rows.size
  s.progress = { rowsDone: done, rowsTotal: Math.max(total, done) }
  if (job.runStartedAt !== null && done > 0) {
    const elapsed = (now - job.runStartedAt) / 1000
    s.etaSeconds = Math.max(0, (elapsed / done) * (s.progress.rowsTotal - done))
  }
  const grew = job.ordered.length > start
  return {
    rows: grew ? { jobId: s.id, startIndex: start, rows: job.ordered.slice(start) } : null,
    publish: grew || final
  }
}
