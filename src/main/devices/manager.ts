/**
 * The device manager: model groups placed on devices, one worker process per device, a fair job
 * queue, cancellation and crash recovery. One code path: a single GPU (or the CPU alone) is just
 * the one-device case. Nothing here runs inference; workers do (see ../worker).
 */
import type { AnalysisMetadata, AnalysisRow } from '@shared/domain/analysis'
import type {
  DeviceSpec,
  FitEstimate,
  ManagedDevice,
  Placement,
  UnloadCheck
} from '@shared/domain/devices'
import {
  JobSubmitSchema,
  TERMINAL_JOB_STATUSES,
  type JobResult,
  type JobRows,
  type JobState,
  type JobSubmit,
  type JobSubmitInput,
  type QueueSummary
} from '@shared/domain/jobs'
import type { ModelLibrary as LibrarySnapshot } from '@shared/domain/models'
import type { HardwareState } from '@shared/domain/system'
import { AppError, describeZodError, toSerializedError } from '@shared/ipc/errors'
import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import type { CommandRunner } from '../platform/commandRunner'
import { deviceSpecsFromEnv, resolveDevices, type DeviceDescriptor } from './config'
import { fairOrder, nextChunkSize } from './fairQueue'
import { gpuProcessBytes } from './gpuMemory'
import type { ModelLibrary } from './library'
import { assessFit, chooseDevice, type PlacementDevice } from './placement'
import type { SpawnWorker } from './transport'
import type { HostCacheState } from '../worker/protocol'
import {
  reloadCacheFromEnv,
  workerCacheConfig,
  type ReloadCacheOptions,
  type WorkerCacheConfig
} from './reloadCache'
import { WorkerClient } from './workerClient'
import { ChatTemplate, readTokenizerConfig } from '../engine'

/** The events the manager pushes (a subset of the contract's event channels). */
export interface ManagerEvents {
  'devices:changed': DevicesSnapshot
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
  /** nvidia-smi runner for measured GPU memory. */
  runCommand?: CommandRunner
  now?: () => number
  /** Workers' reload cache (host budget, optimized-graph folder); default: from the environment. */
  reloadCache?: ReloadCacheOptions
}

interface PlacementRec extends Placement {
  /** GPU bytes of the worker before this load (GPU devices), to compute the delta. */
  baselineBytes: number | null
}

interface DeviceRt {
  desc: DeviceDescriptor
  gpuUuid: string
  status: ManagedDevice['status']
  statusDetail?: string
  client: WorkerClient | null
  /** Incremented on every (re)start: events and exits of an older process are ignored. */
  generation: number
  baselineRss: number | null
  processBytes: number | null
  restarts: number
  restartFailures: number
  placements: Map<string, PlacementRec>
  /** Groups to reload after a restart. */
  reloadAfterRestart: string[]
  task: DeviceTask | null
  lastUnload: UnloadCheck | null
  /** The worker's host cache as of its last answer (null until known, or without one). */
  hostCache: HostCacheState | null
  stopping: boolean
  ready: Promise<void>
}

/** A device for a job (and what to evict first), nothing yet (wait), or the job was settled. */
type DevicePick = { device: DeviceRt; evictions: string[] } | null | 'handled'

interface DeviceTask {
  jobId: string
  taskId: string
  groupId: string
  /** Positions this task analyses (null: the engine's own choice, for unsplittable analyses). */
  positions: number[] | null
  received: Set<number>
  /**
   * The worker is running this task (analyze, generate), so a cancel can reach it. Before that
   * (evicting, loading, planning) the worker has no task to stop and the step checks the cancel
   * when it returns.
   */
  running: boolean
  cancelTimer?: NodeJS.Timeout
}

interface JobRec {
  state: JobState
  seq: number
  input: JobSubmit
  moveFrom: string | null
  /** The text analysed (for generate-analyze: prompt + continuation, once generated). */
  analysisText: string | null
  /** Analysis plan: every position in order (null until planned, or when not splittable). */
  positions: number[] | null
  planned: boolean
  /** Smallest share worth a call (one engine batch). */
  minChunk: number
  splittable: boolean
  remaining: number[]
  active: Map<string, DeviceTask>
  rows: Map<number, AnalysisRow>
  ordered: AnalysisRow[]
  metadata: AnalysisMetadata | null
  completions: string[]
  cancelRequested: boolean
  runStartedAt: number | null
  finished: Promise<void>
  resolveFinished: () => void
  placement: Placement | null
  placementDevice: string | null
}

const DEFAULTS = {
  heartbeatMs: 2000,
  graceMs: 30_000,
  cancelGraceMs: 30_000,
  maxRestartFailures: 3,
  keepFinishedJobs: 200,
  minChunkPositions: 2
}

/** Freed memory counts as "came back" when at least this share of what the load took returns. */
const RETURNED_SHARE = 0.7
/** Measurement noise tolerated below which a freed figure always counts as returned. */
const RETURN_SLACK_BYTES = 8 * 1024 ** 2

let jobCounter = 0
function newJobId(): string {
  jobCounter += 1
  return `job-${Date.now().toString(36)}-${process.pid.toString(36)}-${jobCounter.toString(36)}`
}

export class DeviceManager {
  readonly #o: Required<
    Omit<DeviceManagerOptions, 'devices' | 'emit' | 'runCommand' | 'cpuMemoryShare' | 'reloadCache'>
  > &
    Pick<DeviceManagerOptions, 'runCommand'>
  readonly #emit: ManagerEmit
  readonly #library: ModelLibrary
  readonly #devices = new Map<string, DeviceRt>()
  readonly #jobs = new Map<string, JobRec>()
  readonly #lastServed = new Map<string, number>()
  /** Measured bytes per (group, provider): the corrected estimate for the next placement. */
  readonly #measured = new Map<string, number>()
  readonly #cacheConfig: WorkerCacheConfig
  #seq = 0
  #serveTick = 0
  #notifyPending = false
  #disposed = false

