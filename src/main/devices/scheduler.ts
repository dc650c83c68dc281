/**
 * Scheduling, pure: a view of the devices and the waiting work in, the next decision out. No
 * processes, no clock, no records: the manager builds the view, applies the decision (the executor
 * runs an assignment) and asks again until the answer is to wait. One decision at a time, because
 * each one changes the view (a device turns busy, a client's share grows, a split job's remaining
 * positions shrink).
 *
 * Rules: idle devices take work one at a time; a client using fewer devices goes first; then shares
 * of running data-parallel analyses before queued jobs, queued ones in fair order. A job goes to an
 * idle device already holding its group (the least loaded). When every holder is busy, a replica
 * is loaded on an idle device of the same kind where the group fits (evicting idle, unpinned groups
 * if it must, redundant replicas first), up to the group's `replicas.max`; otherwise the job waits
 * for a holder. A group nobody holds is placed (placement.ts). A job that cannot fit anywhere even
 * once running jobs end fails with the numbers. docs/devices.md ("Replicas") has the why.
 *
 * Only when no idle device can take anything: a device running an analysis may hold one job
 * ahead, the whole analysis at the head of the queue (in fair order) when it is of the running
 * task's group, so that its worker starts it without a round trip through the main process
 * (docs/devices.md, "Jobs", one job ahead). Such a device is never counted as idle or as a free
 * holder.
 */
import type { ManagedDevice, Placement } from '@shared/domain/devices'
import type { JobKind, JobStatus } from '@shared/domain/jobs'
import { AppError } from '@shared/ipc/errors'
import { chooseDevice, type PlacementDevice } from './placement'

export interface SchedulerPlacement {
  groupId: string
  state: Placement['state']
  /** Bytes it counts for on the device. */
  bytes: number
  pinned: boolean
  lastUsedAt: number
}

export interface SchedulerDevice {
  id: string
  /** Replicas stay on devices of one kind: a CPU copy of a GPU group would serve jobs slower. */
  kind: 'cpu' | 'gpu'
  budgetBytes: number
  /** The device has an execution provider at all. */
  hasProvider: boolean
  status: ManagedDevice['status']
  /** Ready, with a running worker and no task: it can take work now. */
  idle: boolean
  /** The group of the task it runs, if any. */
  taskGroupId: string | null
  /** The client whose job that task belongs to (fairness counts devices per client). */
  taskClientId: string | null
  /**
   * Running an analysis on its worker with nothing held ahead: it can take one more whole
   * analysis of `taskGroupId`, to run next (absent: false).
   */
  canTakeNext?: boolean
  /** The client of the job it holds ahead, if any (fairness counts it as one more device). */
  nextClientId?: string | null
  placements: SchedulerPlacement[]
}

export interface SchedulerJob {
  id: string
  clientId: string
  kind: JobKind
  status: JobStatus
  groupId: string
  requestedDeviceId: string | null
  /** A load that moves the group from this device. */
  moveFrom: string | null
  /** Devices running a share of it now. */
  activeShares: number
  /** Bytes its group counts for on each device (measured there before, else estimated). */
  requiredBytes: Readonly<Record<string, number>>
}

/** How many copies of a group may be resident at once (`max` null: as many as devices). */
export interface ReplicaLimits {
  /** Copies never evicted automatically (a pin does the same for one device). */
  min: number
  max: number | null
}

export const DEFAULT_REPLICAS: ReplicaLimits = { min: 0, max: null }

export interface SchedulerView {
  /** Every device, in the manager's order. */
  devices: readonly SchedulerDevice[]
  /** Per group; a group not listed has DEFAULT_REPLICAS. */
  replicas?: Readonly<Record<string, ReplicaLimits>>
  /** Running or loading jobs with positions left to hand out and no cancel pending. */
  continuing: readonly SchedulerJob[]
  /** Queued jobs in fair order. */
  queued: readonly SchedulerJob[]
}

