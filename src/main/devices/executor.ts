/**
 * The executor runs what the scheduler assigned: on one device, evict, load, then the job's work
 * (a load's move, a generation, one share of an analysis planned by the first share), cancels that
 * reach a running worker, and what a crashed worker's share becomes (retried once). Rows it
 * receives go through the row assembler in position order. A whole analysis may be held ahead at
 * a worker busy with its group (`d.next`): sent now, it becomes the running task when that one
 * ends (docs/devices.md, "Jobs", one job ahead).
 */
import type {
  AnalysisMetadata,
  AnalysisProgress,
  AnalysisRow,
  OptimiserProgress
} from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import { TERMINAL_JOB_STATUSES, type JobRows } from '@shared/domain/jobs'
import { AppError, toSerializedError } from '@shared/ipc/errors'
import type { Clock } from '../platform/clock'
import type { Logger } from '../platform/logger'
import { nextChunkSize } from './fairQueue'
import { planFirst } from './scheduler'
import type { JobTable } from './jobTable'
import type { ModelLibrary } from './library'
import {
  publicPlacement,
  tasksOf,
  type DeviceRecord,
  type DeviceTask,
  type JobRecord
} from './records'
import type { Residency } from './residency'
import { acceptRows, assembleInterventions, assembleRows } from './rowAssembler'
import type { WorkerSupervisor } from './workerSupervisor'

export interface ExecutorOptions {
  clock: Clock
  log: Logger
  /** How long a cancel call to a worker may take. */
  graceMs: number
  /** How long a running job may take to stop after a cancel before its worker is killed. */
  cancelGraceMs: number
  /** Smallest data-parallel share, in positions. */
  minChunkPositions: number
}

export interface ExecutorDeps {
  devices: ReadonlyMap<string, DeviceRecord>
  jobs: JobTable
  residency: Residency
  library: ModelLibrary
  supervisor: WorkerSupervisor
  /** A job's state changed. */
  publish(job: JobRecord): void
  /** Rows to stream, in position order. */
  emitRows(rows: JobRows): void
  /** Something a snapshot shows changed. */
  changed(): void
  /** A device is free again, or a plan can be shared: look for work. */
  schedule(): void
  isDisposed(): boolean
}

export class Executor {
  readonly #o: ExecutorOptions
  readonly #d: ExecutorDeps

  constructor(options: ExecutorOptions, deps: ExecutorDeps) {
    this.#o = options
    this.#d = deps
  }

