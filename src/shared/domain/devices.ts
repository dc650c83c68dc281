import { z } from 'zod'
import { DeviceIdSchema, ExecutionProviderSchema } from './system'

/**
 * One configured device as the user (or a test) declares it. `cpu:N` entries are virtual CPU
 * devices: each gets its own worker process, thread count and memory budget, so multi-device
 * behaviour runs with real inference on a machine without GPUs.
 */
export const DeviceSpecSchema = z
  .object({
    id: DeviceIdSchema,
    /** Intra-op threads (CPU devices); 0 = ONNX Runtime's default. */
    threads: z.number().int().min(0).max(256).optional(),
    /** Memory budget in bytes; overrides `memoryShare`. */
    budgetBytes: z.number().int().positive().optional(),
    /** Share of the machine's RAM (CPU devices) or of the GPU's memory (GPUs), 0..1. */
    memoryShare: z.number().gt(0).max(1).optional(),
    /** Force an execution provider for a GPU (`cuda` or `webgpu`); default: CUDA if it probes OK. */
    provider: ExecutionProviderSchema.optional()
  })
  .strict()
export type DeviceSpec = z.infer<typeof DeviceSpecSchema>

/**
 * `starting`: worker process launching; `ready`: idle; `busy`: running a job or a load;
 * `recovering`: its worker crashed or stopped answering and is being restarted (its groups are
 * reloaded); `error`: unusable (the execution provider cannot start, or restarts keep failing);
 * `stopped`: shut down.
 */
export const DeviceStatusSchema = z.enum([
  'starting',
  'ready',
  'busy',
  'recovering',
  'error',
  'stopped'
])
export type DeviceStatus = z.infer<typeof DeviceStatusSchema>

export const PlacementStateSchema = z.enum(['loading', 'ready', 'unloading', 'failed'])
export type PlacementState = z.infer<typeof PlacementStateSchema>

/** A model group resident (or being loaded) on a device. */
export const PlacementSchema = z.object({
  groupId: z.string(),
  state: PlacementStateSchema,
  /** Never evicted or moved by automatic placement; unload/move need an explicit unpin (or force). */
  pinned: z.boolean(),
  /** The bundle's own estimate, in bytes. */
  estimatedBytes: z.number().nonnegative(),
  /**
   * Measured after the load: worker RSS delta (CPU devices) or `nvidia-smi` per-process memory
   * delta (GPUs). Null until measured.
   */
  measuredBytes: z.number().nullable(),
  /** What placement counts for this group on this kind of device (measured when known). */
  countedBytes: z.number().nonnegative(),
  lastUsedAt: z.number(),
  loadedAt: z.number().nullable(),
  loadMs: z.number().nullable(),
  error: z.string().optional()
})
export type Placement = z.infer<typeof PlacementSchema>

/** The last unload on a device and whether its memory actually came back. */
export const UnloadCheckSchema = z.object({
  groupId: z.string(),
  /** What the load had added (measured). */
  expectedBytes: z.number(),
  /** What the unload gave back (measured). */
  freedBytes: z.number(),
  /** Of the freed bytes, what the worker's host cache keeps for a fast reload. */
  cachedBytes: z.number().optional(),
  ok: z.boolean(),
  at: z.number()
})
export type UnloadCheck = z.infer<typeof UnloadCheckSchema>

