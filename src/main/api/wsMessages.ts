/**
 * The /api/v2/ws protocol, as zod schemas (camelCase inside, snake_case on the wire like the HTTP
 * side). Message names are the seed's where it had them.
 */
import { z } from 'zod'
import { PlacementSchema } from '@shared/domain/devices'
import { JobResultSchema, JobRowsSchema, JobStateSchema } from '@shared/domain/jobs'
import { SerializedErrorSchema } from '@shared/ipc/errors'
import { DevicesSnapshotSchema } from '@shared/ipc/channels/devices'
import { ApiSystemStateSchema } from './schemas'

/** Client → server. `job_id: "*"` subscribes to every job. */
export const WsClientMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('subscribe'), job_id: z.string().min(1).max(100) }),
  z.strictObject({ type: z.literal('unsubscribe'), job_id: z.string().min(1).max(100) }),
  z.strictObject({ type: z.literal('get_state') }),
  z.strictObject({ type: z.literal('ping') })
])
export type WsClientMessage = z.infer<typeof WsClientMessageSchema>

/** Server → client (camelCase here; renamed to snake_case when sent). */
export const WsServerMessageSchemas = {
  connection_established: z.object({
    type: z.literal('connection_established'),
    message: z.string(),
    clientId: z.string(),
    numDevices: z.number().int()
  }),
  system_state: z.object({ type: z.literal('system_state'), data: ApiSystemStateSchema }),
  state_update: z.object({ type: z.literal('state_update'), data: DevicesSnapshotSchema }),
  model_loaded: z.object({
    type: z.literal('model_loaded'),
    jobId: z.string(),
    groupId: z.string(),
    deviceId: z.string(),
    placement: PlacementSchema.nullable()
  }),
  model_load_error: z.object({
    type: z.literal('model_load_error'),
    jobId: z.string(),
    groupId: z.string(),
    error: SerializedErrorSchema
  }),
  device_cleared: z.object({
    type: z.literal('device_cleared'),
    deviceId: z.string(),
    groupId: z.string()
  }),
  subscribed: z.object({
    type: z.literal('subscribed'),
    jobId: z.string(),
    job: JobStateSchema.nullable()
  }),
  unsubscribed: z.object({ type: z.literal('unsubscribed'), jobId: z.string() }),
  job_update: z.object({ type: z.literal('job_update'), job: JobStateSchema }),
  progress: z.object({
    type: z.literal('progress'),
    jobId: z.string(),
    current: z.number().int(),
    total: z.number().int(),
    progress: z.number().describe('current / total · 100')
  }),
  rows: JobRowsSchema.extend({ type: z.literal('rows') }),
  completed: z.object({ type: z.literal('completed'), jobId: z.string(), result: JobResultSchema }),
  cancelled: z.object({ type: z.literal('cancelled'), jobId: z.string(), result: JobResultSchema }),
  error: z.object({
    type: z.literal('error'),
    jobId: z.string().optional(),
    error: SerializedErrorSchema
  }),
  pong: z.object({ type: z.literal('pong') })
} as const

export type WsServerMessage = {
  [K in keyof typeof WsServerMessageSchemas]: z.input<(typeof WsServerMessageSchemas)[K]>
}[keyof typeof WsServerMessageSchemas]
