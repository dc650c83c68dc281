import type { z } from 'zod'
import { systemEvents, systemInvokes } from './channels/system'
import { devicesEvents, devicesInvokes } from './channels/devices'
import { jobsEvents, jobsInvokes } from './channels/jobs'
import { modelsInvokes } from './channels/models'
import { importsEvents, importsInvokes } from './channels/imports'
import { sessionsEvents, sessionsInvokes } from './channels/sessions'

/**
 * THE contract between the main-side services and every client (Electron renderer through the
 * preload, the headless host's browser page over a WebSocket, tests over an in-memory transport).
 * Channel names are `domain:verb`; each domain declares its channels in `./channels/<domain>.ts`.
 */
export const invokeChannels = {
  ...systemInvokes,
  ...devicesInvokes,
  ...modelsInvokes,
  ...importsInvokes,
  ...jobsInvokes,
  ...sessionsInvokes
} as const

export const eventChannels = {
  ...systemEvents,
  ...devicesEvents,
  ...importsEvents,
  ...jobsEvents,
  ...sessionsEvents
} as const

export type InvokeChannels = typeof invokeChannels
export type EventChannels = typeof eventChannels
export type InvokeChannel = keyof InvokeChannels
export type EventChannel = keyof EventChannels

/** What a caller passes (before defaults are applied). */
export type InvokeInput<C extends InvokeChannel> = z.input<InvokeChannels[C]['input']>
/** What a handler receives (after parsing and defaults). */
export type InvokeParsedInput<C extends InvokeChannel> = z.output<InvokeChannels[C]['input']>
export type InvokeOutput<C extends InvokeChannel> = z.output<InvokeChannels[C]['output']>
export type EventPayload<E extends EventChannel> = z.output<EventChannels[E]['payload']>

export function isInvokeChannel(name: unknown): name is InvokeChannel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(invokeChannels, name)
}

export function isEventChannel(name: unknown): name is EventChannel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(eventChannels, name)
}

export const invokeChannelNames = Object.keys(invokeChannels) as InvokeChannel[]
export const eventChannelNames = Object.keys(eventChannels) as EventChannel[]
