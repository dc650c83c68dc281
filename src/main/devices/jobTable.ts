/**
 * The job table: the checks a submission passes, one record per job, the fair queue's order and
 * positions, finishing, and how many finished jobs are kept. A job's states are drawn in
 * docs/devices.md ("States"). Nothing here starts work: the scheduler picks, the executor runs.
 */
import {
  JobSubmitSchema,
  TERMINAL_JOB_STATUSES,
  type JobResult,
  type JobState,
  type JobSubmit,
  type JobSubmitInput
} from '@shared/domain/jobs'
import { noLensMessage } from '@shared/domain/models'
import { AppError, describeZodError, toSerializedError } from '@shared/ipc/errors'
import { fairOrder } from './fairQueue'
import type { ModelLibrary } from './library'
import { copyJobState, type DeviceRecord, type JobRecord } from './records'

export type JobEnd = 'done' | 'failed' | 'cancelled'

export interface SubmissionContext {
  library: ModelLibrary
  /** The device named by id; `not_found` listing the devices otherwise. */
  device(deviceId: string): DeviceRecord
}

/**
 * A submission as the manager queues it, or the caller's error naming the field: the schema, the
 * group (usable), the lens (default: the group's first), the device (one that can run anything).
 * A conversation becomes text here, once, with the group's own template: every device, the
 * data-parallel planner and the saved session then see the same string.
 */
export function checkSubmission(
  input: JobSubmitInput,
  ctx: SubmissionContext
): { req: JobSubmit; lensId: string | null } {
  const parsed = JobSubmitSchema.safeParse(input)
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error)
    throw new AppError('invalid_input', message, { field })
  }
  const entry = ctx.library.get(parsed.data.groupId)
  const req = parsed.data.messages
    ? {
        ...parsed.data,
        text: ctx.library.renderConversation(entry.groupId, parsed.data.messages),
        messages: undefined
      }
    : parsed.data
  let lensId: string | null = null
  const lenses = entry.summary.lenses
  const analyses = req.kind === 'analyze' || req.kind === 'generate-analyze'
  if (analyses && lenses.length === 0) {
    throw new AppError('not_found', noLensMessage(req.groupId), { field: 'lensId' })
  }
  // A plain generation runs on the group's base when the group has no lens (or none is named
  // and the group has none); a named lens picks its orig model.
  if (req.kind !== 'load' && (analyses || req.lensId !== undefined || lenses.length > 0)) {
    lensId = req.lensId ?? lenses[0]?.id ?? null
    if (!lensId || !lenses.some((l) => l.id === lensId)) {
      throw new AppError(
        'not_found',
        `group ${req.groupId} has no lens ${req.lensId ?? ''} (lenses: ${entry.summary.lenses.map((l) => l.id).join(', ')})`,
        { field: 'lensId' }
      )
    }
  }
  if (req.deviceId) {
    const d = ctx.device(req.deviceId)
    if (!d.desc.provider)
      throw new AppError(
        'unavailable',
        `${req.deviceId} cannot run anything: ${d.desc.providerError}`,
        { field: 'deviceId' }
      )
  }
  return { req, lensId }
}

let jobCounter = 0
function newJobId(): string {
  jobCounter += 1
  return `job-${Date.now().toString(36)}-${process.pid.toString(36)}-${jobCounter.toString(36)}`
}

export interface JobTableOptions {
  now: () => number
  /** Finished jobs kept for `jobs:get` / `jobs:result`. */
  keepFinishedJobs: number
  /** A job's state changed: tell whoever listens. */
  publish: (job: JobRecord) => void
  /**
   * A queued job moved up the queue and nothing else about it changed: `flushMoves` should run
   * soon (the manager runs it at most every `queueMovesIntervalMs`). Without it, moves are
   * published at once.
   */
  movesPending?: () => void
}

export class JobTable {
  readonly #o: JobTableOptions
  readonly #jobs = new Map<string, JobRecord>()
  /** When each client last had a job started (fairness), in serve ticks. */
  readonly #lastServed = new Map<string, number>()
  /**
   * The unfinished jobs (queued, loading, running), in submission order: what the queue and the
   * scheduler scan each turn, without the up to `keepFinishedJobs` finished ones kept beside them.
   */
  readonly #open = new Map<string, JobRecord>()
  /** Queued jobs whose new position is not published yet (see `movesPending`). */
  readonly #moved = new Set<JobRecord>()
  #seq = 0
  #serveTick = 0

  constructor(options: JobTableOptions) {
    this.#o = options
  }

