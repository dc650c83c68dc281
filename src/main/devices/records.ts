/**
 * The device manager's records: one per device (its worker, status and resident groups), one per
 * job. The parts of the manager (supervisor, residency, job table, executor, row assembly,
 * snapshots) share these; only the snapshots leave the manager, as copies.
 */
import type { AnalysisMetadata, AnalysisRow } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import type { ManagedDevice, Placement, UnloadCheck } from '@shared/domain/devices'
import type { JobState, JobSubmit } from '@shared/domain/jobs'
import type { Timer } from '../platform/clock'
import type { HostCacheState } from '../worker/protocol'
import type { DeviceDescriptor } from './config'
import type { WorkerClient } from './workerClient'

export interface PlacementRecord extends Placement {
  /** GPU bytes of the worker before this load (GPU devices), to compute the delta. */
  baselineBytes: number | null
}

export interface DeviceTask {
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
  /** When the device took this task (its busy time runs from here). */
  startedAt: number
  cancelTimer?: Timer
  /**
   * The share ended and its device was already offered to the scheduler (executor.ts, dispatch
   * first), so the task's own end need not schedule again.
   */
  handedOn?: boolean
  /** The worker is running an `analyze` call for it (a device may then hold one job ahead). */
  analyzing?: boolean
}

export interface DeviceRecord {
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
  placements: Map<string, PlacementRecord>
  /** Groups to reload after a restart. */
  reloadAfterRestart: string[]
  task: DeviceTask | null
  /**
   * A whole analysis of the running task's group, already sent to the worker, which runs it as
   * soon as the running one ends (the group serialises its runs) without waiting for this process
   * (docs/devices.md, "Jobs", one job ahead). It becomes `task` when the running one ends.
   */
  next: DeviceTask | null
  /** Milliseconds of tasks that ended here (the snapshot's `busySeconds` adds the running one). */
  busyMs: number
  lastUnload: UnloadCheck | null
  /** The worker's host cache as of its last answer (null until known, or without one). */
  hostCache: HostCacheState | null
  stopping: boolean
  ready: Promise<void>
}

export interface JobRecord {
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
  /** Rows received, by key (`rowKey`): the position, or the layer of a sweep's rows. */
  rows: Map<number, AnalysisRow>
  ordered: AnalysisRow[]
  rowKey: (row: AnalysisRow) => number
  /** An intervene job's rows: received by index, and the contiguous ones in order. */
  interventionRows: Map<number, InterventionRow>
  interventions: InterventionRow[]
  metadata: AnalysisMetadata | null
  completions: string[]
  /** Each completion's reply: its new text without the closing end-of-turn token. */
  replies: string[]
  cancelRequested: boolean
  runStartedAt: number | null
  finished: Promise<void>
  resolveFinished: () => void
  placement: Placement | null
  placementDevice: string | null
}

/** A placement as the contract shows it (the measurement baseline stays inside). */
export function publicPlacement(p: PlacementRecord): Placement {
  const { baselineBytes: _b, ...view } = p
  return { ...view }
}

/** A job state the caller may keep: its arrays are copies. */
export function copyJobState(s: JobState): JobState {
  return { ...s, devices: [...s.devices], notes: [...s.notes] }
}

/** Usable for work at all: has a provider and is neither broken nor stopped. */
export function isUsable(d: DeviceRecord): boolean {
  return d.desc.provider !== null && d.status !== 'error' && d.status !== 'stopped'
}

/** Free to take a task now: ready, no task, a running worker (the scheduler's `idle`). */
export function isIdle(d: DeviceRecord): boolean {
  return d.status === 'ready' && d.task === null && d.client !== null
}

/**
 * Busy with an analysis on its worker and nothing held ahead yet: it may take one more whole job
 * of the running task's group (the scheduler's `canTakeNext`).
 */
export function canTakeNext(d: DeviceRecord): boolean {
  return d.status === 'busy' && d.client !== null && d.next === null && d.task?.analyzing === true
}

/** The running task and the one held ahead, if any. */
export function tasksOf(d: DeviceRecord): DeviceTask[] {
  return [d.task, d.next].filter((t): t is DeviceTask => t !== null)
}
