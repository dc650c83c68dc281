import type { AnalysisMetadata, AnalysisRow } from '@shared/domain/analysis'
import type { JobRows, JobState } from '@shared/domain/jobs'
import type { InterventionRow } from '@shared/domain/research'
import type { Session, SessionSummary } from '@shared/domain/sessions'
import type { SessionsSlice } from './sessionsSlice'

/** One result on screen: a streaming run or a reopened session, keyed by its session id. */
export interface RunView {
  sessionId: string
  summary: SessionSummary
  jobId: string | null
  job: JobState | null
  rows: AnalysisRow[]
  metadata: AnalysisMetadata | null
  completions: string[]
  /** An intervene run's rows (one per position and string); empty for other kinds. */
  interventions: InterventionRow[]
  /**
   * The rows, metadata and completions are the saved session's after the run ended: the file is
   * written from the job's result, which streamed rows may fall short of (e.g. rows sent before
   * this window registered the run).
   */
  settled: boolean
}

const TERMINAL_JOB = new Set<JobState['status']>(['done', 'failed', 'cancelled'])

export interface RunsSlice {
  runs: {
    byId: Record<string, RunView>
    jobToSession: Record<string, string>
    /** Rows that arrived before their run was registered (events can beat the submit reply). */
    early: Record<string, JobRows[]>
    activeId: string | null
    compareId: string | null
  }
}

export const initialRunsSlice: RunsSlice = {
  runs: { byId: {}, jobToSession: {}, early: {}, activeId: null, compareId: null }
}

/**
 * A run this window submitted. Its `sessions:changed` events can beat the submit reply (a short job
 * may already be finished), so a newer summary from the history list wins over the reply's.
 */
export function startedRun(
  state: RunsSlice & Partial<SessionsSlice>,
  replySummary: SessionSummary,
  jobId: string
): RunsSlice {
  const early = state.runs.early[jobId] ?? []
  const listed = state.sessions?.list.find((s) => s.id === replySummary.id)
  const summary = listed && listed.updatedAt >= replySummary.updatedAt ? listed : replySummary
  let run: RunView = {
    sessionId: summary.id,
    summary,
    jobId,
    job: null,
    rows: [],
    metadata: null,
    completions: [],
    interventions: [],
    settled: false
  }
  for (const batch of early) run = withRows(run, batch)
  const { [jobId]: _used, ...restEarly } = state.runs.early
  return {
    runs: {
      ...state.runs,
      byId: { ...state.runs.byId, [summary.id]: run },
      jobToSession: { ...state.runs.jobToSession, [jobId]: summary.id },
      early: restEarly,
      activeId: summary.id
    }
  }
}

export function openedSession(state: RunsSlice, session: Session, asCompare = false): RunsSlice {
  const next = withSavedSession(state, session)
  return {
    runs: { ...next.runs, ...(asCompare ? { compareId: session.id } : { activeId: session.id }) }
  }
}

/** The saved session of a run that ended replaces what streamed (the view stays where it is). */
export function settledRun(state: RunsSlice, session: Session): RunsSlice {
  if (!state.runs.byId[session.id]) return state
  return withSavedSession(state, session)
}

/** A run whose file was fetched and could not be read (e.g. deleted): stop asking for it. */
export function unsettledRunGivenUp(state: RunsSlice, id: string): RunsSlice {
  const run = state.runs.byId[id]
  if (!run || run.settled) return state
  return { runs: { ...state.runs, byId: { ...state.runs.byId, [id]: { ...run, settled: true } } } }
}

/** Runs shown with a finished summary whose final rows have not been loaded yet. */
export function runsToSettle(state: RunsSlice): string[] {
  return Object.values(state.runs.byId)
    .filter((run) => !run.settled && run.summary.status !== 'running')
    .map((run) => run.sessionId)
}