  /** Every job kept, in submission order. */
  all(): JobRecord[] {
    return [...this.#jobs.values()]
  }

  /** Every unfinished job, in submission order. */
  open(): JobRecord[] {
    return [...this.#open.values()]
  }

  find(jobId: string): JobRecord | undefined {
    return this.#jobs.get(jobId)
  }

  get(jobId: string): JobRecord {
    const job = this.#jobs.get(jobId)
    if (!job) throw new AppError('not_found', `no job ${jobId}`, { field: 'jobId' })
    return job
  }

  /** Queues a checked submission. */
  add(req: JobSubmit, lensId: string | null, clientId: string, moveFrom: string | null): JobRecord {
    const id = newJobId()
    let resolveFinished!: () => void
    const finished = new Promise<void>((r) => (resolveFinished = r))
    const job: JobRecord = {
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
      moveFrom,
      analysisText:
        req.kind === 'analyze' || req.kind === 'intervene' || req.kind === 'sweep'
          ? (req.text ?? null)
          : null,
      positions: null,
      planned: false,
      minChunk: 1,
      splittable: false,
      remaining: [],
      active: new Map(),
      rows: new Map(),
      ordered: [],
      // A sweep's rows share one position: they are told apart (and ordered) by layer.
      rowKey: req.kind === 'sweep' ? (r) => r.layer ?? r.position : (r) => r.position,
      interventionRows: new Map(),
      interventions: [],
      metadata: null,
      completions: [],
      replies: [],
      cancelRequested: false,
      runStartedAt: null,
      finished,
      resolveFinished,
      placement: null,
      placementDevice: null
    }
    this.#jobs.set(id, job)
    this.#open.set(id, job)
    this.updateQueuePositions()
    return job
  }

  list(filter: { clientId?: string; status?: JobState['status'] } = {}): JobState[] {
    return this.all()
      .map((j) => j.state)
      .filter(
        (s) =>
          (!filter.clientId || s.clientId === filter.clientId) &&
          (!filter.status || s.status === filter.status)
      )
      .map(copyJobState)
  }

  result(jobId: string): JobResult {
    const job = this.get(jobId)
    return {
      job: copyJobState(job.state),
      metadata: job.metadata,
      rows: [...job.ordered],
      completions: [...job.completions],
      replies: [...job.replies],
      interventions: [...job.interventions]
    }
  }

  /** Ends a job (once): its state, its metadata's status, waiters, the queue, the kept jobs. */
  finish(job: JobRecord, status: JobEnd, error?: AppError): void {
    const s = job.state
    if (TERMINAL_JOB_STATUSES.includes(s.status)) return
    s.status = status
    this.#open.delete(s.id)
    s.finishedAt = this.#o.now()
    s.queuePosition = null
    s.stage = null
    s.etaSeconds = status === 'done' ? 0 : null
    if (error) s.error = toSerializedError(error)
    if (job.metadata) {
      job.metadata = {
        ...job.metadata,
        analysedPositions:
          job.state.kind === 'intervene' ? job.interventions.length : job.ordered.length,
        status: status === 'done' ? 'completed' : status === 'failed' ? 'failed' : 'cancelled'
      }
    }
    this.updateQueuePositions()
    this.#o.publish(job)
    job.resolveFinished()
    this.#trimFinished()
  }

  /** Forgets the earliest submitted finished jobs beyond `keepFinishedJobs`. */
  #trimFinished(): void {
    let excess = this.#jobs.size - this.#open.size - this.#o.keepFinishedJobs
    for (const [id] of this.#jobs) {
      if (excess <= 0) return
      if (this.#open.has(id)) continue
      this.#jobs.delete(id)
      excess--
    }
  }

  /** Queued jobs, round robin between clients (the client served longest ago first). */
  queuedInFairOrder(): JobRecord[] {
    const queued: JobRecord[] = []
    for (const j of this.#open.values()) if (j.state.status === 'queued') queued.push(j)
    return fairOrder(
      queued.map((j) => ({ id: j.state.id, clientId: j.state.clientId, seq: j.seq, job: j })),
      this.#lastServed
    ).map((x) => x.job)
  }

  /**
   * Numbers the queue in fair order. Every start or end of a job moves each job behind it up by
   * one, so a burst of N jobs submitted at once would publish about N²/2 moves (909 events for
   * 40 jobs); with `movesPending` a move is published with the next flush instead, carrying the
   * position then. A job's first position and every change of its status still go out at once,
   * and its state (`jobs:get`) always holds the exact position.
   */
  updateQueuePositions(): void {
    this.queuedInFairOrder().forEach((job, i) => {
      const before = job.state.queuePosition
      if (before === i + 1) return
      job.state.queuePosition = i + 1
      if (before === null || !this.#o.movesPending) {
        this.#moved.delete(job)
        this.#o.publish(job)
      } else if (!this.#moved.has(job)) {
        this.#moved.add(job)
        this.#o.movesPending()
      }
    })
  }

  /** Publishes the moves not published yet, of the jobs still queued (the others were, as they left). */
  flushMoves(): void {
    const moved = [...this.#moved]
    this.#moved.clear()
    for (const job of moved) if (job.state.status === 'queued') this.#o.publish(job)
  }

  /** The client had a job started now: it goes behind the others in the fair order. */
  served(clientId: string): void {
    this.#lastServed.set(clientId, ++this.#serveTick)
  }
}
