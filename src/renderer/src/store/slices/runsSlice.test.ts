import { describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { JobRows, JobState } from '@shared/domain/jobs'
import type { InterventionRow } from '@shared/domain/research'
import { SESSION_FORMAT, summarizeSession, type Session } from '@shared/domain/sessions'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import {
  closedRun,
  initialRunsSlice,
  openedSession,
  receivedJob,
  receivedRows,
  runsToSettle,
  settledRun,
  startedRun,
  type RunsSlice
} from './runsSlice'
import { initialSessionsSlice, receivedSessionChange, receivedSessionList } from './sessionsSlice'

function row(position: number): AnalysisRow {
  return {
    position,
    token: `t${position}`,
    tokenId: position,
    explanation: `e${position}`,
    explanationStructured: [`e${position}`],
    mse: position / 10,
    relativeRmse: 0.1,
    klDivergence: null,
    tokenSalience: [],
    logitLensTop: null
  }
}

function batch(jobId: string, startIndex: number, count: number): JobRows {
  const rows = Array.from({ length: count }, (_, i) => row(startIndex + i))
  return { jobId, startIndex, rows } as JobRows
}

function session(extra: Partial<Session> = {}): Session {
  return {
    format: SESSION_FORMAT,
    version: 1,
    id: 's-run',
    name: 'run',
    createdAt: 1,
    updatedAt: 1,
    appVersion: '0.1.0',
    kind: 'analyze',
    input: { mode: 'text', text: 'x' },
    groupId: 'demo-words',
    lensId: 'words-l1',
    bundleHash: 'abc',
    options: AnalyzeOptionsSchema.parse({}),
    jobId: 'job-1',
    status: 'running',
    error: null,
    metadata: null,
    rows: [],
    completions: [],
    interventions: [],
    ...extra
  }
}

const finishedJob = (id: string): JobState => ({ id, status: 'done' }) as JobState

describe('runs slice', () => {
  it('a running session reopened after a reload keeps receiving its streamed rows', () => {
    let state: RunsSlice = initialRunsSlice
    // Rows that arrive before the page has reopened the session are held, then used.
    state = receivedRows(state, [batch('job-1', 2, 2)])
    state = openedSession(state, session({ rows: [row(0), row(1)] }))
    state = receivedRows(state, [batch('job-1', 4, 2)])
    expect(state.runs.byId['s-run']!.rows.map((r) => r.position)).toEqual([0, 1, 2, 3, 4, 5])
    expect(state.runs.early).toEqual({})
    expect(runsToSettle(state)).toEqual([])
  })

  it('a finished run is settled from its file, which replaces whatever streamed', () => {
    let state = startedRun(initialRunsSlice, summarizeSession(session()), 'job-1')
    state = receivedRows(state, [batch('job-1', 1, 1)])
    state = {
      runs: {
        ...state.runs,
        byId: {
          ...state.runs.byId,
          's-run': {
            ...state.runs.byId['s-run']!,
            summary: summarizeSession(session({ status: 'completed' }))
          }
        }
      }
    }
    expect(runsToSettle(state)).toEqual(['s-run'])
    const saved = session({ status: 'completed', rows: [row(0), row(1)], completions: ['x y'] })
    state = settledRun(state, saved)
    expect(state.runs.byId['s-run']).toMatchObject({
      settled: true,
      rows: saved.rows,
      completions: ['x y']
    })
    expect(runsToSettle(state)).toEqual([])
    // A late batch cannot add to the saved result.
    state = receivedRows(state, [batch('job-1', 1, 1)])
    expect(state.runs.byId['s-run']!.rows).toBe(saved.rows)
  })

  it('a short job whose end beat the submit reply is not shown as running', () => {
    const done = summarizeSession(session({ status: 'completed', updatedAt: 5 }))
    const sessions = receivedSessionChange(initialSessionsSlice, 's-run', done)
    const state = startedRun(
      { ...initialRunsSlice, ...sessions },
      summarizeSession(session()),
      'job-1'
    )
    expect(state.runs.byId['s-run']!.summary.status).toBe('completed')
    expect(runsToSettle(state)).toEqual(['s-run'])
  })

  it('an intervene run collects its streamed interventions by index, apart from the rows', () => {
    let state = startedRun(
      initialRunsSlice,
      summarizeSession(session({ kind: 'intervene' })),
      'job-1'
    )
    const intervention = (index: number): InterventionRow =>
      ({ index, interventionPosition: 2 }) as InterventionRow
    state = receivedRows(state, [
      { jobId: 'job-1', startIndex: 0, rows: [], interventions: [intervention(0)] },
      { jobId: 'job-1', startIndex: 1, rows: [], interventions: [intervention(1)] },
      // A batch sent again (e.g. after a reconnect) replaces, never duplicates.
      { jobId: 'job-1', startIndex: 1, rows: [], interventions: [intervention(1)] }
    ])
    const run = state.runs.byId['s-run']!
    expect(run.interventions.map((r) => r.index)).toEqual([0, 1])
    expect(run.rows).toEqual([])
  })

  it('holds no rows for a closed run or for another client’s finished job', () => {
    let state = startedRun(initialRunsSlice, summarizeSession(session()), 'job-1')
    state = closedRun(state, 's-run')
    state = receivedRows(state, [batch('job-1', 0, 3), batch('job-other', 0, 3)])
    expect(Object.keys(state.runs.early)).toEqual(['job-other'])
    state = receivedJob(state, finishedJob('job-other'))
    expect(state.runs.early).toEqual({})
  })

  it('a history listing that was read before a run finished does not undo the pushed change', () => {
    const running = summarizeSession(session({ updatedAt: 3 }))
    const done = summarizeSession(session({ status: 'completed', updatedAt: 5 }))
    let sessions = receivedSessionChange(initialSessionsSlice, 's-run', done)
    sessions = receivedSessionList(sessions, { folder: '/f', sessions: [running], problems: [] })
    expect(sessions.sessions.list.map((s) => s.status)).toEqual(['completed'])
    expect(sessions.sessions.loaded).toBe(true)
  })
})
