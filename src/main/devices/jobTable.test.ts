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

describe('JobTable: queue moves published in batches', () => {
  /** n jobs of one client queued, then the head finished k times, flushing after `flushEvery`. */
  function drain(n: number, withMoves: boolean, flushEvery: number) {
    const published: { id: string; status: string; position: number | null }[] = []
    let pending = 0
    const table = new JobTable({
      now: () => 0,
      keepFinishedJobs: 100,
      publish: (j) =>
        published.push({ id: j.state.id, status: j.state.status, position: j.state.queuePosition }),
      ...(withMoves ? { movesPending: () => void pending++ } : {})
    })
    const jobs: JobRecord[] = []
    for (let i = 0; i < n; i++)
      jobs.push(table.add({ kind: 'load', groupId: 'g' }, null, 'a', null))
    const afterSubmit = published.length
    for (let i = 0; i < n; i++) {
      table.finish(jobs[i]!, 'done')
      // The state is exact at every step, whatever has been published.
      jobs.slice(i + 1).forEach((j, k) => expect(j.state.queuePosition).toBe(k + 1))
      if ((i + 1) % flushEvery === 0) table.flushMoves()
    }
    table.flushMoves()
    return { published, afterSubmit, pending, jobs }
  }

  it('without movesPending every move is published at once (n²/2 events for n jobs)', () => {
    const { published, afterSubmit, pending } = drain(10, false, 1)
    expect(afterSubmit).toBe(10)
    expect(pending).toBe(0)
    // 10 ends, and each end moves every job behind it: 9 + 8 + … + 1 moves.
    expect(published.length - afterSubmit).toBe(10 + 45)
  })

  it.each([
    ['flushed after every end', 1, 45],
    ['flushed after every third end', 3, 12],
    ['flushed only at the end', 100, 0]
  ])(
    'with movesPending, %s: first positions and ends at once, moves batched',
    (_, every, expected) => {
      const n = 10
      const { published, afterSubmit, pending, jobs } = drain(n, true, every)
      // Every job's first position went out at its submit.
      expect(published.slice(0, afterSubmit).map((p) => p.position)).toEqual(
        jobs.map((_, k) => k + 1)
      )
      const later = published.slice(afterSubmit)
      // Every end was published, in order, with no position.
      expect(later.filter((p) => p.status === 'done').map((p) => p.id)).toEqual(
        jobs.map((j) => j.state.id)
      )
      const moves = later.filter((p) => p.status === 'queued')
      // A move is published only while the job is still queued, with its position at the flush,
      // and a job's published positions only ever go down.
      for (const m of moves) expect(m.position).not.toBeNull()
      for (const j of jobs) {
        const seen = moves.filter((m) => m.id === j.state.id).map((m) => m.position!)
        expect(seen).toEqual([...seen].sort((a, b) => b - a))
      }
      // One published move per job still queued at each flush: 9 + 8 + … + 1 when flushed after every
      // end (as many as unbatched), 7 + 4 + 1 after every third, none when only the ends remain.
      expect(moves.length).toBe(expected)
      expect(pending).toBeGreaterThan(0)
    }
  )
})
