import type { SessionSummary } from '@shared/domain/sessions'
import type { SessionList } from '@shared/ipc/channels/sessions'

export interface SessionsSlice {
  sessions: {
    loaded: boolean
    folder: string | null
    list: SessionSummary[]
    problems: SessionList['problems']
  }
}

export const initialSessionsSlice: SessionsSlice = {
  sessions: { loaded: false, folder: null, list: [], problems: [] }
}

export function receivedSessionList(state: SessionsSlice, list: SessionList): SessionsSlice {
  return { sessions: { loaded: true, folder: list.folder, list: list.sessions, problems: list.problems } }
}

/** Upsert (summary) or remove (null), newest first. */
export function receivedSessionChange(
  state: SessionsSlice,
  id: string,
  summary: SessionSummary | null
): SessionsSlice {
  const rest = state.sessions.list.filter((s) => s.id !== id)
  const list = summary ? [summary, ...rest].sort((a, b) => b.createdAt - a.createdAt) : rest
  return { sessions: { ...state.sessions, list } }
}
