import type { HardwareState } from '@shared/domain/system'
import type { SerializedError } from '@shared/ipc/errors'

/**
 * `system:state` is extended by other domains (placements, library, jobs): keep whatever extra
 * fields arrive, read only the hardware part here.
 */
export type SystemSnapshot = HardwareState & Record<string, unknown>

export type SystemStatus = 'connecting' | 'ready' | 'error'

export interface SystemSlice {
  system: {
    status: SystemStatus
    snapshot: SystemSnapshot | null
    error: SerializedError | null
    /** How many `system:changed` events arrived (the UI shows the view is live). */
    updates: number
  }
}

export const initialSystemSlice: SystemSlice = {
  system: { status: 'connecting', snapshot: null, error: null, updates: 0 }
}

/** Pure updaters: the bridge applies them with `setState`, tests call them directly. */
export function receivedSystemState(
  state: SystemSlice,
  snapshot: SystemSnapshot,
  fromEvent: boolean
): SystemSlice {
  // An older reply must not overwrite a newer pushed snapshot.
  const current = state.system.snapshot
  if (current && current.takenAt > snapshot.takenAt) return state
  // `system:changed` carries the hardware part only: keep what other domains put into the last
  // full `system:state` (devices, library, queue) and refresh the rest.
  const next = fromEvent && current ? { ...current, ...snapshot } : snapshot
  return {
    system: {
      status: 'ready',
      snapshot: next,
      error: null,
      updates: state.system.updates + (fromEvent ? 1 : 0)
    }
  }
}

export function failedSystemState(state: SystemSlice, error: SerializedError): SystemSlice {
  // Keep the last good figures on screen; the error says they may be stale.
  return { system: { ...state.system, status: 'error', error } }
}
