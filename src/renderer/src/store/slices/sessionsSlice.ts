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

/**
 * The listing was read from disk before its reply arrived; a `sessions:changed` event received in
 * between is newer (e.g. a run that finished meanwhile), so the newer summary of each id wins.
 */
export function receivedSessionList(state: SessionsSlice, list: SessionList): SessionsSlice {
  const known = new Map(state.sessions.list.map((s) => [s.id, s]))
  const sessions = list.sessions.map((listed) => {
    const pushed = known.get(listed.id)
    return pushed && pushed.updatedAt > listed.updatedAt ? pushed : listed
  })
  return {
    sessions: { loaded: true, folder: list.folder, list: sessions, problems: list.problems }
  }
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