export type SchedulerDecision =
  /**
   * Run (a share of) the job on the device, evicting these groups there first. `replica`: the
   * group is already resident elsewhere and this loads another copy of it.
   */
  | { kind: 'run'; jobId: string; deviceId: string; evictions: string[]; replica?: true }
  /** Send the whole analysis to the device's worker now, to run after its running one. */
  | { kind: 'next'; jobId: string; deviceId: string }
  /** A load job whose group is already resident there: it is done. */
  | { kind: 'already-loaded'; jobId: string; deviceId: string }
  /** The job can never run: it fails with this error. */
  | { kind: 'fail'; jobId: string; error: AppError }
  /** Nothing to start now, and why each candidate waits. */
  | { kind: 'wait'; reason: string; waiting: { jobId: string; reason: string }[] }

type Pick = Exclude<SchedulerDecision, { kind: 'wait' }> | { kind: 'waits'; reason: string }

function placementOf(d: SchedulerDevice, groupId: string): SchedulerPlacement | undefined {
  return d.placements.find((p) => p.groupId === groupId)
}

function isHealthy(d: SchedulerDevice): boolean {
  return d.status !== 'error' && d.status !== 'stopped'
}

/** Healthy devices holding the group in any state (loading included). */
function holders(view: SchedulerView, groupId: string): SchedulerDevice[] {
  return view.devices.filter((d) => placementOf(d, groupId) && isHealthy(d))
}

export function replicasOf(view: SchedulerView, groupId: string): ReplicaLimits {
  return view.replicas?.[groupId] ?? DEFAULT_REPLICAS
}

/** Used share of the budget (a device without budget counts as full). */
function loadOf(d: SchedulerDevice): number {
  const used = d.placements.reduce((sum, p) => sum + p.bytes, 0)
  return d.budgetBytes > 0 ? used / d.budgetBytes : 1
}

/**
 * The device as the placement rules see it. With the whole view, each resident also says whether
 * another device holds a copy (`redundant`) and whether `replicas.min` keeps it (`keptForMin`).
 */
export function placementDevice(d: SchedulerDevice, view?: SchedulerView): PlacementDevice {
  return {
    id: d.id,
    budgetBytes: d.budgetBytes,
    usable: d.hasProvider && isHealthy(d),
    busy: d.taskGroupId !== null || d.status !== 'ready',
    residents: d.placements.map((p) => {
      const copies = view ? holders(view, p.groupId).length : 1
      const min = view ? replicasOf(view, p.groupId).min : 0
      return {
        groupId: p.groupId,
        bytes: p.bytes,
        pinned: p.pinned,
        lastUsedAt: p.lastUsedAt,
        inUse: p.groupId === d.taskGroupId || p.state !== 'ready',
        ...(copies > 1 ? { redundant: true } : {}),
        ...(min > 0 && copies <= min ? { keptForMin: true } : {})
      }
    })
  }
}

function run(job: SchedulerJob, d: SchedulerDevice, evictions: string[] = []): Pick {
  return { kind: 'run', jobId: job.id, deviceId: d.id, evictions }
}

/** Placement among idle devices; a job that can never fit anywhere fails with the numbers. */
function place(view: SchedulerView, job: SchedulerJob, idle: SchedulerDevice[]): Pick {
  const required = (id: string): number => job.requiredBytes[id] ?? 0
  try {
    const decision = chooseDevice(
      idle.map((d) => placementDevice(d, view)),
      job.groupId,
      required
    )
    const device = view.devices.find((d) => d.id === decision.deviceId)!
    return run(
      job,
      device,
      decision.estimate.evictions.map((e) => e.groupId)
    )
  } catch {
    // Could it fit once running jobs end? Then wait; if not even that, fail now, clearly.
    const relaxed = view.devices
      .filter(
        (d) =>
          d.hasProvider &&
          isHealthy(d) &&
          (!job.requestedDeviceId || d.id === job.requestedDeviceId)
      )
      .map((d) => {
        const seen = placementDevice(d, view)
        return {
          ...seen,
          usable: true,
          busy: false,
          residents: seen.residents.map((r) => ({ ...r, inUse: false }))
        }
      })
    try {
      chooseDevice(relaxed, job.groupId, required)
      return { kind: 'waits', reason: `${job.groupId} fits once running jobs end` }
    } catch (err) {
      return {
        kind: 'fail',
        jobId: job.id,
        error: err instanceof AppError ? err : new AppError('unavailable', String(err))
      }
    }
  }
}

