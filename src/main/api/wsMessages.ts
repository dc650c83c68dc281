/**
 * The /api/v2/ws protocol, as zod schemas (camelCase inside, snake_case on the wire like the HTTP
 * side). Message names are the seed's where it had them.
 */
import { z } from 'zod'
import { PlacementSchema } from '@shared/domain/devices'
import { JobStateSchema, JobStatusSchema } from '@shared/domain/jobs'
import {
  PublicJobResultSchema as JobResultSchema,
  PublicJobRowsSchema as JobRowsSchema
} from '@shared/public/jobResult'
import { SerializedErrorSchema } from '@shared/ipc/errors'
import { DevicesSnapshotSchema } from '@shared/ipc/channels/devices'
import {
  ApiSystemStateSchema,
  GenerateAnalyzeRequestSchema,
  GenerateRequestSchema,
  InterveneRequestSchema,
  ProcessRequestSchema,
  SweepApiRequestSchema
} from './schemas'
import { STRICT_CONTROL_SCHEMAS } from './control'

const ClientRequestIdSchema = z
  .string()
  .min(1)
  .max(200)
  .describe("The client's own name for a request, echoed in the replies about it")
const RequestIdSchema = z.string().min(1).max(100).describe('A job id (`request_id` of `queued`)')

/**
 * Submissions over the socket: the HTTP bodies of the same endpoints (one schema, one handler),
 * less `wait` (the socket streams the job instead), plus the seed's `client_request_id`.
 */
export const WS_SUBMIT_ENDPOINTS = {
  analyze: { path: '/models/process', context: 'analysis' },
  generate: { path: '/models/generate', context: 'generation' },
  generate_and_analyze: {
    path: '/models/generate-and-analyze',
    context: 'generation_and_analysis'
  },
  intervene: { path: '/models/intervene', context: 'intervention' },
  sweep: { path: '/models/sweep', context: 'layer_sweep' }
} as const
export type WsSubmitType = keyof typeof WS_SUBMIT_ENDPOINTS

const submitExtras = { client_request_id: ClientRequestIdSchema.optional() }

export const WsSubmitMessageSchemas = {
  analyze: ProcessRequestSchema.omit({ wait: true }).extend({
    type: z.literal('analyze'),
    ...submitExtras
  }),
  generate: GenerateRequestSchema.omit({ wait: true }).extend({
    type: z.literal('generate'),
    ...submitExtras
  }),
  generate_and_analyze: GenerateAnalyzeRequestSchema.omit({ wait: true }).extend({
    type: z.literal('generate_and_analyze'),
    ...submitExtras
  }),
  intervene: InterveneRequestSchema.omit({ wait: true }).extend({
    type: z.literal('intervene'),
    ...submitExtras
  }),
  sweep: SweepApiRequestSchema.omit({ wait: true }).extend({
    type: z.literal('sweep'),
    ...submitExtras
  })
} as const

/** What a `queued` or `interrupt` message says the job is. */
const JobContextSchema = z.enum([
  'analysis',
  'generation',
  'generation_and_analysis',
  'intervention',
  'layer_sweep'
])

/** Client → server. `job_id: "*"` subscribes to every job. */
export const WsClientMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('subscribe'), job_id: z.string().min(1).max(100) }),
  z.strictObject({ type: z.literal('unsubscribe'), job_id: z.string().min(1).max(100) }),
  z.strictObject({ type: z.literal('get_state') }),
  z.strictObject({ type: z.literal('ping') }),
  WsSubmitMessageSchemas.analyze,
  WsSubmitMessageSchemas.generate,
  WsSubmitMessageSchemas.generate_and_analyze,
  WsSubmitMessageSchemas.intervene,
  WsSubmitMessageSchemas.sweep,
  z.strictObject({
    type: z.literal('cancel_request'),
    request_id: RequestIdSchema,
    client_request_id: ClientRequestIdSchema.optional()
  }),
  z.strictObject({
    type: z.literal('interrupt'),
    request_id: RequestIdSchema,
    context: JobContextSchema.optional(),
    client_request_id: ClientRequestIdSchema.optional()
  }),
  z.strictObject({ type: z.literal('status'), request_id: RequestIdSchema }),
  // The predecessor's control messages (control.ts): same handlers as their HTTP endpoints.
  ...Object.values(STRICT_CONTROL_SCHEMAS)
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
  queued: z.object({
    type: z.literal('queued'),
    requestId: z.string().describe('The job id: use it to cancel, ask the status or subscribe'),
    jobId: z.string(),
    status: JobStatusSchema,
    queuePosition: z.number().int().nullable(),
    context: JobContextSchema,
    clientRequestId: z.string().optional()
  }),
  request_cancelled: z.object({
    type: z.literal('request_cancelled'),
    requestId: z.string(),
    message: z.string(),
    job: JobStateSchema,
    clientRequestId: z.string().optional()
  }),
  interrupted: z.object({
    type: z.literal('interrupted'),
    requestId: z.string(),
    context: z.string().optional(),
    job: JobStateSchema,
    clientRequestId: z.string().optional()
  }),
  status_update: z.object({
    type: z.literal('status_update'),
    requestId: z.string(),
    status: JobStatusSchema,
    queuePosition: z.number().int().nullable(),
    error: SerializedErrorSchema.nullable(),
    job: JobStateSchema
  }),
  error: z.object({
    type: z.literal('error'),
    jobId: z.string().optional(),
    requestId: z.string().optional(),
    clientRequestId: z.string().optional(),
    error: SerializedErrorSchema
  }),
  pong: z.object({ type: z.literal('pong') })
} as const

export type WsServerMessage = {
  [K in keyof typeof WsServerMessageSchemas]: z.input<(typeof WsServerMessageSchemas)[K]>
}[keyof typeof WsServerMessageSchemas]
