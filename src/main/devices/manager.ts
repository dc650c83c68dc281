/**
 * The device manager: model groups placed on devices, one worker process per device, a fair job
 * queue, cancellation and crash recovery. One code path: a single GPU (or the CPU alone) is just
 * the one-device case. Nothing here runs inference; workers do (see ../worker).
 *
 * This class is the front: the public API, and the wiring of its parts. Worker supervision
 * (workerSupervisor.ts), residency and measured memory (residency.ts), the job table
 * (jobTable.ts), the pure scheduler (scheduler.ts), the executor (executor.ts), row assembly
 * (rowAssembler.ts) and snapshots (snapshots.ts). docs/devices.md draws the states.
 */
import type {
  DeviceClearResult,
  DeviceSpec,
  FitEstimate,
  GroupSettings,
  ManagedDevice,
  Placement,
  ReplicaSettings,
  StartupReport
} from '@shared/domain/devices'
import {
  TERMINAL_JOB_STATUSES,
  type JobResult,
  type JobRows,
  type JobState,
  type JobSubmitInput,
  type QueueSummary
} from '@shared/domain/jobs'
import type { ModelLibrary as LibrarySnapshot } from '@shared/domain/models'
import type { HardwareState } from '@shared/domain/system'
import { AppError } from '@shared/ipc/errors'
import type { DeviceActivity, DevicesSnapshot } from '@shared/ipc/channels/devices'
import { systemClock, type Clock } from '../platform/clock'
import type { CommandRunner } from '../platform/commandRunner'
import { createLogger, type Logger } from '../platform/logger'
import { deviceSpecsFromEnv, resolveDevices } from './config'
import { Executor } from './executor'
import { checkSubmission, JobTable } from './jobTable'
import type { ModelLibrary } from './library'
import {
  canTakeNext,
  copyJobState,
  isIdle,
  isUsable,
  publicPlacement,
  tasksOf,
  type DeviceRecord,
  type JobRecord
} from './records'
import { reloadCacheFromEnv, workerCacheConfig, type ReloadCacheOptions } from './reloadCache'
import { Residency } from './residency'
import {
  nextDecision,
  placementDevice,
  type SchedulerDecision,
  type SchedulerView
} from './scheduler'
import { chooseDevice } from './placement'
import {
  DEFAULT_GROUP_SETTINGS,
  EMPTY_PLACEMENTS,
  type PlacementStore,
  type SavedPlacements
} from './placementStore'
import { planRestore, type RestoreLoad } from './restore'
import { ChangeNotifier, describeDevice, describeLibrary, describeQueue } from './snapshots'
import type { SpawnWorker } from './transport'
import { WorkerSupervisor } from './workerSupervisor'

/** The events the manager pushes (a subset of the contract's event channels). */
export interface ManagerEvents {
  'devices:changed': DevicesSnapshot
  'devices:activity': DeviceActivity
  'jobs:changed': JobState
  'jobs:rows': JobRows
}
export type ManagerEmit = <E extends keyof ManagerEvents>(
  channel: E,
  payload: ManagerEvents[E]
) => void

export interface DeviceManagerOptions {
  hardware: HardwareState
  library: ModelLibrary
  spawn: SpawnWorker
  emit?: ManagerEmit
  /** Devices; default: `TALKATIVE_DEVICES`, else the CPU plus every GPU. */
  devices?: DeviceSpec[]
  cpuMemoryShare?: number
  /** Liveness ping period and how long an unanswered ping is tolerated before a restart. */
  heartbeatMs?: number
  graceMs?: number
  /** How long a running job may take to stop after a cancel before its worker is killed. */
  cancelGraceMs?: number
  /** Restarts in a row that may fail before a device is marked `error`. */
  maxRestartFailures?: number
  /** Finished jobs kept for `jobs:get` / `jobs:result`. */
  keepFinishedJobs?: number
  /** Smallest data-parallel share, in positions. */
  minChunkPositions?: number
  /**
   * Shortest time between two `devices:changed` snapshots (default 100 ms); changes meanwhile
   * are coalesced into the next one. 0: one after every turn that changed something.
   */
  snapshotIntervalMs?: number
  /**
   * Shortest time between two publications of queued jobs' moves up the queue (default 500 ms;
   * jobTable.ts `updateQueuePositions`): each flush publishes every queued job that moved, so it
   * is spaced further than the snapshots. A job's first position, every change of its status and
   * `jobs:get` are exact at once. 0: a flush after every turn that moved a job.
   */
  queueMovesIntervalMs?: number
  /** nvidia-smi runner for measured GPU memory. */
  runCommand?: CommandRunner
  /** Time and timers (tests pass a manual clock); `now` alone replaces only the time. */
  clock?: Clock
  now?: () => number
  /** Workers' reload cache (host budget, optimized-graph folder); default: from the environment. */
  reloadCache?: ReloadCacheOptions
  /**
   * Where pins, placements and group settings are saved and restored from at start (absent:
   * nothing is saved; every group has the default settings).
   */
  placements?: PlacementStore
}

