import type { WorkbenchApi } from '@shared/ipc/api'
import type { StoreApi } from 'zustand'
import type { AppState } from '../store'
import {
  failedSystemState,
  receivedSystemState,
  type SystemSnapshot
} from '../store/slices/systemSlice'

/**
 * The renderer's single connection to `window.api`: subscribes once at boot and feeds the store.
 * Components never call window.api for pushed data; they select from the store.
 * Returns the function that undoes every subscription (tests, hot reload).
 */
export function startBridge(api: WorkbenchApi, store: StoreApi<AppState>): () => void {
  const unsubscribers: Array<() => void> = []

  unsubscribers.push(
    api.on('system:changed', (payload) => {
      store.setState((s) => receivedSystemState(s, payload as SystemSnapshot, true))
    })
  )

  void api.invoke('system:state').then(
    (result) => {
      if (result.ok)
        store.setState((s) => receivedSystemState(s, result.value as SystemSnapshot, false))
      else store.setState((s) => failedSystemState(s, result.error))
    },
    (err: unknown) =>
      store.setState((s) =>
        failedSystemState(s, {
          code: 'unavailable',
          message: err instanceof Error ? err.message : String(err)
        })
      )
  )

  return () => {
    for (const unsubscribe of unsubscribers.splice(0)) unsubscribe()
  }
}
