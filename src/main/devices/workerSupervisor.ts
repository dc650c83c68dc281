/**
 * Worker supervision: one worker process per usable device, started, pinged, restarted when it
 * dies or stops answering, and reloaded with what was resident before. A device's states are drawn
 * in docs/devices.md ("States"). Nothing here decides what runs: the manager asks for a schedule
 * when a device becomes ready.
 */
import type { AnalysisProgress, AnalysisRow, OptimiserProgress } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import { toSerializedError } from '@shared/ipc/errors'
import type { Clock } from '../platform/clock'
import type { Logger } from '../platform/logger'
import type { HostCacheState } from '../worker/protocol'
import type { WorkerCacheConfig } from './reloadCache'
import type { DeviceRecord } from './records'
import type { SpawnWorker } from './transport'
import { WorkerClient } from './workerClient'

export interface SupervisorOptions {
  spawn: SpawnWorker
  clock: Clock
  log: Logger
  cacheConfig: WorkerCacheConfig
  /** Liveness ping period and how long an unanswered ping is tolerated before a restart. */
  heartbeatMs: number
  graceMs: number
  /** Restarts in a row that may fail before a device is marked `error`. */
  maxRestartFailures: number
}

export interface SupervisorHooks {
  /** The manager is shutting down: no (re)start, no reaction to exits. */
  isDisposed(): boolean
  /** Rows a worker streamed for one of its tasks. */
  onRows(d: DeviceRecord, taskId: string, rows: AnalysisRow[], chunkTotal: number): void
  /** Intervention rows a worker streamed for one of its tasks. */
  onInterventions(
    d: DeviceRecord,
    taskId: string,
    rows: InterventionRow[],
    progress: AnalysisProgress
  ): void
  /** The iterative optimiser's step in one of a worker's tasks. */
  onOptimiser(d: DeviceRecord, taskId: string, progress: OptimiserProgress): void
  /** A load's stage on a worker. */
  onStage(d: DeviceRecord, groupId: string, stage: string, fraction: number): void
  /** Loads a group that was resident before a restart into the new process. */
  reload(d: DeviceRecord, groupId: string): Promise<void>
  /** Something a snapshot shows changed. */
  changed(): void
  /** A device became ready (or gave up): work may be scheduled. */
  schedule(): void
}

export class WorkerSupervisor {
  readonly #o: SupervisorOptions
  readonly #hooks: SupervisorHooks

  constructor(options: SupervisorOptions, hooks: SupervisorHooks) {
    this.#o = options
    this.#hooks = hooks
  }

  /** Starts the device's worker and resolves once it answered (or the device gave up). */
  start(d: DeviceRecord): Promise<void> {
    d.ready = this.#start(d)
    return d.ready
  }

