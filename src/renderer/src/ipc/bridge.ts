import type { WorkbenchApi } from '@shared/ipc/api'
import type { JobRows, JobState } from '@shared/domain/jobs'
import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import type { StoreApi } from 'zustand'
import type { AppState } from '../store'
import {
  failedSystemState,
  receivedSystemState,
  type SystemSnapshot
} from '../store/slices/systemSlice'
import { receivedDevicesSnapshot, recordUtilisation } from '../store/slices/managerSlice'
import { receivedImport, receivedImportList } from '../store/slices/importsSlice'
import {
  receivedJob,
  receivedRows,
  receivedSessionSummary,
  runsToSettle,
  settledRun,
  unsettledRunGivenUp
} from '../store/slices/runsSlice'
import { receivedSessionChange, receivedSessionList } from '../store/slices/sessionsSlice'
import { setApi } from './client'

/** Calls `flush` once per animation frame at most (a timer where there are no frames). */
function frameBatcher<T>(flush: (items: T[]) => void): (item: T) => void {
  let pending: T[] = []
  let scheduled = false
  const raf = (globalThis as { requestAnimationFrame?: (fn: () => void) => number })
    .requestAnimationFrame
  const schedule = raf ? (fn: () => void) => raf(fn) : (fn: () => void) => setTimeout(fn, 16)
  return (item) => {
    pending.push(item)
    if (scheduled) return
    scheduled = true
    schedule(() => {
      scheduled = false
      const items = pending
      pending = []
      flush(items)
    })
  }
}

/**
 * The renderer's single connection to `window.api`: subscribes once at boot and feeds the store.
 * Components never call window.api for pushed data; they select from the store. Streaming rows and
 * job changes are applied once per animation frame, so a fast stream never causes long frames.
 * Returns the function that undoes every subscription (tests, hot reload).
 */
export function startBridge(api: WorkbenchApi, store: StoreApi<AppState>): () => void {
  setApi(api)
  const unsubscribers: Array<() => void> = []

  const applyDevices = (snapshot: DevicesSnapshot): void => {
    store.setState((s) => receivedDevicesSnapshot(s, snapshot))
  }

  unsubscribers.push(
    api.on('system:changed', (payload) => {
      store.setState((s) => {
        const next = receivedSystemState(s, payload as SystemSnapshot, true)
        const ids = s.manager.snapshot?.devices.map((d) => d.id) ?? ['cpu']
        return { ...next, ...recordUtilisation(s, payload, ids) }
      })
    }),
    api.on('devices:changed', applyDevices),
    api.on('imports:changed', (job) => store.setState((s) => receivedImport(s, job)))
  )

  const queueJob = frameBatcher<JobState>((jobs) =>
    store.setState((s) => jobs.reduce((acc, job) => ({ ...acc, ...receivedJob(acc, job) }), s))
  )
  const queueRows = frameBatcher<JobRows>((batches) =>
    store.setState((s) => receivedRows(s, batches))
  )
  unsubscribers.push(
    api.on('jobs:changed', queueJob),
    api.on('jobs:rows', queueRows),
    api.on('sessions:changed', ({ id, summary }) =>
      store.setState((s) => {
        const runs = summary ? receivedSessionSummary(s, summary).runs : s.runs
        return { ...receivedSessionChange(s, id, summary), runs }
      })
    )
  )

  // Reads the whole state: at boot, and again after the headless host's socket reconnects
  // (bridge.js fires `workbench:reconnected`; events pushed while it was down are lost).
  const resync = (): void => {
    void api.invoke('system:state').then(
      (result) => {
        if (!result.ok) {
          store.setState((s) => failedSystemState(s, result.error))
          return
        }
        const snapshot = result.value as SystemSnapshot
        store.setState((s) => receivedSystemState(s, snapshot, false))
        const { devices, library, queue } = result.value
        // Its takenAt is the hardware's: never let it win over a pushed manager snapshot.
        if (devices && library && queue) applyDevices({ devices, library, queue, takenAt: 0 })
      },
      (err: unknown) =>
        store.setState((s) =>
          failedSystemState(s, {
            code: 'unavailable',
            message: err instanceof Error ? err.message : String(err)
          })
        )
    )
    // The manager's own snapshot (starts it if the host has not yet).
    void api.invoke('devices:state').then((r) => {
      if (r.ok) applyDevices(r.value)
    })
    void refreshSessions(api, store)
    void api.invoke('imports:list').then((r) => {
      if (r.ok) store.setState(receivedImportList(r.value))
    })
  }
  resync()
  const target = globalThis as {
    addEventListener?: EventTarget['addEventListener']
    removeEventListener?: EventTarget['removeEventListener']
  }
  if (target.addEventListener && target.removeEventListener) {
    target.addEventListener('workbench:reconnected', resync)
    const remove = target.removeEventListener.bind(globalThis)
    unsubscribers.push(() => remove('workbench:reconnected', resync))
  }
  unsubscribers.push(settleFinishedRuns(api, store))

  return () => {
    for (const unsubscribe of unsubscribers.splice(0)) unsubscribe()
  }
}

/**
 * When a run on screen ends, loads its saved session: the file holds the job's full result and
 * metadata, while the streamed rows can miss batches sent before the run was registered here.
 */
function settleFinishedRuns(api: WorkbenchApi, store: StoreApi<AppState>): () => void {
  const loading = new Set<string>()
  let stopped = false
  const check = (state: AppState): void => {
    for (const id of runsToSettle(state)) {
      if (loading.has(id)) continue
      loading.add(id)
      void api.invoke('sessions:get', { id }).then(
        (r) => {
          loading.delete(id)
          if (stopped) return
          store.setState((s) => (r.ok ? settledRun(s, r.value) : unsettledRunGivenUp(s, id)))
        },
        () => {
          loading.delete(id)
          if (!stopped) store.setState((s) => unsettledRunGivenUp(s, id))
        }
      )
    }
  }
  const unsubscribe = store.subscribe(check)
  check(store.getState())
  return () => {
    stopped = true
    unsubscribe()
  }
}

export async function refreshSessions(api: WorkbenchApi, store: StoreApi<AppState>): Promise<void> {
  const r = await api.invoke('sessions:list')
  if (r.ok) store.setState((s) => receivedSessionList(s, r.value))
}