/** The client whose jobs restore the saved placements at start (they run before any other). */
export const STARTUP_CLIENT = 'startup'

const DEFAULTS = {
  heartbeatMs: 2000,
  graceMs: 30_000,
  cancelGraceMs: 30_000,
  maxRestartFailures: 3,
  keepFinishedJobs: 200,
  minChunkPositions: 2,
  snapshotIntervalMs: 100,
  queueMovesIntervalMs: 500
}

type UnloadResult = {
  deviceId: string
  freedBytes: number
  expectedBytes: number
  memoryReturned: boolean
}

export class DeviceManager {
  readonly #library: ModelLibrary
  readonly #clock: Clock
  readonly #log: Logger
  readonly #emit: ManagerEmit
  readonly #devices = new Map<string, DeviceRecord>()
  readonly #jobs: JobTable
  readonly #residency: Residency
  readonly #supervisor: WorkerSupervisor
  readonly #executor: Executor
  /** Saves the placements after every turn that changed them. */
  readonly #notifier: ChangeNotifier
  /** `devices:changed`, at most every `snapshotIntervalMs` (snapshots.ts, ChangeNotifier). */
  readonly #snapshots: ChangeNotifier
  /** Queue moves not published yet, flushed at most every `queueMovesIntervalMs`. */
  readonly #moves: ChangeNotifier
  readonly #store: PlacementStore | undefined
  readonly #settings = new Map<string, GroupSettings>()
  #startup: StartupReport
  /** While true, only the startup client's jobs are scheduled (preloads before any job). */
  #restoring = false
  #restored: Promise<void> = Promise.resolve()
  #disposed = false

