import { describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import type { DeviceTask, JobRecord } from './records'
import { acceptRows, assembleInterventions, assembleRows } from './rowAssembler'

function row(position: number): AnalysisRow {
  return {
    position,
    token: `t${position}`,
    tokenId: position,
    explanation: '',
    explanationStructured: [],
    mse: 0,
    relativeRmse: 0,
    klDivergence: null,
    tokenSalience: [],
    logitLensTop: null
  }
}

function task(): DeviceTask {
  return {
    jobId: 'job-1',
    taskId: 't',
    groupId: 'g',
    positions: null,
    received: new Set(),
    running: true,
    startedAt: 0
  }
}

/** The fields of a job record that row assembly reads and writes. */
function job(
  positions: number[] | null,
  rowsTotal: number | null = null,
  rowKey: (r: AnalysisRow) => number = (r) => r.position
): JobRecord {
  return {
    state: {
      id: 'job-1',
      progress: rowsTotal === null ? null : { rowsDone: 0, rowsTotal },
      etaSeconds: null
    },
    positions,
    rows: new Map(),
    ordered: [],
    rowKey,
    interventionRows: new Map(),
    interventions: [],
    runStartedAt: null
  } as unknown as JobRecord
}

const positionsOf = (rows: readonly AnalysisRow[] | undefined): number[] =>
  (rows ?? []).map((r) => r.position)

describe('row assembly', () => {
  it('streams rows in plan order once each, whatever order the devices send them in', () => {
    const j = job([2, 3, 5, 7], 4)
    const t = task()
    const streamed: number[][] = []
    for (const batch of [[5], [3], [2], [3, 7]]) {
      acceptRows(j, t, batch.map(row), 4)
      const out = assembleRows(j, false, 0)
      streamed.push(positionsOf(out.rows?.rows))
    }
    // 5 and 3 wait for 2; the repeated 3 (a share retried after a crash) is not sent again.
    expect(streamed).toEqual([[], [], [2, 3, 5], [7]])
    expect(positionsOf(j.ordered)).toEqual([2, 3, 5, 7])
    expect(j.state.progress).toEqual({ rowsDone: 4, rowsTotal: 4 })
  })

  it('gives each streamed slice its index in the job’s rows', () => {
    const j = job([0, 1, 2], 3)
    acceptRows(j, task(), [row(0), row(1)], 3)
    expect(assembleRows(j, false, 0).rows).toMatchObject({ jobId: 'job-1', startIndex: 0 })
    acceptRows(j, task(), [row(2)], 3)
    expect(assembleRows(j, false, 0).rows).toMatchObject({ startIndex: 2 })
  })

  it('without a plan, streams in ascending positions and learns the total from the worker', () => {
    const j = job(null, 0)
    acceptRows(j, task(), [row(4), row(1)], 6)
    expect(j.state.progress?.rowsTotal).toBe(6)
    expect(positionsOf(assembleRows(j, false, 0).rows?.rows)).toEqual([1, 4])
  })

  it('estimates the time left from the rate so far', () => {
    const j = job([0, 1, 2, 3], 4)
    j.runStartedAt = 1000
    acceptRows(j, task(), [row(0)], 4)
    assembleRows(j, false, 3000)
    // 1 row in 2 s, 3 rows left.
    expect(j.state.etaSeconds).toBe(6)
  })

  it('publishes a final flush even when no new row came', () => {
    const j = job([0], 1)
    expect(assembleRows(j, false, 0)).toEqual({ rows: null, publish: false })
    expect(assembleRows(j, true, 0)).toEqual({ rows: null, publish: true })
  })

  it('keys a sweep’s rows by layer: one position, every layer kept, in layer order', () => {
    const j = job(null, 0, (r) => r.layer ?? r.position)
    const atLayer = (layer: number): AnalysisRow => ({ ...row(3), layer })
    acceptRows(j, task(), [atLayer(2), atLayer(0)], 3)
    acceptRows(j, task(), [atLayer(1), atLayer(2)], 3)
    const out = assembleRows(j, true, 0)
    expect(out.rows?.rows.map((r) => r.layer)).toEqual([0, 1, 2])
    expect(j.state.progress).toEqual({ rowsDone: 3, rowsTotal: 3 })
  })
})

describe('intervention row assembly', () => {
  const irow = (index: number): InterventionRow => ({ index }) as InterventionRow
  const progress = { rowsDone: 0, rowsTotal: 4 }

  it('streams by index once each; a row sent again after a retry is not repeated', () => {
    const j = job(null, 0)
    const sent: number[][] = []
    for (const batch of [[1], [0], [1, 2], [3]]) {
      const out = assembleInterventions(j, batch.map(irow), progress.rowsTotal, 0)
      sent.push((out.rows?.interventions ?? []).map((r) => r.index))
      if (out.rows) expect(out.rows.startIndex).toBe(sent.flat().length - sent.at(-1)!.length)
    }
    expect(sent).toEqual([[], [0, 1], [2], [3]])
    expect(j.interventions.map((r) => r.index)).toEqual([0, 1, 2, 3])
    expect(j.state.progress).toEqual({ rowsDone: 4, rowsTotal: 4 })
  })
})
