import { z } from 'zod'
import {
  DeviceClearResultSchema,
  ManagedDeviceSchema,
  StartupReportSchema
} from '../../domain/devices'
import { DeviceIdSchema } from '../../domain/system'
import { QueueSummarySchema } from '../../domain/jobs'
import { ModelLibrarySchema } from '../../domain/models'
import { defineEvent, defineInvoke } from '../define'

/**
 * Everything the device manager knows, as one snapshot: devices with their placements and status,
 * the model library, the job queue. `system:state` carries the same fields next to the hardware.
 */
export const DevicesSnapshotSchema = z.object({
  devices: z.array(ManagedDeviceSchema),
  library: ModelLibrarySchema,
  queue: QueueSummarySchema,
  takenAt: z.number(),
  /** The saved placements restored at start (absent before the manager is up). */
  startup: StartupReportSchema.optional()
})
export type DevicesSnapshot = z.infer<typeof DevicesSnapshotSchema>

/**
 * One load or unload as it ends (the counters of `/metrics` follow these, not snapshot
 * differences: `devices:changed` is coalesced, so a placement can come and go between two
 * snapshots). `seconds`: a load's time as the worker measured it (null when it failed), an
 * unload's as the manager waited for it.
 */
export const DeviceActivitySchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('load'),
    deviceId: DeviceIdSchema,
    groupId: z.string(),
    outcome: z.enum(['ok', 'failed']),
    seconds: z.number().nonnegative().nullable()
  }),
  z.object({
    kind: z.literal('unload'),
    deviceId: DeviceIdSchema,
    groupId: z.string(),
    seconds: z.number().nonnegative()
  })
])
export type DeviceActivity = z.infer<typeof DeviceActivitySchema>

/** Devices domain: placement targets (CPU, virtual `cpu:N`, `cuda:N`) and their state. */
export const devicesInvokes = {
  /** The manager's snapshot: devices, library, queue. */
  'devices:state': defineInvoke(z.object({}).strict().optional(), DevicesSnapshotSchema),
  /**
   * Unload every group on a device now: unpinned, idle ones without `force`; with `force`, pinned
   * ones too, and jobs using a group are cancelled first. The answer names what stayed and why.
   */
  'devices:clear': defineInvoke(
    z.object({ deviceId: DeviceIdSchema, force: z.boolean().default(false) }).strict(),
    DeviceClearResultSchema
  ),
  /**
   * Back to the start: every unfinished job cancelled, every device cleared (pins too), then the
   * preload groups loaded again (settings are kept). The predecessor's `POST /reset`.
   */
  'devices:reset': defineInvoke(
    z.object({}).strict().optional(),
    z.object({ cancelled: z.number().int(), cleared: z.array(DeviceClearResultSchema) })
  )
} as const

export const devicesEvents = {
  /**
   * Pushed whenever a device, placement, library entry or the queue changes (coalesced: at most
   * one per event-loop turn, and at most one every 100 ms; a change after a quiet interval goes
   * out after its turn). The payload is the whole snapshot, so a client never merges deltas.
   */
  'devices:changed': defineEvent(DevicesSnapshotSchema),
  /** A load or unload ended (one event each, never coalesced). */
  'devices:activity': defineEvent(DeviceActivitySchema)
} as const