function pickForQueued(view: SchedulerView, job: SchedulerJob, idle: SchedulerDevice[]): Pick {
  const { groupId } = job
  const wanted = job.requestedDeviceId
  if (job.kind === 'load' && !job.moveFrom) {
    // Already resident where asked (or anywhere, when no device is named): done at once.
    const target = wanted ? view.devices.find((d) => d.id === wanted) : holders(view, groupId)[0]
    const p = target ? placementOf(target, groupId) : undefined
    if (target && p) {
      if (p.state !== 'ready')
        return { kind: 'waits', reason: `${groupId} is ${p.state} on ${target.id}` }
      return { kind: 'already-loaded', jobId: job.id, deviceId: target.id }
    }
  }
  if (wanted) {
    const d = idle.find((x) => x.id === wanted)
    if (!d) return { kind: 'waits', reason: `${wanted} is busy` }
    if (placementOf(d, groupId)?.state === 'ready') return run(job, d)
    return place(view, job, [d])
  }
  const ready = idle.filter((d) => placementOf(d, groupId)?.state === 'ready')
  if (ready.length) return run(job, ready.sort((a, b) => loadOf(a) - loadOf(b))[0]!)
  const held = holders(view, groupId)
  if (held.length > 0) return replicate(view, job, held, idle)
  return place(view, job, idle)
}

/**
 * Every holder of the job's group is busy (or still loading it): load another copy on an idle
 * device of the same kind where it fits, if `replicas.max` allows; else wait for a holder. A replica
 * that fits nowhere now is no failure: the job can always run on a holder.
 */
function replicate(
  view: SchedulerView,
  job: SchedulerJob,
  held: SchedulerDevice[],
  idle: SchedulerDevice[]
): Pick {
  const { groupId } = job
  const { max } = replicasOf(view, groupId)
  if (max !== null && held.length >= max) {
    return {
      kind: 'waits',
      reason: `${groupId} is held by a busy device (replicas.max ${max} reached)`
    }
  }
  const kinds = new Set(held.map((d) => d.kind))
  const candidates = idle.filter((d) => kinds.has(d.kind) && !placementOf(d, groupId))
  if (candidates.length === 0)
    return { kind: 'waits', reason: `${groupId} is held by a busy device` }
  try {
    const decision = chooseDevice(
      candidates.map((d) => placementDevice(d, view)),
      groupId,
      (id) => job.requiredBytes[id] ?? 0
    )
    return {
      kind: 'run',
      jobId: job.id,
      deviceId: decision.deviceId,
      evictions: decision.estimate.evictions.map((e) => e.groupId),
      replica: true
    }
  } catch {
    return {
      kind: 'waits',
      reason: `${groupId} is held by a busy device; no idle device has room for a replica`
    }
  }
}

function pickForContinuation(
  view: SchedulerView,
  job: SchedulerJob,
  idle: SchedulerDevice[]
): Pick {
  const ready = idle.filter((d) => placementOf(d, job.groupId)?.state === 'ready')
  if (job.requestedDeviceId) {
    const d = ready.find((x) => x.id === job.requestedDeviceId)
    return d ? run(job, d) : { kind: 'waits', reason: `${job.requestedDeviceId} is busy` }
  }
  if (ready.length) return run(job, ready[0]!)
  // Nobody holds the group any more (its only holder crashed and could not reload it): place it
  // again, but only when no task of the job is still running somewhere.
  if (job.activeShares > 0 || holders(view, job.groupId).length > 0)
    return { kind: 'waits', reason: `no idle device holds ${job.groupId}` }
  return place(view, job, idle)
}

