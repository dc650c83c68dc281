import { z } from 'zod'
import { HardwareStateSchema } from '../../domain/system'
import { defineEvent, defineInvoke } from '../define'

/** System domain: what this machine has. */
export const systemInvokes = {
  /** The devices of this machine, the ONNX Runtime version and which providers can start. */
  'system:state': defineInvoke(z.object({}).strict().optional(), HardwareStateSchema)
} as const

export const systemEvents = {
  /** Pushed while values change (GPU polling runs only while a client is connected). */
  'system:changed': defineEvent(HardwareStateSchema)
} as const