function withSavedSession(state: RunsSlice, session: Session): RunsSlice {
  const existing = state.runs.byId[session.id]
  const running = session.status === 'running'
  let run: RunView = {
    sessionId: session.id,
    summary: summarize(session),
    jobId: session.jobId,
    job: existing?.job ?? null,
    rows: session.rows,
    metadata: session.metadata,
    completions: session.completions,
    interventions: session.interventions,
    settled: !running
  }
  // A run still streaming here may have newer rows than its file (writes are coalesced).
  if (running && existing && existing.rows.length > run.rows.length) {
    run = { ...run, rows: existing.rows }
  }
  if (running && existing && existing.interventions.length > run.interventions.length) {
    run = { ...run, interventions: existing.interventions }
  }
  let { jobToSession, early } = state.runs
  if (running && session.jobId) {
    // Reopened after a reload: the rows still streaming belong to this view.
    for (const batch of early[session.jobId] ?? []) run = withRows(run, batch)
    const { [session.jobId]: _used, ...restEarly } = early
    early = restEarly
    jobToSession = { ...jobToSession, [session.jobId]: session.id }
  }
  return {
    runs: { ...state.runs, byId: { ...state.runs.byId, [session.id]: run }, jobToSession, early }
  }
}

function summarize(session: Session): SessionSummary {
  const { rows, metadata, ...rest } = session
  return { ...rest, rowCount: rows.length, layer: metadata?.layer ?? null }
}

function withRows(run: RunView, batch: JobRows): RunView {
  // An intervene job streams its rows as `interventions`, indexed by `startIndex` like rows.
  if (batch.interventions && batch.interventions.length > 0) {
    const interventions = run.interventions.slice()
    for (const [i, row] of batch.interventions.entries()) interventions[batch.startIndex + i] = row
    return { ...run, interventions: interventions.filter((r) => r !== undefined) }
  }
  const rows = run.rows.slice()
  for (const [i, row] of batch.rows.entries()) rows[batch.startIndex + i] = row
  return { ...run, rows: rows.filter((r) => r !== undefined) }
}

/** Applies many row batches at once (the bridge collects them per animation frame). */
export function receivedRows(state: RunsSlice, batches: readonly JobRows[]): RunsSlice {
  let byId = state.runs.byId
  let early = state.runs.early
  for (const batch of batches) {
    const id = state.runs.jobToSession[batch.jobId]
    const run = id ? byId[id] : undefined
    // A closed run's rows, or rows after its saved result replaced the stream, are not shown.
    if (id && (!run || run.settled)) continue
    if (!run) {
      early = { ...early, [batch.jobId]: [...(early[batch.jobId] ?? []), batch] }
      continue
    }
    byId = { ...byId, [run.sessionId]: withRows(run, batch) }
  }
  return { runs: { ...state.runs, byId, early } }
}

export function receivedJob(state: RunsSlice, job: JobState): RunsSlice {
  const id = state.runs.jobToSession[job.id]
  const run = id ? state.runs.byId[id] : undefined
  if (!run) {
    // Another client's job (or one whose submit failed here): its held rows would never be used.
    if (TERMINAL_JOB.has(job.status) && state.runs.early[job.id]) {
      const { [job.id]: _dropped, ...early } = state.runs.early
      return { runs: { ...state.runs, early } }
    }
    return state
  }
  return { runs: { ...state.runs, byId: { ...state.runs.byId, [run.sessionId]: { ...run, job } } } }
}

export function receivedSessionSummary(state: RunsSlice, summary: SessionSummary): RunsSlice {
  const run = state.runs.byId[summary.id]
  if (!run) return state
  return {
    runs: { ...state.runs, byId: { ...state.runs.byId, [summary.id]: { ...run, summary } } }
  }
}

export function closedRun(state: RunsSlice, id: string): RunsSlice {
  const { [id]: _gone, ...byId } = state.runs.byId
  return {
    runs: {
      ...state.runs,
      byId,
      activeId: state.runs.activeId === id ? null : state.runs.activeId,
      compareId: state.runs.compareId === id ? null : state.runs.compareId
    }
  }
}