  constructor(options: DeviceManagerOptions) {
    this.#o = {
      hardware: options.hardware,
      library: options.library,
      spawn: options.spawn,
      heartbeatMs: options.heartbeatMs ?? DEFAULTS.heartbeatMs,
      graceMs: options.graceMs ?? DEFAULTS.graceMs,
      cancelGraceMs: options.cancelGraceMs ?? DEFAULTS.cancelGraceMs,
      maxRestartFailures: options.maxRestartFailures ?? DEFAULTS.maxRestartFailures,
      keepFinishedJobs: options.keepFinishedJobs ?? DEFAULTS.keepFinishedJobs,
      minChunkPositions: options.minChunkPositions ?? DEFAULTS.minChunkPositions,
      runCommand: options.runCommand,
      now: options.now ?? Date.now
    }
    this.#emit = options.emit ?? (() => undefined)
    this.#library = options.library
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
        lastUnload: null,
        hostCache: null,
        stopping: false,
        ready: Promise.resolve()
      })
    }
    const workers = [...this.#devices.values()].filter((d) => d.desc.provider).length
    this.#cacheConfig = workerCacheConfig(
      options.reloadCache ?? reloadCacheFromEnv(),
      options.hardware.cpu.memoryTotalBytes,
      workers
    )
  }

  //#region lifecycle

  /** Scans the library and starts one worker per usable device; resolves when all answered. */
  async start(): Promise<void> {
    await this.#library.scan()
    const starts: Promise<void>[] = []
    for (const d of this.#devices.values()) {
      if (d.desc.provider) {
        d.ready = this.#startWorker(d)
        starts.push(d.ready)
      }
    }
    await Promise.all(starts)
    this.#notify()
  }

  /** Called by the library after a rescan: the snapshot changes and queued jobs may now resolve. */
  libraryChanged(): void {
    this.#notify()
    this.#schedule()
  }

  async dispose(): Promise<void> {
    this.#disposed = true
    // Every job ends here, running ones too: nothing will schedule, retry or finish them once the
    // workers are gone, and whoever awaits them (load with wait, waitFor, the API) must return.
    for (const job of this.#jobs.values()) {
      if (TERMINAL_JOB_STATUSES.includes(job.state.status)) continue
      for (const task of job.active.values()) if (task.cancelTimer) clearTimeout(task.cancelTimer)
      const kept = job.ordered.length > 0 ? `; ${job.ordered.length} rows kept` : ''
      this.#finishJob(
        job,
        'cancelled',
        new AppError('cancelled', `the app is shutting down${kept}`)
      )
    }
    await Promise.all(
      [...this.#devices.values()].map(async (d) => {
        d.stopping = true
        d.status = 'stopped'
        await d.client?.shutdown().catch(() => undefined)
      })
    )
  }

  async #startWorker(d: DeviceRt): Promise<void> {
    if (this.#disposed) return
    const generation = ++d.generation
    d.status = d.restarts > 0 ? 'recovering' : 'starting'
    this.#notify()
    // Until init has answered, an exit is the init call's failure and the catch below restarts;
    // handling it here as well would start a second worker beside the catch's.
    let initialising = true
    const transport = this.#o.spawn({ deviceId: d.desc.id })
    const client = new WorkerClient(d.desc.id, transport, {
      onEvent: (event) => {
        if (d.generation !== generation) return
        if (event.kind === 'rows')
          this.#onRows(d, event.taskId, event.rows, event.progress.rowsTotal)
        else if (event.kind === 'stage')
          this.#onStage(d, event.groupId, event.stage, event.fraction)
      },
      onExit: (exit) => {
        if (initialising || d.generation !== generation || d.stopping) return
        void this.#onWorkerExit(d, exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`)
      }
    })
    d.client = client
    /** This process is no longer the device's (disposed, or replaced meanwhile): end it here. */
    const superseded = (): boolean => {
      if (!this.#disposed && d.generation === generation) return false
      if (d.client === client) d.client = null
      client.stopHeartbeat()
      client.kill('SIGKILL')
      return true
    }
    try {
      const hello = await client.call(
        {
          op: 'init',
          deviceId: d.desc.id,
          target: {
            provider: d.desc.provider!,
            deviceIndex: d.desc.gpuIndex,
            threads: d.desc.threads
          },
          cache: this.#cacheConfig
        },
        Math.max(this.#o.graceMs, 60_000)
      )
      if (superseded()) return
      initialising = false
      d.baselineRss = hello.memory.rssBytes
      client.startHeartbeat(
        this.#o.heartbeatMs,
        this.#o.graceMs,
        () => this.#killUnresponsive(d, `did not answer a ping within ${this.#o.graceMs} ms`),
        (pong) => {
          if (this.#setHostCache(d, pong.hostCache)) this.#notify()
          if (d.desc.kind === 'cpu' && d.baselineRss !== null) {
            const next = Math.max(0, pong.memory.rssBytes - d.baselineRss)
            if (next !== d.processBytes) {
              d.processBytes = next
              this.#notify()
            }
          }
        }
      )
    } catch (err) {
      if (superseded()) return
      d.restartFailures += 1
      d.client = null
      client.kill('SIGKILL')
      const failedFor = toSerializedError(err).message
      if (d.restartFailures >= this.#o.maxRestartFailures) {
        d.status = 'error'
        d.statusDetail = `worker cannot start: ${failedFor}`
        this.#notify()
        this.#schedule()
        return
      }
      d.restarts += 1
      return this.#startWorker(d)
    }
    d.restartFailures = 0
    // Groups that lived in the previous process come back before the device takes new work.
    const reload = d.reloadAfterRestart
    d.reloadAfterRestart = []
    for (const groupId of reload) {
      try {
        const entry = this.#library.get(groupId)
        await this.#loadOn(d, groupId, entry.dir, entry.summary.estimatedBytes)
      } catch (err) {
        d.placements.delete(groupId)
        d.statusDetail = `could not reload ${groupId} after a restart: ${toSerializedError(err).message}`
      }
      // This process died or the manager closed during the reload: the newer start (or nobody)
      // owns the device now.
      if (this.#disposed || d.generation !== generation) return
    }
    d.status = d.task ? 'busy' : 'ready'
    if (reload.length === 0 || d.statusDetail?.startsWith('could not reload') !== true)
      d.statusDetail = undefined
    this.#notify()
    this.#schedule()
  }

  #killUnresponsive(d: DeviceRt, why: string): void {
    if (!d.client || d.stopping) return
    d.statusDetail = `worker ${why}; restarting`
    d.client.kill('SIGKILL')
  }

  async #onWorkerExit(d: DeviceRt, how: string): Promise<void> {
    if (this.#disposed) return
    d.client = null
    d.processBytes = null
    d.restarts += 1
    d.status = 'recovering'
    d.statusDetail = d.statusDetail?.includes('restarting')
      ? d.statusDetail
      : `worker exited (${how}); restarting`
    // What was resident must be reloaded in the new process; a group that was still loading is
    // left to the job that asked for it.
    d.reloadAfterRestart = [...d.placements.values()]
      .filter((p) => p.state === 'ready')
      .map((p) => p.groupId)
    for (const p of d.placements.values()) {
      p.state = 'loading'
      p.measuredBytes = null
    }
    this.#notify()
    d.ready = this.#startWorker(d)
    await d.ready
  }

  //#endregion

  //#region snapshot and events

  #notify(): void {
    if (this.#notifyPending || this.#disposed) return
    this.#notifyPending = true
    setImmediate(() => {
      this.#notifyPending = false
      if (!this.#disposed) this.#emit('devices:changed', this.snapshot())
    })
  }

  /** True when the worker's cache contents changed (what the snapshot shows). */
  #setHostCache(d: DeviceRt, state: HostCacheState | undefined): boolean {
    const next = state ?? null
    const key = (c: HostCacheState | null): string =>
      c ? `${c.budgetBytes} ${c.groups.map((g) => `${g.groupId}:${g.contentHash}`).join(',')}` : ''
    const changed = key(next) !== key(d.hostCache)
    d.hostCache = next
    return changed
  }

  /** Asks the worker for its cache contents after a load or unload changed them. */
  #refreshHostCache(d: DeviceRt): void {
    if (!d.client || !this.#cacheConfig) return
    d.client
      .call({ op: 'ping' })
      .then((pong) => {
        if (this.#setHostCache(d, pong.hostCache)) this.#notify()
      })
      .catch(() => undefined)
  }

  #measureKey(groupId: string, d: DeviceRt): string {
    return `${groupId}\u0000${d.desc.kind}:${d.desc.provider ?? ''}`
  }

  /** Bytes a group counts for on a device: measured there before (same provider), else estimated. */
  #requiredBytes(groupId: string, d: DeviceRt): number {
    const measured = this.#measured.get(this.#measureKey(groupId, d))
    if (measured !== undefined) return measured
    const summary = this.#library.entries().find((e) => e.groupId === groupId)?.summary
    return summary?.estimatedBytes ?? 0
  }

  #describeDevice(d: DeviceRt): ManagedDevice {
    const placements = [...d.placements.values()].map(({ baselineBytes: _b, ...p }) => ({ ...p }))
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

  devices(): ManagedDevice[] {
    return [...this.#devices.values()].map((d) => this.#describeDevice(d))
  }

  library(): LibrarySnapshot {
    const measuredFor = (groupId: string): number | null => {
      for (const [key, v] of this.#measured) if (key.startsWith(`${groupId}\u0000`)) return v
      return null
    }
    return {
      folder: this.#library.folder,
      groups: this.#library.describe((e) => ({
        measuredBytes: measuredFor(e.groupId),
        loadedOn: [...this.#devices.values()]
          .filter((d) => d.placements.has(e.groupId))
          .map((d) => d.desc.id)
      })),
      scannedAt: this.#library.scannedAt,
      ...(this.#library.folderError ? { folderError: this.#library.folderError } : {})
    }
  }

  queue(): QueueSummary {
    const jobs = [...this.#jobs.values()].map((j) => j.state)
    const active = jobs.filter((j) => !TERMINAL_JOB_STATUSES.includes(j.status))
    const finished = jobs.filter((j) => TERMINAL_JOB_STATUSES.includes(j.status)).slice(-20)
    return {
      queued: active.filter((j) => j.status === 'queued').length,
      running: active.length - active.filter((j) => j.status === 'queued').length,
      jobs: [...active, ...finished].map((j) => ({
        ...j,
        devices: [...j.devices],
        notes: [...j.notes]
      }))
    }
  }

  snapshot(): DevicesSnapshot {
    return {
      devices: this.devices(),
      library: this.library(),
      queue: this.queue(),
      takenAt: this.#o.now()
    }
  }

  #publishJob(job: JobRec): void {
    this.#emit('jobs:changed', {
      ...job.state,
      devices: [...job.state.devices],
      notes: [...job.state.notes]
    })
    this.#notify()
  }

  //#endregion

  //#region models: list, estimate, load, unload, pin, move

  #device(deviceId: string): DeviceRt {
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

  #placementView(d: DeviceRt): PlacementDevice {
    const inUse = d.task?.groupId
    return {
      id: d.desc.id,
      budgetBytes: d.desc.budgetBytes,
      usable: d.desc.provider !== null && d.status !== 'error' && d.status !== 'stopped',
      busy: d.task !== null || d.status !== 'ready',
      residents: [...d.placements.values()].map((p) => ({
        groupId: p.groupId,
        bytes: p.countedBytes,
        pinned: p.pinned,
        lastUsedAt: p.lastUsedAt,
        inUse: p.groupId === inUse || p.state !== 'ready'
      }))
    }
  }

  async rescan(): Promise<void> {
    await this.#library.scan()
    this.libraryChanged()
  }

  /** Will `groupId` fit on `deviceId`, and what would be evicted? (the UI's live preview) */
  estimate(groupId: string, deviceId: string): FitEstimate {
    const entry = this.#library.get(groupId)
    const d = this.#device(deviceId)
    const required = this.#requiredBytes(entry.groupId, d)
    if (!d.desc.provider) {
      return {
        groupId,
        deviceId,
        verdict: 'does_not_fit',
        requiredBytes: required,
        budgetBytes: d.desc.budgetBytes,
        usedBytes: 0,
        evictions: [],
        reason: `${deviceId} cannot run anything: ${d.desc.providerError ?? 'no execution provider'}`
      }
    }
    return assessFit(this.#placementView(d), groupId, required)
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
    const job = this.#jobs.get(jobId)!
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
    const d = this.#device(deviceId)
    const p = d.placements.get(groupId)
    if (!p)
      throw new AppError('not_found', `${groupId} is not loaded on ${deviceId}`, {
        field: 'groupId'
      })
    p.pinned = pinned
    this.#notify()
    const { baselineBytes: _b, ...view } = p
    return { ...view }
  }

  /**
   * Unloads now (not queued). Refuses pinned groups and groups in use unless `force`, which first
   * cancels the jobs using them and waits for them to stop.
   */
  async unload(input: {
    groupId: string
    deviceId?: string
    force?: boolean
  }): Promise<
    { deviceId: string; freedBytes: number; expectedBytes: number; memoryReturned: boolean }[]
  > {
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
      if (d.task && d.task.groupId === input.groupId && !input.force) {
        throw new AppError(
          'conflict',
          `${input.groupId} on ${d.desc.id} is in use by ${d.task.jobId}; cancel it first (or force)`,
          { field: 'groupId' }
        )
      }
    }
    const out = []
    for (const d of holding) {
      if (d.task && d.task.groupId === input.groupId) {
        const job = this.#jobs.get(d.task.jobId)
        if (job) {
          this.cancel(job.state.id)
          await job.finished
        }
      }
      const check = await this.#unloadFrom(d, input.groupId)
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

  async #unloadFrom(d: DeviceRt, groupId: string): Promise<UnloadCheck> {
    const p = d.placements.get(groupId)
    if (!p) throw new AppError('not_found', `${groupId} is not loaded on ${d.desc.id}`)
    if (!d.client) throw new AppError('unavailable', `${d.desc.id} has no running worker`)
    p.state = 'unloading'
    this.#notify()
    try {
      const res = await d.client.call({ op: 'unload', groupId })
      // What the unload moved into the host cache left the device's budget for the cache's own,
      // though the process still holds it.
      const cached = Math.max(0, (res.cacheBytesAfter ?? 0) - (res.cacheBytesBefore ?? 0))
      let freed = res.rssBeforeBytes - res.rssAfterBytes + cached
      // Back where the process was before this group's load: the memory came back even when
      // the load-time figure was mostly noise (small groups, arenas grown by later runs).
      let backToBaseline =
        p.baselineBytes !== null &&
        res.rssAfterBytes - cached <= p.baselineBytes + RETURN_SLACK_BYTES
      if (d.desc.kind === 'gpu' && this.#o.runCommand && d.client.pid) {
        const after = await gpuProcessBytes(this.#o.runCommand, d.client.pid, d.gpuUuid)
        backToBaseline = false
        if (after !== null && p.baselineBytes !== null && p.measuredBytes !== null) {
          freed = p.baselineBytes + p.measuredBytes - after
          backToBaseline = after <= p.baselineBytes + RETURN_SLACK_BYTES
        }
      }
      const expected = p.measuredBytes ?? p.countedBytes
      const check: UnloadCheck = {
        groupId,
        expectedBytes: expected,
        freedBytes: freed,
        ...(res.cacheBytesAfter !== undefined ? { cachedBytes: cached } : {}),
        ok:
          backToBaseline ||
          expected <= RETURN_SLACK_BYTES ||
          freed >= expected * RETURNED_SHARE - RETURN_SLACK_BYTES,
        at: this.#o.now()
      }
      d.lastUnload = check
      d.placements.delete(groupId)
      this.#refreshHostCache(d)
      return check
    } catch (err) {
      if (d.placements.get(groupId) === p) p.state = 'ready'
      throw err
    } finally {
      this.#notify()
    }
  }

  /** Loads on `d` (the device must be idle for other work); records estimate vs measurement. */
  async #loadOn(
    d: DeviceRt,
    groupId: string,
    dir: string,
    estimatedBytes: number
  ): Promise<PlacementRec> {
    if (!d.client) throw new AppError('unavailable', `${d.desc.id} has no running worker`)
    const existing = d.placements.get(groupId)
    const rec: PlacementRec = existing ?? {
      groupId,
      state: 'loading',
      pinned: false,
      estimatedBytes,
      measuredBytes: null,
      countedBytes: this.#requiredBytes(groupId, d),
      lastUsedAt: this.#o.now(),
      loadedAt: null,
      loadMs: null,
      baselineBytes: null
    }
    rec.state = 'loading'
    delete rec.error
    d.placements.set(groupId, rec)
    this.#notify()
    let gpuBefore: number | null = null
    if (d.desc.kind === 'gpu' && this.#o.runCommand && d.client.pid) {
      gpuBefore = await gpuProcessBytes(this.#o.runCommand, d.client.pid, d.gpuUuid)
    }
    try {
      const res = await d.client.call({ op: 'load', groupId, dir })
      // A reload from the host cache moves bytes the process already held into the group.
      const fromCache = Math.max(0, (res.cacheBytesBefore ?? 0) - (res.cacheBytesAfter ?? 0))
      let measured = Math.max(0, res.rssAfterBytes - res.rssBeforeBytes + fromCache)
      if (d.desc.kind === 'gpu') {
        const after =
          this.#o.runCommand && d.client?.pid
            ? await gpuProcessBytes(this.#o.runCommand, d.client.pid, d.gpuUuid)
            : null
        measured = after !== null && gpuBefore !== null ? Math.max(0, after - gpuBefore) : measured
        rec.baselineBytes = gpuBefore
      } else {
        rec.baselineBytes = res.rssBeforeBytes
      }
      rec.state = 'ready'
      rec.estimatedBytes = res.summary.estimatedBytes
      rec.measuredBytes = measured
      // The corrected estimate never drops below what the bundle itself declares it needs
      // minus the noise of one measurement: RSS misses lazily allocated arenas.
      rec.countedBytes = Math.max(
        measured,
        Math.min(res.summary.estimatedBytes, measured + RETURN_SLACK_BYTES)
      )
      this.#measured.set(this.#measureKey(groupId, d), rec.countedBytes)
      rec.loadedAt = this.#o.now()
      rec.loadMs = res.loadMs
      if (res.cache) this.#refreshHostCache(d)
      rec.lastUsedAt = this.#o.now()
      return rec
    } catch (err) {
      d.placements.delete(groupId)
      throw err
    } finally {
      this.#notify()
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
    const parsed = JobSubmitSchema.safeParse(input)
    if (!parsed.success) {
      const { message, field } = describeZodError(parsed.error)
      throw new AppError('invalid_input', message, { field })
    }
    const entry = this.#library.get(parsed.data.groupId)
    // A conversation becomes text here, once, with the group's own template: every device, the
    // data-parallel planner and the saved session then see the same string.
    const req = parsed.data.messages
      ? {
          ...parsed.data,
          text: renderConversation(entry.dir, parsed.data.messages),
          messages: undefined
        }
      : parsed.data
    let lensId: string | null = null
    if (req.kind !== 'load') {
      lensId = req.lensId ?? entry.summary.lenses[0]?.id ?? null
      if (!lensId || !entry.summary.lenses.some((l) => l.id === lensId)) {
        throw new AppError(
          'not_found',
          `group ${req.groupId} has no lens ${req.lensId ?? ''} (lenses: ${entry.summary.lenses.map((l) => l.id).join(', ')})`,
          { field: 'lensId' }
        )
      }
    }
    if (req.deviceId) {
      const d = this.#device(req.deviceId)
      if (!d.desc.provider)
        throw new AppError(
          'unavailable',
          `${req.deviceId} cannot run anything: ${d.desc.providerError}`,
          { field: 'deviceId' }
        )
    }
    const id = newJobId()
    let resolveFinished!: () => void
    const finished = new Promise<void>((r) => (resolveFinished = r))
    const job: JobRec = {
      state: {
        id,
        kind: req.kind,
        clientId,
        groupId: req.groupId,
        lensId,
        requestedDeviceId: req.deviceId ?? null,
        devices: [],
        status: 'queued',
        queuePosition: null,
        stage: null,
        progress: null,
        etaSeconds: null,
        createdAt: this.#o.now(),
        startedAt: null,
        finishedAt: null,
        error: null,
        retries: 0,
        notes: []
      },
      seq: ++this.#seq,
      input: req,
      moveFrom: moveFrom ?? null,
      analysisText: req.kind === 'analyze' ? (req.text ?? null) : null,
      positions: null,
      planned: false,
      minChunk: 1,
      splittable: false,
      remaining: [],
      active: new Map(),
      rows: new Map(),
      ordered: [],
      metadata: null,
      completions: [],
      cancelRequested: false,
      runStartedAt: null,
      finished,
      resolveFinished,
      placement: null,
      placementDevice: null
    }
    this.#jobs.set(id, job)
    this.#updateQueuePositions()
    this.#schedule()
    return { jobId: id, queuePosition: job.state.queuePosition }
  }

  #job(jobId: string): JobRec {
    const job = this.#jobs.get(jobId)
    if (!job) throw new AppError('not_found', `no job ${jobId}`, { field: 'jobId' })
    return job
  }

  getJob(jobId: string): JobState {
    const s = this.#job(jobId).state
    return { ...s, devices: [...s.devices], notes: [...s.notes] }
  }

  listJobs(filter: { clientId?: string; status?: JobState['status'] } = {}): JobState[] {
    return [...this.#jobs.values()]
      .map((j) => j.state)
      .filter(
        (s) =>
          (!filter.clientId || s.clientId === filter.clientId) &&
          (!filter.status || s.status === filter.status)
      )
      .map((s) => ({ ...s, devices: [...s.devices], notes: [...s.notes] }))
  }

  result(jobId: string): JobResult {
    const job = this.#job(jobId)
    return {
      job: this.getJob(jobId),
      metadata: job.metadata,
      rows: [...job.ordered],
      completions: [...job.completions]
    }
  }

  /** Resolves when the job has finished (any terminal status). */
  async waitFor(jobId: string): Promise<JobState> {
    await this.#job(jobId).finished
    return this.getJob(jobId)
  }

  /** Queued: removed at once. Running: stops at the next batch boundary, rows so far kept. */
  cancel(jobId: string): JobState {
    const job = this.#job(jobId)
    const s = job.state
    if (TERMINAL_JOB_STATUSES.includes(s.status)) return this.getJob(jobId)
    if (s.status === 'queued') {
      this.#finishJob(job, 'cancelled', new AppError('cancelled', 'cancelled while queued'))
      return this.getJob(jobId)
    }
    job.cancelRequested = true
    job.remaining = []
    s.stage = 'cancelling'
    for (const [deviceId, task] of job.active) {
      const d = this.#devices.get(deviceId)
      // A load cannot be interrupted, and killing the worker for it would cost every group
      // resident there: the load finishes and the job ends when it returns.
      if (!d?.client || !task.running) continue
      d.client.call({ op: 'cancel', taskId: task.taskId }, this.#o.graceMs).catch(() => undefined)
      // A worker stuck inside one long run cannot hear the cancel: after the grace period it is
      // killed (and restarted), which ends the task.
      task.cancelTimer = setTimeout(() => {
        if (job.active.get(deviceId) === task)
          this.#killUnresponsive(
            d,
            `did not stop ${jobId} within ${this.#o.cancelGraceMs} ms of its cancel`
          )
      }, this.#o.cancelGraceMs)
      task.cancelTimer.unref()
    }
    if (job.active.size === 0 && s.status !== 'loading')
      this.#finishJob(job, 'cancelled', new AppError('cancelled', 'cancelled'))
    this.#publishJob(job)
    return this.getJob(jobId)
  }

  #finishJob(job: JobRec, status: 'done' | 'failed' | 'cancelled', error?: AppError): void {
    const s = job.state
    if (TERMINAL_JOB_STATUSES.includes(s.status)) return
    s.status = status
    s.finishedAt = this.#o.now()
    s.queuePosition = null
    s.stage = null
    s.etaSeconds = status === 'done' ? 0 : null
    if (error) s.error = toSerializedError(error)
    if (job.metadata) {
      job.metadata = {
        ...job.metadata,
        analysedPositions: job.ordered.length,
        status: status === 'done' ? 'completed' : status === 'failed' ? 'failed' : 'cancelled'
      }
    }
    this.#updateQueuePositions()
    this.#publishJob(job)
    job.resolveFinished()
    this.#trimFinished()
  }

  #trimFinished(): void {
    const finished = [...this.#jobs.values()].filter((j) =>
      TERMINAL_JOB_STATUSES.includes(j.state.status)
    )
    for (const j of finished.slice(0, Math.max(0, finished.length - this.#o.keepFinishedJobs)))
      this.#jobs.delete(j.state.id)
  }

  #queuedInFairOrder(): JobRec[] {
    const queued = [...this.#jobs.values()].filter((j) => j.state.status === 'queued')
    return fairOrder(
      queued.map((j) => ({ id: j.state.id, clientId: j.state.clientId, seq: j.seq, job: j })),
      this.#lastServed
    ).map((x) => x.job)
  }

  #updateQueuePositions(): void {
    this.#queuedInFairOrder().forEach((job, i) => {
      if (job.state.queuePosition !== i + 1) {
        job.state.queuePosition = i + 1
        this.#publishJob(job)
      }
    })
  }

  //#endregion

  //#region scheduling

  #idleDevices(): DeviceRt[] {
    return [...this.#devices.values()].filter(
      (d) => d.status === 'ready' && d.task === null && d.client
    )
  }

  /** Devices working for each client right now (fairness: the client with the smaller share goes first). */
  #clientShares(): Map<string, number> {
    const shares = new Map<string, number>()
    for (const d of this.#devices.values()) {
      if (!d.task) continue
      const job = this.#jobs.get(d.task.jobId)
      if (job) shares.set(job.state.clientId, (shares.get(job.state.clientId) ?? 0) + 1)
    }
    return shares
  }

  /**
   * Hands idle devices to work, one device at a time: queued jobs (round robin between clients)
   * and shares of running data-parallel analyses. The client using fewer devices goes first.
   */
  #schedule(): void {
    if (this.#disposed) return
    for (let guard = 0; guard < 64; guard++) {
      const idle = this.#idleDevices()
      if (idle.length === 0) break
      const shares = this.#clientShares()
      const continuing = [...this.#jobs.values()].filter(
        (j) =>
          (j.state.status === 'running' || j.state.status === 'loading') &&
          j.remaining.length > 0 &&
          !j.cancelRequested
      )
      const queued = this.#queuedInFairOrder()
      const candidates = [
        ...continuing.map((job) => ({ job, rank: -1 })),
        ...queued.map((job, i) => ({ job, rank: i }))
      ].sort(
        (a, b) =>
          (shares.get(a.job.state.clientId) ?? 0) - (shares.get(b.job.state.clientId) ?? 0) ||
          a.rank - b.rank
      )
      let assigned = false
      for (const { job } of candidates) {
        const pick =
          job.state.status === 'queued'
            ? this.#pickForQueued(job, idle)
            : this.#pickForContinuation(job, idle)
        if (pick === 'handled') {
          assigned = true
          break
        }
        if (!pick) continue
        void this.#runOnDevice(job, pick.device, pick.evictions)
        assigned = true
        break
      }
      if (!assigned) break
    }
    this.#updateQueuePositions()
  }

  #placementOf(p: PlacementRec): Placement {
    const { baselineBytes: _b, ...view } = p
    return { ...view }
  }

  #holders(groupId: string): DeviceRt[] {
    return [...this.#devices.values()].filter(
      (d) => d.placements.has(groupId) && d.status !== 'error' && d.status !== 'stopped'
    )
  }

  #pickForContinuation(job: JobRec, idle: DeviceRt[]): DevicePick {
    const ready = idle.filter((d) => d.placements.get(job.state.groupId)?.state === 'ready')
    if (job.state.requestedDeviceId) {
      const d = ready.find((x) => x.desc.id === job.state.requestedDeviceId)
      return d ? { device: d, evictions: [] } : null
    }
    if (ready.length) return { device: ready[0], evictions: [] }
    // Nobody holds the group any more (its only holder crashed and could not reload it): place it
    // again, but only when no task of the job is still running somewhere.
    if (job.active.size > 0 || this.#holders(job.state.groupId).length > 0) return null
    return this.#place(job, idle)
  }

  #pickForQueued(job: JobRec, idle: DeviceRt[]): DevicePick {
    const groupId = job.state.groupId
    const wanted = job.state.requestedDeviceId
    if (job.state.kind === 'load' && !job.moveFrom) {
      // Already resident where asked (or anywhere, when no device is named): done at once.
      const target = wanted ? this.#devices.get(wanted) : this.#holders(groupId)[0]
      const p = target?.placements.get(groupId)
      if (target && p) {
        if (p.state !== 'ready') return null
        job.placementDevice = target.desc.id
        job.placement = this.#placementOf(p)
        job.state.devices = [target.desc.id]
        this.#finishJob(job, 'done')
        return 'handled'
      }
    }
    if (wanted) {
      const d = idle.find((x) => x.desc.id === wanted)
      if (!d) return null
      if (d.placements.get(groupId)?.state === 'ready') return { device: d, evictions: [] }
      return this.#place(job, [d])
    }
    const ready = idle.filter((d) => d.placements.get(groupId)?.state === 'ready')
    if (ready.length)
      return { device: ready.sort((a, b) => this.#load(a) - this.#load(b))[0], evictions: [] }
    // Held (or being loaded) by a busy device: wait for it rather than load a second copy.
    if (this.#holders(groupId).length > 0) return null
    return this.#place(job, idle)
  }

  #load(d: DeviceRt): number {
    let used = 0
    for (const p of d.placements.values()) used += p.countedBytes
    return d.desc.budgetBytes > 0 ? used / d.desc.budgetBytes : 1
  }

  /** Placement among idle devices; a job that can never fit anywhere fails with the numbers. */
  #place(job: JobRec, idle: DeviceRt[]): DevicePick {
    const groupId = job.state.groupId
    const required = (id: string): number => this.#requiredBytes(groupId, this.#devices.get(id)!)
    try {
      const decision = chooseDevice(
        idle.map((d) => this.#placementView(d)),
        groupId,
        required
      )
      return {
        device: this.#devices.get(decision.deviceId)!,
        evictions: decision.estimate.evictions.map((e) => e.groupId)
      }
    } catch {
      // Could it fit once running jobs end? Then wait; if not even that, fail now, clearly.
      const candidates = [...this.#devices.values()].filter(
        (d) =>
          d.desc.provider &&
          d.status !== 'error' &&
          d.status !== 'stopped' &&
          (!job.state.requestedDeviceId || d.desc.id === job.state.requestedDeviceId)
      )
      const relaxed = candidates.map((d) => {
        const view = this.#placementView(d)
        return {
          ...view,
          usable: true,
          busy: false,
          residents: view.residents.map((r) => ({ ...r, inUse: false }))
        }
      })
      try {
        chooseDevice(relaxed, groupId, required)
        return null
      } catch (err) {
        this.#finishJob(
          job,
          'failed',
          err instanceof AppError ? err : new AppError('unavailable', String(err))
        )
        return 'handled'
      }
    }
  }

  async #runOnDevice(job: JobRec, d: DeviceRt, evictions: string[]): Promise<void> {
    const s = job.state
    const taskId = `${s.id}@${d.desc.id}#${d.generation}.${job.active.size}.${this.#o.now().toString(36)}`
    const task: DeviceTask = {
      jobId: s.id,
      taskId,
      groupId: s.groupId,
      positions: null,
      received: new Set(),
      running: false
    }
    d.task = task
    d.status = 'busy'
    job.active.set(d.desc.id, task)
    if (!s.devices.includes(d.desc.id)) s.devices.push(d.desc.id)
    if (s.status === 'queued') {
      s.startedAt ??= this.#o.now()
      s.status = 'loading'
      s.queuePosition = null
      s.stage = 'starting'
      this.#lastServed.set(s.clientId, ++this.#serveTick)
      this.#publishJob(job)
    }
    const wasResident = d.placements.get(s.groupId)?.state === 'ready'
    try {
      if (!wasResident) {
        s.status = 'loading'
        for (const victim of evictions) {
          s.stage = `evicting ${victim}`
          this.#publishJob(job)
          await this.#unloadFrom(d, victim)
          s.notes.push(`evicted ${victim} from ${d.desc.id}`)
        }
        s.stage = `loading ${s.groupId} on ${d.desc.id}`
        this.#publishJob(job)
        const entry = this.#library.get(s.groupId)
        await this.#loadOn(d, s.groupId, entry.dir, entry.summary.estimatedBytes)
      }
      const placement = d.placements.get(s.groupId)!
      placement.lastUsedAt = this.#o.now()
      if (s.kind === 'load' && job.cancelRequested) {
        await this.#undoCancelledLoad(job, d, wasResident)
        this.#releaseTask(job, d, task)
        this.#finishJob(job, 'cancelled', new AppError('cancelled', 'load cancelled'))
        return
      }
      if (s.kind === 'load') {
        job.placementDevice = d.desc.id
        const { baselineBytes: _b, ...view } = placement
        job.placement = { ...view }
        if (job.moveFrom) {
          const from = this.#devices.get(job.moveFrom)
          if (from?.placements.has(s.groupId) && from.task?.groupId !== s.groupId) {
            s.stage = `unloading ${s.groupId} from ${from.desc.id}`
            this.#publishJob(job)
            await this.#unloadFrom(from, s.groupId)
            s.notes.push(`moved from ${from.desc.id}`)
          } else if (from?.placements.has(s.groupId)) {
            s.notes.push(`left on ${from.desc.id}: in use there`)
          }
        }
        this.#releaseTask(job, d, task)
        this.#finishJob(job, 'done')
        return
      }
      if (job.cancelRequested) {
        this.#releaseTask(job, d, task)
        if (job.active.size === 0)
          this.#finishJob(job, 'cancelled', new AppError('cancelled', 'cancelled'))
        return
      }
      if (s.kind === 'generate' || (s.kind === 'generate-analyze' && job.analysisText === null)) {
        await this.#runGenerate(job, d, task)
        return
      }
      await this.#runAnalyzeShare(job, d, task)
    } catch (err) {
      this.#onTaskError(job, d, task, err)
    } finally {
      this.#schedule()
    }
  }

  /**
   * The group a cancelled load job brought in goes again, unless it was there before or another
   * unfinished job wants it (it would only be loaded again).
   */
  async #undoCancelledLoad(job: JobRec, d: DeviceRt, wasResident: boolean): Promise<void> {
    const groupId = job.state.groupId
    const wantedBy = [...this.#jobs.values()].find(
      (j) =>
        j !== job && j.state.groupId === groupId && !TERMINAL_JOB_STATUSES.includes(j.state.status)
    )
    if (wasResident || d.placements.get(groupId)?.pinned) return
    if (wantedBy) {
      job.state.notes.push(`${groupId} stays on ${d.desc.id}: ${wantedBy.state.id} uses it`)
      return
    }
    try {
      await this.#unloadFrom(d, groupId)
      job.state.notes.push(`${groupId} had finished loading; unloaded from ${d.desc.id}`)
    } catch (err) {
      job.state.notes.push(
        `${groupId} could not be unloaded from ${d.desc.id}: ${toSerializedError(err).message}`
      )
    }
  }

  #releaseTask(job: JobRec, d: DeviceRt, task: DeviceTask): void {
    if (task.cancelTimer) clearTimeout(task.cancelTimer)
    if (job.active.get(d.desc.id) === task) job.active.delete(d.desc.id)
    if (d.task === task) {
      d.task = null
      if (d.status === 'busy') d.status = 'ready'
    }
    this.#notify()
  }

  async #runGenerate(job: JobRec, d: DeviceRt, task: DeviceTask): Promise<void> {
    const s = job.state
    s.status = 'running'
    s.stage = 'generating'
    this.#publishJob(job)
    task.running = true
    const out = await d.client!.call({
      op: 'generate',
      taskId: task.taskId,
      groupId: s.groupId,
      lensId: s.lensId!,
      text: job.input.text!,
      options: job.input.generate
    })
    task.running = false
    job.completions = out.completions
    if (s.kind === 'generate' || job.cancelRequested) {
      this.#releaseTask(job, d, task)
      this.#finishJob(job, job.cancelRequested ? 'cancelled' : 'done')
      return
    }
    // generate-analyze: analyse the first completion's full text (prompt + continuation, as the
    // engine returns it), on this device.
    job.analysisText = out.completions[0] ?? job.input.text ?? ''
    await this.#runAnalyzeShare(job, d, task)
  }

  /** One device's share of an analysis; the first share plans the positions for everybody. */
  async #runAnalyzeShare(job: JobRec, d: DeviceRt, task: DeviceTask): Promise<void> {
    const s = job.state
    const client = d.client!
    if (!job.planned) {
      s.stage = 'planning'
      this.#publishJob(job)
      const plan = await client.call({
        op: 'plan',
        groupId: s.groupId,
        text: job.analysisText!,
        options: job.input.options
      })
      if (job.cancelRequested) {
        this.#releaseTask(job, d, task)
        return this.#maybeFinishAnalysis(job)
      }
      job.planned = true
      job.minChunk = Math.max(this.#o.minChunkPositions, plan.positionsPerBatch)
      job.splittable = plan.splittable && !s.requestedDeviceId
      job.positions = plan.splittable ? plan.positions : null
      job.remaining = plan.splittable ? [...plan.positions] : []
      s.progress = { rowsDone: 0, rowsTotal: plan.positions.length }
    }
    s.status = 'running'
    s.stage = null
    job.runStartedAt ??= this.#o.now()
    let chunk: number[] | null = null
    if (job.positions) {
      const helpers = job.splittable
        ? this.#holders(s.groupId).filter((x) => x.status === 'ready' || x.status === 'busy').length
        : 1
      const size = job.splittable
        ? nextChunkSize(job.remaining.length, helpers, job.minChunk)
        : job.remaining.length
      chunk = job.remaining.splice(0, size)
      if (chunk.length === 0) {
        this.#releaseTask(job, d, task)
        this.#maybeFinishAnalysis(job)
        return
      }
    }
    // (An unsplittable analysis retried after a crash runs again whole; rows already streamed are
    // kept and the repeats skipped.)
    task.positions = chunk
    this.#publishJob(job)
    // Other holders may join now that there is a plan to share.
    setImmediate(() => this.#schedule())
    task.running = true
    const res = await client.call({
      op: 'analyze',
      taskId: task.taskId,
      groupId: s.groupId,
      lensId: s.lensId!,
      text: job.analysisText!,
      options: job.input.options,
      ...(chunk ? { positionList: chunk } : {})
    })
    this.#mergeMetadata(job, res.metadata, d)
    if (res.metadata.status === 'cancelled' && chunk) {
      // Positions this share did not reach go back, unless the whole job is being cancelled.
      const missed = chunk.filter((p) => !task.received.has(p))
      if (!job.cancelRequested) job.remaining = [...missed, ...job.remaining].sort((a, b) => a - b)
    }
    const placement = d.placements.get(s.groupId)
    if (placement) placement.lastUsedAt = this.#o.now()
    this.#releaseTask(job, d, task)
    this.#maybeFinishAnalysis(job)
  }

  #maybeFinishAnalysis(job: JobRec): void {
    if (job.active.size > 0 || TERMINAL_JOB_STATUSES.includes(job.state.status)) return
    if (job.cancelRequested)
      return this.#finishJob(
        job,
        'cancelled',
        new AppError('cancelled', 'cancelled; rows so far kept')
      )
    if (job.remaining.length > 0) return
    this.#flushRows(job, true)
    this.#finishJob(job, 'done')
  }

  #mergeMetadata(job: JobRec, m: AnalysisMetadata, d: DeviceRt): void {
    if (!job.metadata) {
      job.metadata = { ...m, timings: { ...m.timings } }
    } else {
      const timings = { ...job.metadata.timings }
      for (const [k, v] of Object.entries(m.timings)) timings[k] = (timings[k] ?? 0) + v
      job.metadata = { ...job.metadata, timings }
    }
    if (job.state.devices.length > 1)
      job.metadata.executionProvider = `${d.desc.provider} ×${job.state.devices.length}`
  }

  #onTaskError(job: JobRec, d: DeviceRt, task: DeviceTask, err: unknown): void {
    const e =
      err instanceof AppError
        ? err
        : new AppError('internal', (err as Error)?.message ?? String(err))
    this.#releaseTask(job, d, task)
    const s = job.state
    // Shutting down ends every job in dispose(); a worker's exit then is no crash to retry.
    if (TERMINAL_JOB_STATUSES.includes(s.status) || this.#disposed) return
    if (e.code !== 'worker_crashed' || s.retries >= 1) {
      const reason =
        e.code === 'worker_crashed'
          ? new AppError(
              'worker_crashed',
              `${e.message}; the job was already retried once, so it fails (${job.ordered.length} rows kept)`
            )
          : e
      this.#stopOtherShares(job)
      return this.#finishJob(job, 'failed', reason)
    }
    if (job.cancelRequested) {
      s.notes.push(`${d.desc.id} stopped while cancelling`)
      return this.#maybeFinishAnalysis(job)
    }
    s.retries += 1
    if (s.kind !== 'load' && job.planned && job.positions) {
      // Only what the crashed share had not streamed yet is retried, by whichever device holds
      // the group next (another holder, or this one once it has restarted and reloaded).
      const missed = (task.positions ?? []).filter((p) => !job.rows.has(p))
      job.remaining = [...missed, ...job.remaining].sort((a, b) => a - b)
      s.notes.push(`${d.desc.id} crashed (${e.message}); ${missed.length} positions retried`)
    } else {
      // Not planned yet, not splittable, a load or a generation: it starts again from the queue;
      // rows already streamed are kept and not sent twice.
      job.planned = false
      job.positions = null
      job.remaining = []
      if (job.input.kind === 'generate-analyze') job.analysisText = null
      s.status = 'queued'
      s.stage = null
      s.notes.push(`${d.desc.id} crashed (${e.message}); the job is queued again`)
      this.#updateQueuePositions()
    }
    this.#publishJob(job)
  }

  #stopOtherShares(job: JobRec): void {
    for (const [deviceId, task] of job.active) {
      this.#devices
        .get(deviceId)
        ?.client?.call({ op: 'cancel', taskId: task.taskId })
        .catch(() => undefined)
    }
  }

  #onStage(d: DeviceRt, groupId: string, stage: string, fraction: number): void {
    const job = d.task ? this.#jobs.get(d.task.jobId) : undefined
    if (!job || job.state.status !== 'loading' || d.task?.groupId !== groupId) return
    job.state.stage = `${stage} (${Math.round(fraction * 100)} %) on ${d.desc.id}`
    this.#publishJob(job)
  }

  #onRows(d: DeviceRt, taskId: string, rows: AnalysisRow[], chunkTotal: number): void {
    const task = d.task
    if (!task || task.taskId !== taskId) return
    const job = this.#jobs.get(task.jobId)
    if (!job) return
    for (const row of rows) {
      task.received.add(row.position)
      if (!job.rows.has(row.position)) job.rows.set(row.position, row)
    }
    if (!job.positions && job.state.progress && job.state.progress.rowsTotal < chunkTotal) {
      job.state.progress.rowsTotal = chunkTotal
    }
    this.#flushRows(job, false)
  }

  /** Emits the rows that are now contiguous in position order. */
  #flushRows(job: JobRec, final: boolean): void {
    const start = job.ordered.length
    if (job.positions) {
      while (job.ordered.length < job.positions.length) {
        const row = job.rows.get(job.positions[job.ordered.length])
        if (!row) break
        job.ordered.push(row)
      }
    } else {
      const seen = new Set(job.ordered.map((r) => r.position))
      const fresh = [...job.rows.values()]
        .filter((r) => !seen.has(r.position))
        .sort((a, b) => a.position - b.position)
      job.ordered.push(...fresh)
    }
    const s = job.state
    const total = s.progress?.rowsTotal ?? job.ordered.length
    const done = job.rows.size
    s.progress = { rowsDone: done, rowsTotal: Math.max(total, done) }
    if (job.runStartedAt !== null && done > 0) {
      const elapsed = (this.#o.now() - job.runStartedAt) / 1000
      s.etaSeconds = Math.max(0, (elapsed / done) * (s.progress.rowsTotal - done))
    }
    if (job.ordered.length > start) {
      this.#emit('jobs:rows', { jobId: s.id, startIndex: start, rows: job.ordered.slice(start) })
    }
    if (job.ordered.length > start || final) this.#publishJob(job)
  }

  //#endregion
}

/**
 * A job's conversation as the text every device analyses or continues: the group's chat template
 * with the seed's rules. Read per submit (a small file) so an edited bundle is never stale; a
 * missing or failing template is the caller's error, naming the file and field.
 */
function renderConversation(
  bundleDir: string,
  messages: ReadonlyArray<{ role: 'system' | 'user' | 'assistant'; content: string }>
): string {
  return ChatTemplate.fromSpecials(readTokenizerConfig(bundleDir)).render(messages).text
}
