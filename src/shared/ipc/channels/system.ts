import { z } from 'zod'
import { HardwareStateSchema } from '../../domain/system'
import { defineEvent, defineInvoke } from '../define'
import { DevicesSnapshotSchema } from './devices'

/**
 * The one snapshot every window starts from: the hardware, and (once the device manager is up)
 * its devices with placements and status, the model library and the job queue.
 */
export const SystemStateSchema = HardwareStateSchema.extend({
  devices: DevicesSnapshotSchema.shape.devices.optional(),
  library: DevicesSnapshotSchema.shape.library.optional(),
  queue: DevicesSnapshotSchema.shape.queue.optional()
})

/** System domain: what this machine has. */
export const systemInvokes = {
  /** The devices of this machine, the ONNX Runtime version and which providers can start. */
  'system:state': defineInvoke(z.object({}).strict().optional(), SystemStateSchema)
} as const

export const systemEvents = {
  /** Pushed while values change (GPU polling runs only while a client is connected). */
  'system:changed': defineEvent(HardwareStateSchema)
} as const
