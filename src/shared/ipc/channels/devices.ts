import { z } from 'zod'
import { ManagedDeviceSchema } from '../../domain/devices'
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
  takenAt: z.number()
})
export type DevicesSnapshot = z.infer<typeof DevicesSnapshotSchema>

/** Devices domain: placement targets (CPU, virtual `cpu:N`, `cuda:N`) and their state. */
export const devicesInvokes = {
  /** The manager's snapshot: devices, library, queue. */
  'devices:state': defineInvoke(z.object({}).strict().optional(), DevicesSnapshotSchema)
} as const

export const devicesEvents = {
  /**
   * Pushed whenever a device, placement, library entry or the queue changes (coalesced: at most
   * one per event-loop turn). The payload is the whole snapshot, so a client never merges deltas.
   */
  'devices:changed': defineEvent(DevicesSnapshotSchema)
} as const