  async #start(d: DeviceRecord): Promise<void> {
    if (this.#hooks.isDisposed()) return
    const { clock, graceMs, heartbeatMs } = this.#o
    const generation = ++d.generation
    d.status = d.restarts > 0 ? 'recovering' : 'starting'
    this.#hooks.changed()
    // Until init has answered, an exit is the init call's failure and the catch below restarts;
    // handling it here as well would start a second worker beside the catch's.
    let initialising = true
    const transport = this.#o.spawn({ deviceId: d.desc.id })
    const client = new WorkerClient(
      d.desc.id,
      transport,
      {
        onEvent: (event) => {
          if (d.generation !== generation) return
          if (event.kind === 'rows')
            this.#hooks.onRows(d, event.taskId, event.rows, event.progress.rowsTotal)
          else if (event.kind === 'interventions')
            this.#hooks.onInterventions(d, event.taskId, event.rows, event.progress)
          else if (event.kind === 'optimiser')
            this.#hooks.onOptimiser(d, event.taskId, event.progress)
          else if (event.kind === 'stage')
            this.#hooks.onStage(d, event.groupId, event.stage, event.fraction)
        },
        onExit: (exit) => {
          if (initialising || d.generation !== generation || d.stopping) return
          void this.#onExit(d, exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`)
        }
      },
      clock
    )
    d.client = client
    /** This process is no longer the device's (disposed, or replaced meanwhile): end it here. */
    const superseded = (): boolean => {
      if (!this.#hooks.isDisposed() && d.generation === generation) return false
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
          cache: this.#o.cacheConfig
        },
        Math.max(graceMs, 60_000)
      )
      if (superseded()) return
      initialising = false
      d.baselineRss = hello.memory.rssBytes
      client.startHeartbeat(
        heartbeatMs,
        graceMs,
        () => this.killUnresponsive(d, `did not answer a ping within ${graceMs} ms`),
        (pong) => {
          if (this.#setHostCache(d, pong.hostCache)) this.#hooks.changed()
          if (d.desc.kind === 'cpu' && d.baselineRss !== null) {
            const next = Math.max(0, pong.memory.rssBytes - d.baselineRss)
            if (next !== d.processBytes) {
              d.processBytes = next
              this.#hooks.changed()
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
        this.#hooks.changed()
        this.#hooks.schedule()
        return
      }
      d.restarts += 1
      return this.#start(d)
    }
    d.restartFailures = 0
    // Groups that lived in the previous process come back before the device takes new work.
    const reload = d.reloadAfterRestart
    d.reloadAfterRestart = []
    for (const groupId of reload) {
      try {
        await this.#hooks.reload(d, groupId)
      } catch (err) {
        d.placements.delete(groupId)
        d.statusDetail = `could not reload ${groupId} after a restart: ${toSerializedError(err).message}`
      }
      // This process died or the manager closed during the reload: the newer start (or nobody)
      // owns the device now.
      if (this.#hooks.isDisposed() || d.generation !== generation) return
    }
    d.status = d.task ? 'busy' : 'ready'
    if (reload.length === 0 || d.statusDetail?.startsWith('could not reload') !== true)
      d.statusDetail = undefined
    this.#hooks.changed()
    this.#hooks.schedule()
  }

  /** Kills a worker that stopped answering (a ping, or a cancel); its exit restarts it. */
  killUnresponsive(d: DeviceRecord, why: string): void {
    if (!d.client || d.stopping) return
    d.statusDetail = `worker ${why}; restarting`
    d.client.kill('SIGKILL')
  }

  async #onExit(d: DeviceRecord, how: string): Promise<void> {
    if (this.#hooks.isDisposed()) return
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
    this.#hooks.changed()
    await this.start(d)
  }

  /** Asks the worker for its cache contents after a load or unload changed them. */
  refreshHostCache(d: DeviceRecord): void {
    if (!d.client) return
    d.client
      .call({ op: 'ping' })
      .then((pong) => {
        if (this.#setHostCache(d, pong.hostCache)) this.#hooks.changed()
      })
      .catch(this.#o.log.failed(`reading ${d.desc.id}'s host cache`, 'debug'))
  }

  /** True when the worker's cache contents changed (what the snapshot shows). */
  #setHostCache(d: DeviceRecord, state: HostCacheState | undefined): boolean {
    const next = state ?? null
    const key = (c: HostCacheState | null): string =>
      c ? `${c.budgetBytes} ${c.groups.map((g) => `${g.groupId}:${g.contentHash}`).join(',')}` : ''
    const changed = key(next) !== key(d.hostCache)
    d.hostCache = next
    return changed
  }

  /** Asks every worker to exit (killing those that do not); the devices end `stopped`. */
  async shutdown(devices: Iterable<DeviceRecord>): Promise<void> {
    await Promise.all(
      [...devices].map(async (d) => {
        d.stopping = true
        d.status = 'stopped'
        await d.client?.shutdown().catch(this.#o.log.failed(`stopping the worker of ${d.desc.id}`))
      })
    )
  }
}
