/**
 * What the device manager shows: devices, the library with placement facts, the queue, and the
 * coalesced `devices:changed` notification. Every value leaving here is a copy of the records.
 */
import type { GroupSettings, ManagedDevice } from '@shared/domain/devices'
import { TERMINAL_JOB_STATUSES, type JobState, type QueueSummary } from '@shared/domain/jobs'
import type { ModelLibrary as LibrarySnapshot } from '@shared/domain/models'
import type { Clock } from '../platform/clock'
import type { Logger } from '../platform/logger'
import type { ModelLibrary } from './library'
import { copyJobState, publicPlacement, type DeviceRecord } from './records'

/** A device as the contract shows it, at `now` (the running task's busy time so far counts). */
export function describeDevice(d: DeviceRecord, now: number): ManagedDevice {
  const placements = [...d.placements.values()].map(publicPlacement)
  const out: ManagedDevice = {
    id: d.desc.id,
    kind: d.desc.kind,
    name: d.desc.name,
    virtual: d.desc.virtual,
    provider: d.desc.provider,
    threads: d.desc.threads,
    budgetBytes: d.desc.budgetBytes,
    usedBytes: placements.reduce((s, p) => s + p.countedBytes, 0),
    processBytes: d.processBytes,
    status: d.status,
    workerPid: d.client?.pid ?? null,
    restarts: d.restarts,
    runningJobId: d.task?.jobId ?? null,
    busySeconds: (d.busyMs + (d.task ? Math.max(0, now - d.task.startedAt) : 0)) / 1000,
    placements,
    lastUnload: d.lastUnload
  }
  if (d.desc.providerError) out.providerError = d.desc.providerError
  if (d.statusDetail) out.statusDetail = d.statusDetail
  if (d.hostCache) {
    out.hostCache = {
      budgetBytes: d.hostCache.budgetBytes,
      bytes: d.hostCache.bytes,
      groups: d.hostCache.groups.map(({ groupId, contentHash, bytes }) => ({
        groupId,
        contentHash,
        bytes
      }))
    }
  }
  return out
}

/** The library as the contract shows it: each group's measured size and where it is loaded. */
export function describeLibrary(
  library: ModelLibrary,
  devices: Iterable<DeviceRecord>,
  measuredFor: (groupId: string) => number | null,
  settingsFor?: (groupId: string) => GroupSettings
): LibrarySnapshot {
  const all = [...devices]
  return {
    folder: library.folder,
    groups: library.describe((e) => ({
      measuredBytes: measuredFor(e.groupId),
      loadedOn: all.filter((d) => d.placements.has(e.groupId)).map((d) => d.desc.id),
      ...(settingsFor ? { settings: settingsFor(e.groupId) } : {})
    })),
    scannedAt: library.scannedAt,
    ...(library.folderError ? { folderError: library.folderError } : {})
  }
}

/** Unfinished jobs, then the last 20 finished ones. */
export function describeQueue(states: readonly JobState[]): QueueSummary {
  const active = states.filter((j) => !TERMINAL_JOB_STATUSES.includes(j.status))
  const finished = states.filter((j) => TERMINAL_JOB_STATUSES.includes(j.status)).slice(-20)
  return {
    queued: active.filter((j) => j.status === 'queued').length,
    running: active.length - active.filter((j) => j.status === 'queued').length,
    jobs: [...active, ...finished].map(copyJobState)
  }
}

/**
 * Coalesces change notifications: however many changes happen in one turn, one send goes out
 * after it. With `minIntervalMs`, a change within that long of the last send waits for the
 * interval's end, and every change meanwhile rides on that one send: a burst of jobs changes the
 * devices' state on every worker message, and each snapshot copies every queued job (what it
 * costs the main process, which shares the cores with the workers: docs/benchmarks.md, "Devices").
 * The first change after a quiet interval still goes out after its turn. A send that fails (a
 * payload the contract refuses) is logged, never thrown into the event loop.
 */
export class ChangeNotifier {
  readonly #clock: Clock
  readonly #send: () => void
  readonly #log: Logger
  readonly #minIntervalMs: number
  /** What a send publishes, for the log when it fails. */
  readonly #what: string
  #pending = false
  #closed = false
  #lastSentAt = -Infinity

  constructor(
    clock: Clock,
    send: () => void,
    log: Logger,
    minIntervalMs = 0,
    what = 'devices:changed'
  ) {
    this.#clock = clock
    this.#send = send
    this.#log = log
    this.#minIntervalMs = minIntervalMs
    this.#what = what
  }

  notify(): void {
    if (this.#pending || this.#closed) return
    this.#pending = true
    const run = (): void => {
      this.#pending = false
      if (this.#closed) return
      this.#lastSentAt = this.#clock.now()
      try {
        this.#send()
      } catch (err) {
        this.#log.error(`${this.#what} was not sent`, err)
      }
    }
    const wait = this.#lastSentAt + this.#minIntervalMs - this.#clock.now()
    if (wait > 0) this.#clock.after(wait, run, { background: true })
    else this.#clock.defer(run)
  }

  close(): void {
    this.#closed = true
  }
}