export const ManagedDeviceSchema = z.object({
  id: DeviceIdSchema,
  kind: z.enum(['cpu', 'gpu']),
  name: z.string(),
  /** A `cpu:N` device declared in configuration. */
  virtual: z.boolean(),
  /** The execution provider this device runs; null when none can start (see `providerError`). */
  provider: ExecutionProviderSchema.nullable(),
  providerError: z.string().optional(),
  threads: z.number().int().nonnegative(),
  budgetBytes: z.number().nonnegative(),
  /** Sum of `countedBytes` over its placements. */
  usedBytes: z.number().nonnegative(),
  /** Process memory above the worker's idle baseline (RSS for CPU, nvidia-smi for GPUs), or null. */
  processBytes: z.number().nullable(),
  status: DeviceStatusSchema,
  statusDetail: z.string().optional(),
  workerPid: z.number().int().nullable(),
  restarts: z.number().int().nonnegative(),
  runningJobId: z.string().nullable(),
  /**
   * Seconds this device has spent on tasks (loads, analyses, generations) since the manager
   * started, the running task's time so far included: a counter, so a reader that sees only some
   * snapshots still adds every task up.
   */
  busySeconds: z.number().nonnegative(),
  placements: z.array(PlacementSchema),
  lastUnload: UnloadCheckSchema.nullable(),
  /** The worker's host-memory cache of recently unloaded groups (a reload skips most work). */
  hostCache: z
    .object({
      budgetBytes: z.number(),
      bytes: z.number(),
      groups: z.array(z.object({ groupId: z.string(), contentHash: z.string(), bytes: z.number() }))
    })
    .optional()
})
export type ManagedDevice = z.infer<typeof ManagedDeviceSchema>

/** The answer to "will group G fit on device D" — the UI's live preview before a load. */
export const FitVerdictSchema = z.enum(['loaded', 'fits', 'fits_after_evicting', 'does_not_fit'])
export type FitVerdict = z.infer<typeof FitVerdictSchema>

export const FitEstimateSchema = z.object({
  groupId: z.string(),
  deviceId: DeviceIdSchema,
  verdict: FitVerdictSchema,
  /** Bytes the group would take there (corrected from measurements when available). */
  requiredBytes: z.number().nonnegative(),
  budgetBytes: z.number().nonnegative(),
  usedBytes: z.number().nonnegative(),
  /** Groups that would be unloaded first (least recently used first). */
  evictions: z.array(z.object({ groupId: z.string(), bytes: z.number() })),
  /** One sentence with the numbers, for display and for errors. */
  reason: z.string()
})
export type FitEstimate = z.infer<typeof FitEstimateSchema>

/**
 * How many copies of a group may be resident at once. `min`: copies automatic eviction never
 * removes (and preload loads); `max`: the most the scheduler loads when every holder is busy (null:
 * as many as there are devices of the holders' kind). See docs/devices.md ("Replicas").
 */
export const ReplicaSettingsSchema = z
  .object({
    min: z.number().int().min(0).max(64),
    max: z.number().int().min(1).max(64).nullable()
  })
  .strict()
  .refine((r) => r.max === null || r.max >= Math.max(1, r.min), {
    message: 'max must be at least min (and at least 1)',
    path: ['max']
  })
export type ReplicaSettings = z.infer<typeof ReplicaSettingsSchema>

/** A group's placement settings, saved with the placements and restored at start. */
export const GroupSettingsSchema = z.object({
  replicas: ReplicaSettingsSchema,
  /** Loaded onto its saved devices (or placed by the normal rules) before the first job runs. */
  preload: z.boolean()
})
export type GroupSettings = z.infer<typeof GroupSettingsSchema>

/** What the start did with the saved placements: restored, moved, or why not. */
export const StartupReportSchema = z.object({
  /** `restoring`: preloads are loading and jobs wait; `done`: jobs run. */
  status: z.enum(['restoring', 'done']),
  /** The placements file (null: placements are not saved). */
  file: z.string().nullable(),
  /** Plain-language notes, e.g. `cuda:1 is gone: demo-words placed by the normal rules`. */
  notes: z.array(z.string())
})
export type StartupReport = z.infer<typeof StartupReportSchema>

/** The answer of clearing a device: what went, and what stayed and why. */
export const DeviceClearResultSchema = z.object({
  deviceId: DeviceIdSchema,
  unloaded: z.array(
    z.object({
      groupId: z.string(),
      freedBytes: z.number(),
      expectedBytes: z.number(),
      memoryReturned: z.boolean()
    })
  ),
  /** Groups left on the device (pinned, or in use) without `force`. */
  kept: z.array(z.object({ groupId: z.string(), reason: z.string() }))
})
export type DeviceClearResult = z.infer<typeof DeviceClearResultSchema>
