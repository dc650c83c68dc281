import { describe, expect, it } from 'vitest'
import { TERMINAL_JOB_STATUSES } from '@shared/domain/jobs'
import { JobTable } from './jobTable'
import type { JobRecord } from './records'

/** Jobs 0..n-1 submitted in order, then the given ones finished in the given order. */
function run(n: number, keep: number, finishOrder: number[]) {
  const table = new JobTable({ now: () => 0, keepFinishedJobs: keep, publish: () => undefined })
  const jobs: JobRecord[] = []
  for (let i = 0; i < n; i++)
    jobs.push(table.add({ kind: 'load', groupId: 'g' }, null, i % 2 ? 'a' : 'b', null))
  for (const i of finishOrder) table.finish(jobs[i]!, i % 3 ? 'done' : 'cancelled')
  return { table, jobs }
}

describe('JobTable: unfinished jobs and the finished ones kept', () => {
  const cases: [string, number, number, number[]][] = [
    ['nothing finished', 4, 2, []],
    ['fewer finished than kept', 5, 3, [1, 3]],
    ['finished in submission order, beyond the limit', 6, 2, [0, 1, 2, 3, 4]],
    ['finished out of order, beyond the limit', 7, 2, [5, 1, 6, 0, 3]],
    ['every job finished, keep none', 4, 0, [2, 0, 3, 1]],
    ['every job finished, keep one', 5, 1, [4, 3, 2, 1, 0]]
  ]
  it.each(cases)('%s', (_, n, keep, finishOrder) => {
    const { table, jobs } = run(n, keep, finishOrder)
    // The rule before the table indexed its unfinished jobs, replayed finish by finish: of the
    // finished jobs, the earliest submitted beyond `keep` are dropped.
    let kept = jobs
    for (let f = 1; f <= finishOrder.length; f++) {
      const ended = new Set(finishOrder.slice(0, f).map((i) => jobs[i]!))
      const finished = kept.filter((j) => ended.has(j))
      const dropped = new Set(finished.slice(0, Math.max(0, finished.length - keep)))
      kept = kept.filter((j) => !dropped.has(j))
    }
    expect(table.all()).toEqual(kept)
    const unfinished = jobs.filter((j) => !TERMINAL_JOB_STATUSES.includes(j.state.status))
    expect(table.open()).toEqual(unfinished)
    expect(
      table
        .queuedInFairOrder()
        .map((j) => j.state.id)
        .sort()
    ).toEqual(unfinished.map((j) => j.state.id).sort())
    // Queue positions: 1..k over the unfinished jobs, none on a finished one.
    expect(unfinished.map((j) => j.state.queuePosition).sort()).toEqual(
      unfinished.map((_, k) => k + 1)
    )
    for (const j of jobs) if (!unfinished.includes(j)) expect(j.state.queuePosition).toBeNull()
  })
})