  constructor(options: DeviceManagerOptions) {
    this.#library = options.library
    this.#store = options.placements
    this.#startup = { status: 'done', file: this.#store?.file ?? null, notes: [] }
    this.#clock =
      options.clock ?? (options.now ? { ...systemClock, now: options.now } : systemClock)
    this.#log = createLogger('devices')
    const emit = options.emit ?? (() => undefined)
    // A payload the contract refuses is this process's bug: logged, never thrown into the caller
    // (or, for the deferred snapshot, into the event loop).
    this.#emit = (channel, payload) => {
      try {
        emit(channel, payload)
      } catch (err) {
        this.#log.error(`${channel} was not sent`, err)
      }
    }
    const specs = options.devices ?? deviceSpecsFromEnv()
    for (const desc of resolveDevices(options.hardware, specs, options.cpuMemoryShare)) {
      const gpu =
        desc.gpuIndex !== undefined
          ? options.hardware.gpus.find((g) => g.index === desc.gpuIndex)
          : undefined
      this.#devices.set(desc.id, {
        desc,
        gpuUuid: gpu?.uuid ?? '',
        status: desc.provider ? 'starting' : 'error',
        statusDetail: desc.providerError,
        client: null,
        generation: 0,
        baselineRss: null,
        processBytes: null,
        restarts: 0,
        restartFailures: 0,
        placements: new Map(),
        reloadAfterRestart: [],
        task: null,
        next: null,
        busyMs: 0,
        lastUnload: null,
        hostCache: null,
        stopping: false,
        ready: Promise.resolve()
      })
    }
    const workers = [...this.#devices.values()].filter((d) => d.desc.provider).length
    const changed = (): void => this.#changed()
    const schedule = (): void => this.#schedule()
    const isDisposed = (): boolean => this.#disposed
    const graceMs = options.graceMs ?? DEFAULTS.graceMs
    this.#snapshots = new ChangeNotifier(
      this.#clock,
      () => this.#emit('devices:changed', this.snapshot()),
      this.#log,
      options.snapshotIntervalMs ?? DEFAULTS.snapshotIntervalMs
    )
    this.#notifier = new ChangeNotifier(
      this.#clock,
      () => this.#persist(),
      this.#log,
      0,
      'the placements'
    )
    this.#moves = new ChangeNotifier(
      this.#clock,
      () => this.#jobs.flushMoves(),
      this.#log,
      options.queueMovesIntervalMs ?? DEFAULTS.queueMovesIntervalMs,
      'queue moves (jobs:changed)'
    )
    this.#jobs = new JobTable({
      now: () => this.#clock.now(),
      keepFinishedJobs: options.keepFinishedJobs ?? DEFAULTS.keepFinishedJobs,
      publish: (job) => this.#publish(job),
      movesPending: () => this.#moves.notify()
    })
    this.#supervisor = new WorkerSupervisor(
      {
        spawn: options.spawn,
        clock: this.#clock,
        log: this.#log,
        cacheConfig: workerCacheConfig(
          options.reloadCache ?? reloadCacheFromEnv(),
          options.hardware.cpu.memoryTotalBytes,
          workers
        ),
        heartbeatMs: options.heartbeatMs ?? DEFAULTS.heartbeatMs,
        graceMs,
        maxRestartFailures: options.maxRestartFailures ?? DEFAULTS.maxRestartFailures
      },
      {
        isDisposed,
        onRows: (d, taskId, rows, total) => this.#executor.onRows(d, taskId, rows, total),
        onInterventions: (d, taskId, rows, progress) =>
          this.#executor.onInterventions(d, taskId, rows, progress),
        onOptimiser: (d, taskId, progress) => this.#executor.onOptimiser(d, taskId, progress),
        onStage: (d, groupId, stage, fraction) =>
          this.#executor.onStage(d, groupId, stage, fraction),
        reload: async (d, groupId) => {
          const entry = this.#library.get(groupId)
          await this.#residency.load(d, groupId, entry.dir, entry.summary.estimatedBytes)
        },
        changed,
        schedule
      }
    )
    this.#residency = new Residency({
      library: this.#library,
      residentFacts: (groupId) => ({
        copies: [...this.#devices.values()].filter((d) => d.placements.has(groupId) && isUsable(d))
          .length,
        min: this.groupSettings(groupId).replicas.min
      }),
      runCommand: options.runCommand,
      now: () => this.#clock.now(),
      changed,
      activity: (event) => this.#emit('devices:activity', event),
      cacheChanged: (d) => this.#supervisor.refreshHostCache(d)
    })
    this.#executor = new Executor(
      {
        clock: this.#clock,
        log: this.#log,
        graceMs,
        cancelGraceMs: options.cancelGraceMs ?? DEFAULTS.cancelGraceMs,
        minChunkPositions: options.minChunkPositions ?? DEFAULTS.minChunkPositions
      },
      {
        devices: this.#devices,
        jobs: this.#jobs,
        residency: this.#residency,
        library: this.#library,
        supervisor: this.#supervisor,
        publish: (job) => this.#publish(job),
        emitRows: (rows) => this.#emit('jobs:rows', rows),
        changed,
        schedule,
        isDisposed
      }
    )
  }

  /** Something shown changed: a snapshot goes out and the placements are saved (with a store). */
  #changed(): void {
    this.#snapshots.notify()
    if (this.#store) this.#notifier.notify()
  }

  //#region lifecycle

  /**
   * Scans the library and starts one worker per usable device; resolves when all answered. Then
   * the saved placements are restored (`restored()`): jobs submitted meanwhile wait in the queue
   * until every preload has finished.
   */
  async start(): Promise<void> {
    // Nothing is saved and no other job runs until the restore has read and applied the file.
    if (this.#store) {
      this.#restoring = true
      this.#startup.status = 'restoring'
    }
    await this.#library.scan()
    const starts: Promise<void>[] = []
    for (const d of this.#devices.values()) {
      if (d.desc.provider) starts.push(this.#supervisor.start(d))
    }
    await Promise.all(starts)
    this.#changed()
    if (this.#store) this.#restored = this.#restore(this.#store)
  }

  /** Resolves once the saved placements have been restored (at once without a store). */
  restored(): Promise<void> {
    return this.#restored
  }

  /** Called by the library after a rescan: the snapshot changes and queued jobs may now resolve. */
  libraryChanged(): void {
    this.#changed()
    this.#schedule()
  }

  async dispose(): Promise<void> {
    this.#disposed = true
    this.#notifier.close()
    this.#snapshots.close()
    this.#moves.close()
    // The last state is saved as it was before the workers go (their exit is no unload).
    await this.#store?.flush()
    // Every job ends here, running ones too: nothing will schedule, retry or finish them once the
    // workers are gone, and whoever awaits them (load with wait, waitFor, the API) must return.
    for (const job of this.#jobs.all()) {
      if (TERMINAL_JOB_STATUSES.includes(job.state.status)) continue
      for (const task of job.active.values()) task.cancelTimer?.cancel()
      const kept = job.ordered.length > 0 ? `; ${job.ordered.length} rows kept` : ''
      this.#jobs.finish(
        job,
        'cancelled',
        new AppError('cancelled', `the app is shutting down${kept}`)
      )
    }
    await this.#supervisor.shutdown(this.#devices.values())
  }

  //#endregion

  //#region snapshots

  devices(): ManagedDevice[] {
    const now = this.#clock.now()
    return [...this.#devices.values()].map((d) => describeDevice(d, now))
  }

  library(): LibrarySnapshot {
    return describeLibrary(
      this.#library,
      this.#devices.values(),
      (groupId) => this.#residency.measuredBytes(groupId),
      (groupId) => this.groupSettings(groupId)
    )
  }

  queue(): QueueSummary {
    return describeQueue(this.#jobs.all().map((j) => j.state))
  }

  snapshot(): DevicesSnapshot {
    return {
      devices: this.devices(),
      library: this.library(),
      queue: this.queue(),
      takenAt: this.#clock.now(),
      startup: { ...this.#startup, notes: [...this.#startup.notes] }
    }
  }

  #publish(job: JobRecord): void {
    this.#emit('jobs:changed', copyJobState(job.state))
    this.#changed()
  }

  //#endregion

  //#region models: estimate, load, unload, pin, move

  #device(deviceId: string): DeviceRecord {
    const d = this.#devices.get(deviceId)
    if (!d) {
      throw new AppError(
        'not_found',
        `no device ${deviceId} (devices: ${[...this.#devices.keys()].join(', ')})`,
        { field: 'deviceId' }
      )
    }
    return d
  }

  async rescan(): Promise<void> {
    await this.#library.scan()
    this.libraryChanged()
  }

  /** Will `groupId` fit on `deviceId`, and what would be evicted? (the UI's live preview) */
  estimate(groupId: string, deviceId: string): FitEstimate {
    const entry = this.#library.get(groupId)
    return this.#residency.estimate(entry.groupId, this.#device(deviceId))
  }

  /** Queues a load (a `load` job); with `wait`, resolves once the group is resident. */
  async load(
    input: { groupId: string; deviceId?: string; wait?: boolean; moveFrom?: string },
    clientId: string
  ): Promise<{ jobId: string; deviceId: string; placement: Placement | null }> {
    const { jobId } = this.submit(
      { kind: 'load', groupId: input.groupId, deviceId: input.deviceId },
      clientId,
      input.moveFrom
    )
    const job = this.#jobs.get(jobId)
    if (input.wait === false) return { jobId, deviceId: input.deviceId ?? '', placement: null }
    await job.finished
    if (job.state.status !== 'done') {
      const e = job.state.error
      throw new AppError(e?.code ?? 'internal', e?.message ?? `load ${job.state.status}`, {
        field: e?.field,
        file: e?.file
      })
    }
    return { jobId, deviceId: job.placementDevice!, placement: job.placement }
  }

  /** Load on `toDeviceId`, then unload from where it was. Pinned groups are never moved. */
  async move(
    input: { groupId: string; fromDeviceId?: string; toDeviceId: string; wait?: boolean },
    clientId: string
  ): Promise<{ jobId: string; deviceId: string; placement: Placement | null }> {
    const holders = [...this.#devices.values()].filter(
      (d) => d.placements.has(input.groupId) && d.desc.id !== input.toDeviceId
    )
    const from = input.fromDeviceId ? this.#device(input.fromDeviceId) : holders[0]
    if (!from || !from.placements.has(input.groupId)) {
      throw new AppError(
        'not_found',
        `${input.groupId} is not loaded on ${input.fromDeviceId ?? 'any other device'}`,
        { field: 'fromDeviceId' }
      )
    }
    if (from.desc.id === input.toDeviceId)
      throw new AppError('invalid_input', 'source and target are the same device', {
        field: 'toDeviceId'
      })
    if (from.placements.get(input.groupId)!.pinned) {
      throw new AppError(
        'conflict',
        `${input.groupId} is pinned on ${from.desc.id}; unpin it before moving`,
        { field: 'groupId' }
      )
    }
    this.#device(input.toDeviceId)
    return this.load(
      {
        groupId: input.groupId,
        deviceId: input.toDeviceId,
        wait: input.wait,
        moveFrom: from.desc.id
      },
      clientId
    )
  }

  pin(groupId: string, deviceId: string, pinned: boolean): Placement {
    return this.#residency.pin(this.#device(deviceId), groupId, pinned)
  }

  /**
   * Unloads now (not queued). Refuses pinned groups and groups in use unless `force`, which first
   * cancels the jobs using them and waits for them to stop.
   */
  async unload(input: {
    groupId: string
    deviceId?: string
    force?: boolean
  }): Promise<UnloadResult[]> {
    const targets = input.deviceId
      ? [this.#device(input.deviceId)]
      : [...this.#devices.values()].filter((d) => d.placements.has(input.groupId))
    const holding = targets.filter((d) => d.placements.has(input.groupId))
    if (holding.length === 0) {
      throw new AppError(
        'not_found',
        `${input.groupId} is not loaded${input.deviceId ? ` on ${input.deviceId}` : ''}`,
        { field: 'groupId' }
      )
    }
    for (const d of holding) {
      const p = d.placements.get(input.groupId)!
      if (p.pinned && !input.force) {
        throw new AppError(
          'conflict',
          `${input.groupId} is pinned on ${d.desc.id}; unpin it first (or force)`,
          { field: 'groupId' }
        )
      }
      if (p.state !== 'ready' && !input.force) {
        throw new AppError('conflict', `${input.groupId} is ${p.state} on ${d.desc.id}`, {
          field: 'groupId'
        })
      }
      const user = tasksOf(d).find((t) => t.groupId === input.groupId)
      if (user && !input.force) {
        throw new AppError(
          'conflict',
          `${input.groupId} on ${d.desc.id} is in use by ${user.jobId}; cancel it first (or force)`,
          { field: 'groupId' }
        )
      }
    }
    const out: UnloadResult[] = []
    for (const d of holding) {
      // The job held ahead too: it would run on the group once the running one ends.
      const users = tasksOf(d)
        .filter((t) => t.groupId === input.groupId)
        .map((t) => this.#jobs.find(t.jobId))
        .filter((j): j is JobRecord => j !== undefined)
      for (const job of users) this.cancel(job.state.id)
      await Promise.all(users.map((j) => j.finished))
      const check = await this.#residency.unload(d, input.groupId)
      out.push({
        deviceId: d.desc.id,
        freedBytes: check.freedBytes,
        expectedBytes: check.expectedBytes,
        memoryReturned: check.ok
      })
    }
    this.#schedule()
    return out
  }

  /** Unloads every group of a device now; see the `devices:clear` channel. */
  async clearDevice(deviceId: string, force = false): Promise<DeviceClearResult> {
    const d = this.#device(deviceId)
    const out: DeviceClearResult = { deviceId, unloaded: [], kept: [] }
    for (const p of [...d.placements.values()]) {
      let reason: string | null = null
      if (p.state !== 'ready') reason = `still ${p.state}`
      else if (!force && p.pinned) reason = 'pinned (clear with force to unload it too)'
      else if (!force && tasksOf(d).some((t) => t.groupId === p.groupId))
        reason = `in use by ${tasksOf(d)
          .filter((t) => t.groupId === p.groupId)
          .map((t) => t.jobId)
          .join(', ')} (clear with force to cancel it)`
      if (reason) {
        out.kept.push({ groupId: p.groupId, reason })
        continue
      }
      const [r] = await this.unload({ groupId: p.groupId, deviceId, force })
      if (r) out.unloaded.push({ groupId: p.groupId, ...r })
    }
    return out
  }

  /**
   * Everything back to the start: unfinished jobs cancelled, every device cleared (pins too), then
   * the preload groups loaded again. Settings are kept. The predecessor's `POST /reset`.
   */
  async reset(): Promise<{ cancelled: number; cleared: DeviceClearResult[] }> {
    let cancelled = 0
    for (const job of this.#jobs.all()) {
      if (TERMINAL_JOB_STATUSES.includes(job.state.status)) continue
      this.cancel(job.state.id)
      cancelled += 1
    }
    await Promise.all(
      this.#jobs
        .all()
        .filter((j) => j.active.size > 0)
        .map((j) => j.finished)
    )
    const cleared: DeviceClearResult[] = []
    for (const d of this.#devices.values()) {
      if (!isUsable(d) || !d.client) continue
      cleared.push(await this.clearDevice(d.desc.id, true))
    }
    const preload: SavedPlacements = {
      version: 1,
      groups: Object.fromEntries(this.#settings),
      placements: []
    }
    await this.#restoreFrom(preload, [])
    return { cancelled, cleared }
  }

  //#endregion

  //#region group settings, saved placements and their restore at start

  /** A group's replicas and preload flag (the defaults when none were set). */
  groupSettings(groupId: string): GroupSettings {
    const s = this.#settings.get(groupId) ?? DEFAULT_GROUP_SETTINGS
    return { replicas: { ...s.replicas }, preload: s.preload }
  }

  /** Changes a group's settings (saved with the placements); omitted fields keep their value. */
  setGroupSettings(input: {
    groupId: string
    replicas?: ReplicaSettings
    preload?: boolean
  }): GroupSettings {
    if (!this.#library.entries().some((e) => e.groupId === input.groupId)) {
      throw new AppError('not_found', `no model group ${input.groupId} in the library`, {
        field: 'groupId'
      })
    }
    const now = this.groupSettings(input.groupId)
    const next: GroupSettings = {
      replicas: input.replicas ? { ...input.replicas } : now.replicas,
      preload: input.preload ?? now.preload
    }
    this.#settings.set(input.groupId, next)
    this.#changed()
    // A higher max may let a waiting job take a replica now.
    this.#schedule()
    return this.groupSettings(input.groupId)
  }

  /** What would be saved now: settings that differ from the defaults, pins, preload residency. */
  #savedState(): SavedPlacements {
    const groups: SavedPlacements['groups'] = {}
    for (const [groupId, s] of this.#settings) {
      if (JSON.stringify(s) !== JSON.stringify(DEFAULT_GROUP_SETTINGS)) groups[groupId] = s
    }
    const placements: SavedPlacements['placements'] = []
    for (const d of this.#devices.values()) {
      for (const p of d.placements.values()) {
        if (p.state !== 'ready') continue
        if (p.pinned || this.groupSettings(p.groupId).preload)
          placements.push({ groupId: p.groupId, deviceId: d.desc.id, pinned: p.pinned })
      }
    }
    return { version: 1, groups, placements }
  }

  #persist(): void {
    // While restoring, residency is half there: saving it would forget what is still to load.
    if (!this.#store || this.#restoring || this.#disposed) return
    this.#store
      .save(this.#savedState())
      .catch(this.#log.failed(`saving placements to ${this.#store.file}`))
  }

  async #restore(store: PlacementStore): Promise<void> {
    let outcome: Awaited<ReturnType<PlacementStore['read']>>
    try {
      outcome = await store.read()
    } catch (err) {
      outcome = { saved: EMPTY_PLACEMENTS, problem: (err as Error).message }
    }
    const { saved, problem } = outcome
    for (const [groupId, settings] of Object.entries(saved.groups))
      this.#settings.set(groupId, settings)
    await this.#restoreFrom(saved, problem ? [`saved placements not used: ${problem}`] : [])
  }

  /**
   * Loads what `saved` asks for before any other job runs: its placements on their devices (or by
   * the rules when a device is gone), the preload groups, then the copies `replicas.min` wants.
   */
  async #restoreFrom(saved: SavedPlacements, notes: string[]): Promise<void> {
    this.#restoring = true
    this.#startup = { status: 'restoring', file: this.#store?.file ?? null, notes: [...notes] }
    this.#changed()
    try {
      const plan = planRestore(
        saved,
        [...this.#devices.values()].map((d) => ({
          id: d.desc.id,
          ...(isUsable(d) ? {} : { unusable: d.statusDetail ?? d.desc.providerError ?? d.status })
        })),
        new Set(
          this.#library
            .entries()
            .filter((e) => e.summary)
            .map((e) => e.groupId)
        )
      )
      this.#startup.notes.push(...plan.notes)
      await Promise.all(plan.loads.map((l) => this.#startupLoad(l)))
      for (const { groupId, copies } of plan.copies) {
        while (!this.#disposed && this.#holders(groupId).length < copies) {
          const deviceId = this.#deviceForCopy(groupId)
          if (!deviceId) {
            this.#startup.notes.push(
              `${groupId}: replicas.min asks for ${copies} copies; only ${this.#holders(groupId).length} fit`
            )
            break
          }
          if (!(await this.#startupLoad({ groupId, deviceId, pinned: false }))) break
        }
      }
    } catch (err) {
      this.#startup.notes.push(`restoring placements failed: ${(err as Error).message}`)
    } finally {
      this.#restoring = false
      this.#startup.status = 'done'
      this.#changed()
      this.#schedule()
    }
  }

  #holders(groupId: string): DeviceRecord[] {
    return [...this.#devices.values()].filter((d) => d.placements.has(groupId) && isUsable(d))
  }

  /** A device of the holders' kind, not holding the group, where it fits (placement rules). */
  #deviceForCopy(groupId: string): string | null {
    const view = this.#schedulerView()
    const kinds = new Set(this.#holders(groupId).map((d) => d.desc.kind))
    const candidates = view.devices.filter(
      (d) => kinds.has(d.kind) && !d.placements.some((p) => p.groupId === groupId)
    )
    try {
      return chooseDevice(
        candidates.map((d) => placementDevice(d, view)),
        groupId,
        (id) => this.#residency.requiredBytes(groupId, this.#device(id))
      ).deviceId
    } catch {
      return null
    }
  }

  /** One load of the restore, as a job of the startup client; false (and a note) if it failed. */
  async #startupLoad(l: RestoreLoad): Promise<boolean> {
    const where = l.deviceId ? ` on ${l.deviceId}` : ''
    try {
      const { jobId } = this.submit(
        { kind: 'load', groupId: l.groupId, ...(l.deviceId ? { deviceId: l.deviceId } : {}) },
        STARTUP_CLIENT
      )
      const job = this.#jobs.get(jobId)
      await job.finished
      if (job.state.status !== 'done' || !job.placementDevice) {
        this.#startup.notes.push(
          `${l.groupId} was not restored${where}: ${job.state.error?.message ?? job.state.status}`
        )
        return false
      }
      if (l.pinned) this.pin(l.groupId, job.placementDevice, true)
      return true
    } catch (err) {
      this.#startup.notes.push(`${l.groupId} was not restored${where}: ${(err as Error).message}`)
      return false
    }
  }

  //#endregion

  //#region jobs

  /** Queues a job for `clientId`; returns its id and queue position at once. */
  submit(
    input: JobSubmitInput,
    clientId: string,
    moveFrom?: string
  ): { jobId: string; queuePosition: number | null } {
    if (this.#disposed) throw new AppError('unavailable', 'the app is shutting down')
    const { req, lensId } = checkSubmission(input, {
      library: this.#library,
      device: (deviceId) => this.#device(deviceId)
    })
    const job = this.#jobs.add(req, lensId, clientId, moveFrom ?? null)
    this.#schedule()
    return { jobId: job.state.id, queuePosition: job.state.queuePosition }
  }

  getJob(jobId: string): JobState {
    return copyJobState(this.#jobs.get(jobId).state)
  }

  listJobs(filter: { clientId?: string; status?: JobState['status'] } = {}): JobState[] {
    return this.#jobs.list(filter)
  }

  result(jobId: string): JobResult {
    return this.#jobs.result(jobId)
  }

  /** Resolves when the job has finished (any terminal status). */
  async waitFor(jobId: string): Promise<JobState> {
    await this.#jobs.get(jobId).finished
    return this.getJob(jobId)
  }

  /** Queued: removed at once. Running: stops at the next batch boundary, rows so far kept. */
  cancel(jobId: string): JobState {
    const job = this.#jobs.get(jobId)
    const s = job.state
    if (TERMINAL_JOB_STATUSES.includes(s.status)) return this.getJob(jobId)
    if (s.status === 'queued') {
      this.#jobs.finish(job, 'cancelled', new AppError('cancelled', 'cancelled while queued'))
      return this.getJob(jobId)
    }
    job.cancelRequested = true
    job.remaining = []
    s.stage = 'cancelling'
    this.#executor.cancelRunning(job)
    if (job.active.size === 0 && s.status !== 'loading')
      this.#jobs.finish(job, 'cancelled', new AppError('cancelled', 'cancelled'))
    this.#publish(job)
    return this.getJob(jobId)
  }

  //#endregion

  //#region scheduling

  /** Asks the scheduler for the next decision and applies it, until it says wait. */
  #schedule(): void {
    if (this.#disposed) return
    let applied = false
    for (let guard = 0; guard < 64; guard++) {
      // With no idle device the scheduler can only say wait (nextDecision), so its view (every
      // queued job) is not built: a burst's submits, and the turn after a device took its next
      // job, would otherwise build it for nothing.
      // A busy device that may hold one job ahead (canTakeNext) still asks.
      if (![...this.#devices.values()].some((d) => isIdle(d) || canTakeNext(d))) break
      const decision = nextDecision(this.#schedulerView())
      if (decision.kind === 'wait') break
      this.#apply(decision)
      applied = true
    }
    // Positions move only when a job left the queue or started (adding and finishing a job update
    // them themselves): a burst's submits and answers would otherwise re-rank the whole queue each.
    if (applied) this.#jobs.updateQueuePositions()
  }

  #apply(decision: Exclude<SchedulerDecision, { kind: 'wait' }>): void {
    const job = this.#jobs.get(decision.jobId)
    switch (decision.kind) {
      case 'run':
        void this.#executor.run(job, this.#device(decision.deviceId), decision.evictions)
        return
      case 'next':
        void this.#executor.run(job, this.#device(decision.deviceId), [], true)
        return
      case 'already-loaded': {
        const target = this.#device(decision.deviceId)
        job.placementDevice = target.desc.id
        job.placement = publicPlacement(target.placements.get(job.state.groupId)!)
        job.state.devices = [target.desc.id]
        this.#jobs.finish(job, 'done')
        return
      }
      case 'fail':
        this.#jobs.finish(job, 'failed', decision.error)
        return
    }
  }

  #schedulerView(): SchedulerView {
    const devices = [...this.#devices.values()]
    // What a group needs on each device, once per group: a burst queues many jobs of one group.
    const required = new Map<string, Record<string, number>>()
    const requiredBytes = (groupId: string): Record<string, number> => {
      let bytes = required.get(groupId)
      if (!bytes) {
        bytes = Object.fromEntries(
          devices.map((d) => [d.desc.id, this.#residency.requiredBytes(groupId, d)])
        )
        required.set(groupId, bytes)
      }
      return bytes
    }
    const view = (job: JobRecord): SchedulerView['queued'][number] => ({
      id: job.state.id,
      clientId: job.state.clientId,
      kind: job.state.kind,
      status: job.state.status,
      groupId: job.state.groupId,
      requestedDeviceId: job.state.requestedDeviceId,
      moveFrom: job.moveFrom,
      activeShares: job.active.size,
      requiredBytes: requiredBytes(job.state.groupId)
    })
    const replicas: Record<string, ReplicaSettings> = {}
    for (const [groupId, settings] of this.#settings) replicas[groupId] = settings.replicas
    return {
      replicas,
      devices: devices.map((d) => ({
        id: d.desc.id,
        kind: d.desc.kind,
        budgetBytes: d.desc.budgetBytes,
        hasProvider: d.desc.provider !== null,
        status: d.status,
        idle: isIdle(d),
        taskGroupId: d.task?.groupId ?? null,
        taskClientId: (d.task && this.#jobs.find(d.task.jobId)?.state.clientId) ?? null,
        canTakeNext: canTakeNext(d),
        nextClientId: (d.next && this.#jobs.find(d.next.jobId)?.state.clientId) ?? null,
        placements: [...d.placements.values()].map((p) => ({
          groupId: p.groupId,
          state: p.state,
          bytes: p.countedBytes,
          pinned: p.pinned,
          lastUsedAt: p.lastUsedAt
        }))
      })),
      continuing: this.#jobs
        .open()
        .filter(
          (j) =>
            (j.state.status === 'running' || j.state.status === 'loading') &&
            j.remaining.length > 0 &&
            !j.cancelRequested
        )
        .map(view),
      queued: this.#jobs
        .queuedInFairOrder()
        .filter((j) => !this.#restoring || j.state.clientId === STARTUP_CLIENT)
        .map(view)
    }
  }

  //#endregion
}
