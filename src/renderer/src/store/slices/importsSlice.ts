import type { ImportJob } from '@shared/domain/imports'

/** Imports (base models, lenses) as the host reports them: running ones and recent finished ones. */
export interface ImportsSlice {
  imports: { byId: Record<string, ImportJob> }
}

export const initialImportsSlice: ImportsSlice = { imports: { byId: {} } }

/** An import's new state; a late event never replaces a finished state with a running one. */
export function receivedImport(state: ImportsSlice, job: ImportJob): ImportsSlice {
  const current = state.imports.byId[job.id]
  if (current && current.status !== 'running' && job.status === 'running') return state
  return { imports: { byId: { ...state.imports.byId, [job.id]: job } } }
}

/** The host's list (at boot, after a reconnect): replaces what is known, keeping nothing stale. */
export function receivedImportList(jobs: readonly ImportJob[]): ImportsSlice {
  const byId: Record<string, ImportJob> = {}
  for (const j of jobs) byId[j.id] = j
  return { imports: { byId } }
}

/** Imports newest first. */
export function importsNewestFirst(state: ImportsSlice): ImportJob[] {
  return Object.values(state.imports.byId).sort((a, b) => b.startedAt - a.startedAt)
}