  /** Healthy devices holding the group in any state. */
  #holders(groupId: string): DeviceRecord[] {
    return [...this.#d.devices.values()].filter(
      (d) => d.placements.has(groupId) && d.status !== 'error' && d.status !== 'stopped'
    )
  }

  /**
   * Runs (a share of) `job` on `d`, evicting first; the scheduler made the choice. `ahead`: `d` is
   * running an analysis of the job's group and the job, a whole analysis, is sent to its worker
   * now, to run once that one ends (`d.next`; scheduler.ts, `next`).
   */
  async run(job: JobRecord, d: DeviceRecord, evictions: string[], ahead = false): Promise<void> {
    const { jobs, residency, library } = this.#d
    const now = (): number => this.#o.clock.now()
    const s = job.state
    const taskId = `${s.id}@${d.desc.id}#${d.generation}.${job.active.size}.${now().toString(36)}`
    const task: DeviceTask = {
      jobId: s.id,
      taskId,
      groupId: s.groupId,
      positions: null,
      received: new Set(),
      running: false,
      startedAt: now()
    }
    if (ahead) {
      d.next = task
      // Whole, unplanned: a plan call would run beside the running analysis, and a share of it
      // could not be handed to another holder once it sits at this worker.
      job.planned = true
      job.splittable = false
      job.positions = null
      job.remaining = []
      s.progress ??= { rowsDone: 0, rowsTotal: 0 }
    } else {
      d.task = task
      d.status = 'busy'
    }
    job.active.set(d.desc.id, task)
    if (!s.devices.includes(d.desc.id)) s.devices.push(d.desc.id)
    if (s.status === 'queued') {
      s.startedAt ??= now()
      s.status = 'loading'
      s.queuePosition = null
      s.stage = ahead
        ? `next on ${d.desc.id}, after ${d.task?.jobId ?? 'its running job'}`
        : 'starting'
      jobs.served(s.clientId)
      this.#d.publish(job)
    }
    const wasResident = d.placements.get(s.groupId)?.state === 'ready'
    try {
      if (!wasResident) {
        s.status = 'loading'
        for (const victim of evictions) {
          s.stage = `evicting ${victim}`
          this.#d.publish(job)
          await residency.unload(d, victim)
          s.notes.push(`evicted ${victim} from ${d.desc.id}`)
        }
        s.stage = `loading ${s.groupId} on ${d.desc.id}`
        this.#d.publish(job)
        const entry = library.get(s.groupId)
        await residency.load(d, s.groupId, entry.dir, entry.summary.estimatedBytes, {
          kind: s.kind,
          options: job.input.options
        })
      }
      const placement = d.placements.get(s.groupId)!
      placement.lastUsedAt = now()
      if (s.kind === 'load' && job.cancelRequested) {
        await this.#undoCancelledLoad(job, d, wasResident)
        this.#release(job, d, task)
        jobs.finish(job, 'cancelled', new AppError('cancelled', 'load cancelled'))
        return
      }
      if (s.kind === 'load') {
        job.placementDevice = d.desc.id
        job.placement = publicPlacement(placement)
        if (job.moveFrom) {
          const from = this.#d.devices.get(job.moveFrom)
          if (from?.placements.has(s.groupId) && from.task?.groupId !== s.groupId) {
            s.stage = `unloading ${s.groupId} from ${from.desc.id}`
            this.#d.publish(job)
            await residency.unload(from, s.groupId)
            s.notes.push(`moved from ${from.desc.id}`)
          } else if (from?.placements.has(s.groupId)) {
            s.notes.push(`left on ${from.desc.id}: in use there`)
          }
        }
        this.#release(job, d, task)
        jobs.finish(job, 'done')
        return
      }
      if (job.cancelRequested) {
        this.#release(job, d, task)
        if (job.active.size === 0)
          jobs.finish(job, 'cancelled', new AppError('cancelled', 'cancelled'))
        return
      }
      if (s.kind === 'generate' || (s.kind === 'generate-analyze' && job.analysisText === null)) {
        await this.#generate(job, d, task)
        return
      }
      if (s.kind === 'intervene' || s.kind === 'sweep') {
        await this.#research(job, d, task)
        return
      }
      await this.#analyzeShare(job, d, task)
    } catch (err) {
      // A failure after the hand-on (a retry queues the job again) needs the scheduler again.
      task.handedOn = false
      this.#onTaskError(job, d, task, err)
    } finally {
      // A share that ended normally has already handed its device on (#analyzeShare): what it did
      // since cannot change what the scheduler sees, so asking again would only repeat its answer.
      if (!task.handedOn) this.#d.schedule()
    }
  }

  /**
   * A running job's cancel, on every device working for it: the worker stops at its next batch
   * boundary; one that does not within the grace period is killed (and restarted).
   */
  cancelRunning(job: JobRecord): void {
    const { graceMs, log } = this.#o
    for (const [deviceId, task] of job.active) {
      const d = this.#d.devices.get(deviceId)
      // A load cannot be interrupted, and killing the worker for it would cost every group
      // resident there: the load finishes and the job ends when it returns.
      if (!d?.client || !task.running) continue
      d.client
        .call({ op: 'cancel', taskId: task.taskId }, graceMs)
        .catch(log.failed(`cancelling ${job.state.id} on ${deviceId}`, 'debug'))
      // Held ahead, its worker is still busy with another job: the grace period starts once it
      // runs (#promoted), and it stops at its first batch boundary.
      if (d.next === task) continue
      this.#armCancelTimer(job, deviceId, d, task)
    }
  }

  /**
   * A worker stuck inside one long run cannot hear the cancel: after the grace period it is killed
   * (and restarted), which ends the task.
   */
  #armCancelTimer(job: JobRecord, deviceId: string, d: DeviceRecord, task: DeviceTask): void {
    const { cancelGraceMs, clock } = this.#o
    task.cancelTimer?.cancel()
    task.cancelTimer = clock.after(
      cancelGraceMs,
      () => {
        if (job.active.get(deviceId) === task)
          this.#d.supervisor.killUnresponsive(
            d,
            `did not stop ${job.state.id} within ${cancelGraceMs} ms of its cancel`
          )
      },
      { background: true }
    )
  }

  /**
   * The group a cancelled load job brought in goes again, unless it was there before or another
   * unfinished job wants it (it would only be loaded again).
   */
  async #undoCancelledLoad(job: JobRecord, d: DeviceRecord, wasResident: boolean): Promise<void> {
    const groupId = job.state.groupId
    const wantedBy = this.#d.jobs
      .all()
      .find(
        (j) =>
          j !== job &&
          j.state.groupId === groupId &&
          !TERMINAL_JOB_STATUSES.includes(j.state.status)
      )
    if (wasResident || d.placements.get(groupId)?.pinned) return
    if (wantedBy) {
      job.state.notes.push(`${groupId} stays on ${d.desc.id}: ${wantedBy.state.id} uses it`)
      return
    }
    try {
      await this.#d.residency.unload(d, groupId)
      job.state.notes.push(`${groupId} had finished loading; unloaded from ${d.desc.id}`)
    } catch (err) {
      job.state.notes.push(
        `${groupId} could not be unloaded from ${d.desc.id}: ${toSerializedError(err).message}`
      )
    }
  }

  #release(job: JobRecord, d: DeviceRecord, task: DeviceTask): void {
    task.cancelTimer?.cancel()
    if (job.active.get(d.desc.id) === task) job.active.delete(d.desc.id)
    if (d.next === task) d.next = null
    if (d.task === task) {
      const now = this.#o.clock.now()
      d.busyMs += Math.max(0, now - task.startedAt)
      d.task = null
      const next = d.next
      if (next && d.client && d.status === 'busy') {
        // The worker has already started the job held ahead: it is the running task now. (After
        // a crash it stays `next` until its own call fails, as the running one's did.)
        d.next = null
        d.task = next
        next.startedAt = now
        this.#promoted(next, d)
      } else if (d.status === 'busy') d.status = 'ready'
    }
    this.#d.changed()
  }

  /** A job held ahead became the device's running task: it runs from now. */
  #promoted(task: DeviceTask, d: DeviceRecord): void {
    const job = this.#d.jobs.find(task.jobId)
    if (!job || TERMINAL_JOB_STATUSES.includes(job.state.status)) return
    job.runStartedAt = task.startedAt
    if (job.cancelRequested) this.#armCancelTimer(job, d.desc.id, d, task)
    else job.state.stage = null
    this.#d.publish(job)
  }

  async #generate(job: JobRecord, d: DeviceRecord, task: DeviceTask): Promise<void> {
    const s = job.state
    s.status = 'running'
    s.stage = 'generating'
    this.#d.publish(job)
    task.running = true
    const out = await d.client!.call({
      op: 'generate',
      taskId: task.taskId,
      groupId: s.groupId,
      lensId: s.lensId ?? undefined,
      text: job.input.text!,
      options: job.input.generate
    })
    task.running = false
    job.completions = out.completions
    job.replies = out.replies
    if (s.kind === 'generate' || job.cancelRequested) {
      this.#release(job, d, task)
      this.#d.jobs.finish(job, job.cancelRequested ? 'cancelled' : 'done')
      return
    }
    // generate-analyze: analyse the first completion's full text (prompt + continuation, as the
    // engine returns it), on this device.
    job.analysisText = out.completions[0] ?? job.input.text ?? ''
    await this.#analyzeShare(job, d, task)
  }

  /**
   * An intervention or a layer sweep: one call on one device (no data-parallel split); rows stream
   * as the worker finishes each position (or layer). A crashed worker's job is queued again and
   * the rows it already streamed are kept, not sent twice.
   */
  async #research(job: JobRecord, d: DeviceRecord, task: DeviceTask): Promise<void> {
    const s = job.state
    s.status = 'running'
    s.stage = null
    s.progress ??= { rowsDone: 0, rowsTotal: 0 }
    job.runStartedAt ??= this.#o.clock.now()
    this.#d.publish(job)
    task.running = true
    const common = {
      taskId: task.taskId,
      groupId: s.groupId,
      lensId: s.lensId!,
      text: job.analysisText!,
      options: job.input.options
    }
    const res =
      s.kind === 'intervene'
        ? await d.client!.call({
            op: 'intervene',
            ...common,
            intervention: job.input.intervention!
          })
        : await d.client!.call({ op: 'sweep', ...common, sweep: job.input.sweep! })
    task.running = false
    this.#mergeMetadata(job, res.metadata, d)
    const placement = d.placements.get(s.groupId)
    if (placement) placement.lastUsedAt = this.#o.clock.now()
    this.#release(job, d, task)
    if (s.kind === 'sweep') this.#flushRows(job, true)
    if (job.cancelRequested || res.metadata.status === 'cancelled') {
      this.#d.jobs.finish(
        job,
        'cancelled',
        new AppError('cancelled', 'cancelled; rows so far kept')
      )
    } else {
      this.#d.jobs.finish(job, 'done')
    }
  }

  /** Whether a new analysis is planned before it runs (scheduler.ts, planFirst). */
  #planFirst(job: JobRecord, d: DeviceRecord): boolean {
    const groupId = job.state.groupId
    return planFirst({
      otherHolders: this.#holders(groupId).filter((x) => x !== d).length,
      queuedForGroup: this.#d.jobs
        .open()
        .filter((j) => j !== job && j.state.status === 'queued' && j.state.groupId === groupId)
        .length
    })
  }

  /** One device's share of an analysis; the first share plans the positions for everybody. */
  async #analyzeShare(job: JobRecord, d: DeviceRecord, task: DeviceTask): Promise<void> {
    const s = job.state
    const client = d.client!
    if (!job.planned && !s.requestedDeviceId && !this.#planFirst(job, d)) {
      // Part of a burst: it runs whole, its total comes with its first rows (rowAssembler.ts).
      job.planned = true
      job.splittable = false
      job.positions = null
      job.remaining = []
      s.progress ??= { rowsDone: 0, rowsTotal: 0 }
    }
    if (!job.planned) {
      s.stage = 'planning'
      this.#d.publish(job)
      const plan = await client.call({
        op: 'plan',
        groupId: s.groupId,
        text: job.analysisText!,
        options: job.input.options
      })
      if (job.cancelRequested) {
        this.#release(job, d, task)
        return this.#maybeFinishAnalysis(job)
      }
      job.planned = true
      job.minChunk = Math.max(this.#o.minChunkPositions, plan.positionsPerBatch)
      job.splittable = plan.splittable && !s.requestedDeviceId
      job.positions = plan.splittable ? plan.positions : null
      job.remaining = plan.splittable ? [...plan.positions] : []
      s.progress = { rowsDone: 0, rowsTotal: plan.positions.length }
    }
    const ahead = d.next === task
    s.status = 'running'
    // Held ahead, it runs once the device's running job ends (#promoted); until then it says so.
    if (!ahead) {
      s.stage = null
      job.runStartedAt ??= this.#o.clock.now()
    }
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
        this.#release(job, d, task)
        this.#maybeFinishAnalysis(job)
        return
      }
    }
    // (An unsplittable analysis retried after a crash runs again whole; rows already streamed are
    // kept and the repeats skipped.)
    task.positions = chunk
    this.#d.publish(job)
    // Other holders may join now that there is a plan to share (nothing to share when this share
    // took every position left: a burst's unsplit job, or the last chunk).
    if (job.remaining.length > 0) this.#o.clock.defer(() => this.#d.schedule())
    task.running = true
    task.analyzing = true
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
    if (placement) placement.lastUsedAt = this.#o.clock.now()
    this.#release(job, d, task)
    // Dispatch first: the worker that just answered gets its next job before this one's last rows
    // and its end are published, so it does not sit idle while the main process does that
    // bookkeeping (docs/benchmarks.md, "Devices"). This job's own events keep their order; a job
    // started here may publish its start before this one publishes its end.
    task.handedOn = true
    this.#d.schedule()
    this.#maybeFinishAnalysis(job)
  }

  /** Ends an analysis once no share runs: cancelled, or done when every position came back. */
  #maybeFinishAnalysis(job: JobRecord): void {
    if (job.active.size > 0 || TERMINAL_JOB_STATUSES.includes(job.state.status)) return
    if (job.cancelRequested)
      return this.#d.jobs.finish(
        job,
        'cancelled',
        new AppError('cancelled', 'cancelled; rows so far kept')
      )
    if (job.remaining.length > 0) return
    this.#flushRows(job, true)
    this.#d.jobs.finish(job, 'done')
  }

  #mergeMetadata(job: JobRecord, m: AnalysisMetadata, d: DeviceRecord): void {
    if (!job.metadata) {
      job.metadata = { ...m, timings: { ...m.timings } }
    } else {
      const timings = { ...job.metadata.timings }
      for (const [k, v] of Object.entries(m.timings)) timings[k] = (timings[k] ?? 0) + v
      job.metadata = { ...job.metadata, timings }
    }
    if (job.state.devices.length > 1)
      job.metadata.executionProvider = `${d.desc.provider} ×${job.state.devices.length}`
    // The manager's device ids (`cpu:1` for a virtual device), not the engine's view of it.
    job.metadata.device = job.state.devices.join(',')
  }

  /** A failed task: the job fails, or (a worker crash, once) its missing part is retried. */
  #onTaskError(job: JobRecord, d: DeviceRecord, task: DeviceTask, err: unknown): void {
    const e =
      err instanceof AppError
        ? err
        : new AppError('internal', (err as Error)?.message ?? String(err))
    this.#release(job, d, task)
    const s = job.state
    // Shutting down ends every job in dispose(); a worker's exit then is no crash to retry.
    if (TERMINAL_JOB_STATUSES.includes(s.status) || this.#d.isDisposed()) return
    if (e.code !== 'worker_crashed' || s.retries >= 1) {
      const reason =
        e.code === 'worker_crashed'
          ? new AppError(
              'worker_crashed',
              `${e.message}; the job was already retried once, so it fails (${job.ordered.length} rows kept)`
            )
          : e
      this.#stopOtherShares(job)
      return this.#d.jobs.finish(job, 'failed', reason)
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
      this.#d.jobs.updateQueuePositions()
    }
    this.#d.publish(job)
  }

  #stopOtherShares(job: JobRecord): void {
    for (const [deviceId, task] of job.active) {
      this.#d.devices
        .get(deviceId)
        ?.client?.call({ op: 'cancel', taskId: task.taskId })
        .catch(this.#o.log.failed(`stopping ${job.state.id}'s share on ${deviceId}`, 'debug'))
    }
  }

  /** A load's stage on a worker, shown as the loading job's stage. */
  onStage(d: DeviceRecord, groupId: string, stage: string, fraction: number): void {
    const job = d.task ? this.#d.jobs.find(d.task.jobId) : undefined
    if (!job || job.state.status !== 'loading' || d.task?.groupId !== groupId) return
    job.state.stage = `${stage} (${Math.round(fraction * 100)} %) on ${d.desc.id}`
    this.#d.publish(job)
  }

  /** Rows a worker streamed for its current task. */
  onRows(d: DeviceRecord, taskId: string, rows: AnalysisRow[], chunkTotal: number): void {
    const task = tasksOf(d).find((t) => t.taskId === taskId)
    if (!task) return
    const job = this.#d.jobs.find(task.jobId)
    if (!job) return
    acceptRows(job, task, rows, chunkTotal)
    this.#flushRows(job, false)
  }

  /** Intervention rows a worker streamed for its current task. */
  onInterventions(
    d: DeviceRecord,
    taskId: string,
    rows: InterventionRow[],
    progress: AnalysisProgress
  ): void {
    const task = d.task
    if (!task || task.taskId !== taskId) return
    const job = this.#d.jobs.find(task.jobId)
    if (!job) return
    const out = assembleInterventions(job, rows, progress.rowsTotal, this.#o.clock.now())
    if (out.rows) this.#d.emitRows(out.rows)
    if (out.publish) this.#d.publish(job)
  }

  /** The optimiser's step on a worker, shown as the running job's stage. */
  onOptimiser(d: DeviceRecord, taskId: string, p: OptimiserProgress): void {
    const task = d.task
    if (!task || task.taskId !== taskId) return
    const job = this.#d.jobs.find(task.jobId)
    if (!job || job.state.status !== 'running') return
    job.state.stage = `optimising batch ${p.batch} of ${p.totalBatches}, step ${p.step} of ${p.steps}: ${p.message}`
    this.#d.publish(job)
  }

  #flushRows(job: JobRecord, final: boolean): void {
    const out = assembleRows(job, final, this.#o.clock.now())
    if (out.rows) this.#d.emitRows(out.rows)
    if (out.publish) this.#d.publish(job)
  }
}