/** Devices working for each client right now. */
function clientShares(view: SchedulerView): Map<string, number> {
  const shares = new Map<string, number>()
  for (const d of view.devices) {
    for (const client of [d.taskClientId, d.nextClientId ?? null]) {
      if (client === null) continue
      shares.set(client, (shares.get(client) ?? 0) + 1)
    }
  }
  return shares
}

/**
 * The job to hold ahead on a busy device, if any: the first queued job in fair order, only when it
 * is a whole analysis (no device asked for) of a group that a device able to take one more is
 * running now, and no running analysis has positions left to share (those go first, to whichever
 * holder ends first). Anything else at the head of the queue waits for an idle device as before,
 * so holding ahead never overtakes another client's job.
 */
function pickNext(view: SchedulerView, shares: Map<string, number>): SchedulerDecision | null {
  const open = view.devices.filter((d) => d.canTakeNext && d.taskGroupId !== null && isHealthy(d))
  if (open.length === 0 || view.continuing.length > 0) return null
  const head = view.queued
    .map((job, rank) => ({ job, rank }))
    .sort(
      (a, b) =>
        (shares.get(a.job.clientId) ?? 0) - (shares.get(b.job.clientId) ?? 0) || a.rank - b.rank
    )[0]?.job
  if (!head || head.kind !== 'analyze' || head.requestedDeviceId !== null || head.moveFrom)
    return null
  const d = open.find(
    (x) => x.taskGroupId === head.groupId && placementOf(x, head.groupId)?.state === 'ready'
  )
  return d ? { kind: 'next', jobId: head.id, deviceId: d.id } : null
}

/** The next thing to do, or why nothing can start now. */
export function nextDecision(view: SchedulerView): SchedulerDecision {
  const shares = clientShares(view)
  const idle = view.devices.filter((d) => d.idle)
  if (idle.length === 0)
    return pickNext(view, shares) ?? { kind: 'wait', reason: 'no device is idle', waiting: [] }
  const candidates = [
    ...view.continuing.map((job) => ({ job, rank: -1 })),
    ...view.queued.map((job, i) => ({ job, rank: i }))
  ].sort(
    (a, b) =>
      (shares.get(a.job.clientId) ?? 0) - (shares.get(b.job.clientId) ?? 0) || a.rank - b.rank
  )
  const waiting: { jobId: string; reason: string }[] = []
  for (const { job } of candidates) {
    const pick =
      job.status === 'queued'
        ? pickForQueued(view, job, idle)
        : pickForContinuation(view, job, idle)
    if (pick.kind !== 'waits') return pick
    waiting.push({ jobId: job.id, reason: pick.reason })
  }
  // Every idle device was offered everything: only now may a busy one take a job ahead.
  const next = pickNext(view, shares)
  if (next) return next
  return {
    kind: 'wait',
    reason: candidates.length === 0 ? 'no work is waiting' : 'every waiting job waits',
    waiting
  }
}

/** What decides whether a new analysis is planned before it runs. */
export interface SplitFacts {
  /** Other healthy devices holding the group (loading included) that could take a share. */
  otherHolders: number
  /** Other queued jobs for the same group: each keeps a holder busy with a whole job. */
  queuedForGroup: number
}

/**
 * Plan a new analysis first (one more worker round trip and tokenisation), so that other holders
 * can share it and its progress total is known before its first rows, unless it is part of a
 * burst: other jobs of its group wait, at least one for every other holder, so every holder has
 * whole jobs to run and the plan would only add per-job time. docs/devices.md ("Replicas").
 */
export function planFirst(f: SplitFacts): boolean {
  return f.queuedForGroup === 0 || f.otherHolders > f.queuedForGroup
}
