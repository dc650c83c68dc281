import type { AnalysisMetadata, AnalysisRow } from '@shared/domain/analysis'
import type { JobRows, JobState } from '@shared/domain/jobs'
import type { Session, SessionSummary } from '@shared/domain/sessions'

/** One result on screen: a streaming run or a reopened session, keyed by its session id. */
export interface RunView {
  sessionId: string
  summary: SessionSummary
  jobId: string | null
  job: JobState | null
  rows: AnalysisRow[]
  metadata: AnalysisMetadata | null
  completions: string[]
}

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

export function startedRun(state: RunsSlice, summary: SessionSummary, jobId: string): RunsSlice {
  const early = state.runs.early[jobId] ?? []
  let run: RunView = { sessionId: summary.id, summary, jobId, job: null, rows: [], metadata: null, completions: [] }
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
  const { rows, metadata, completions } = session
  const existing = state.runs.byId[session.id]
  // A run still streaming here has newer rows than its file.
  const run: RunView =
    existing && existing.rows.length > rows.length
      ? existing
      : {
          sessionId: session.id,
          summary: { ...existing?.summary, ...summarize(session) },
          jobId: session.jobId,
          job: existing?.job ?? null,
          rows,
          metadata,
          completions
        }
  return {
    runs: {
      ...state.runs,
      byId: { ...state.runs.byId, [session.id]: run },
      ...(asCompare ? { compareId: session.id } : { activeId: session.id })
    }
  }
}

function summarize(session: Session): SessionSummary {
  const { rows, metadata, ...rest } = session
  return { ...rest, rowCount: rows.length, layer: metadata?.layer ?? null }
}

function withRows(run: RunView, batch: JobRows): RunView {
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
  if (!run) return state
  return { runs: { ...state.runs, byId: { ...state.runs.byId, [run.sessionId]: { ...run, job } } } }
}

export function receivedSessionSummary(state: RunsSlice, summary: SessionSummary): RunsSlice {
  const run = state.runs.byId[summary.id]
  if (!run) return state
  return { runs: { ...state.runs, byId: { ...state.runs.byId, [summary.id]: { ...run, summary } } } }
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
