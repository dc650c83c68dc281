/**
 * The /api/v2 endpoints: each one validates its body with its schema, maps the seed's names to the
 * contract's and dispatches through the Router, the same way a window does (no second engine).
 * The table also feeds the OpenAPI document.
 */
import type { z } from 'zod'
import type { ManagedDevice } from '@shared/domain/devices'
import { JobIdSchema, type JobState } from '@shared/domain/jobs'
import type { ModelLibrary } from '@shared/domain/models'
import type { InvokeChannel, InvokeInput, InvokeOutput } from '@shared/ipc/contract'
import type { ErrorCode, SerializedError } from '@shared/ipc/errors'
import type { Router } from '../router/router'
import {
  camelCase,
  renameKeysDeep,
  SEED_ANALYSIS_OPTION_ALIASES,
  toDeviceId,
  toWireField
} from './names'
import {
  ApiSystemStateSchema,
  GenerateAnalyzeRequestSchema,
  GenerateRequestSchema,
  JobQueuedSchema,
  JobResultSchema,
  JobStateSchema,
  LoadGroupRequestSchema,
  LoadModelRequestSchema,
  LoadResponseSchema,
  PinGroupRequestSchema,
  PinResponseSchema,
  ProcessRequestSchema,
  UnloadGroupRequestSchema,
  UnloadResponseSchema
} from './schemas'

/** HTTP status for each error code that crosses the boundary. */
export const STATUS_FOR_CODE: Record<ErrorCode, number> = {
  invalid_input: 400,
  unknown_channel: 404,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  cancelled: 409,
  bundle_invalid: 422,
  worker_crashed: 503,
  forbidden: 403,
  internal: 500
}

/** An answer other than success: an HTTP status and the error as data (fields already snake_case). */
export class ApiFailure extends Error {
  readonly status: number
  readonly error: SerializedError
  readonly extra: Record<string, unknown>
  constructor(status: number, error: SerializedError, extra: Record<string, unknown> = {}) {
    super(error.message)
    this.status = status
    this.error = error
    this.extra = extra
  }
}

function fail(code: ErrorCode, message: string, field?: string): never {
  throw new ApiFailure(STATUS_FOR_CODE[code], field ? { code, message, field } : { code, message })
}

export interface EndpointContext {
  clientId: string
  /** Dispatches through the Router; a failure becomes an ApiFailure with the field renamed. */
  call<C extends InvokeChannel>(
    channel: C,
    input: InvokeInput<C>,
    fieldOverrides?: Record<string, string>
  ): Promise<InvokeOutput<C>>
  waitForJob(jobId: string): Promise<JobState | null>
  /** Runs `onClose` if the caller hangs up before the answer is sent. */
  onClientGone(onClose: () => void): void
}

export interface EndpointAnswer {
  status: number
  body: unknown
}

export interface Endpoint {
  method: 'GET' | 'POST'
  /** OpenAPI path template below /api/v2, e.g. `/jobs/{job_id}`. */
  path: string
  summary: string
  request?: z.ZodType
  /** Success answers; every error answer has the shared error schema. */
  responses: Array<{ status: number; schema: z.ZodType; description: string }>
  errors: number[]
  handle(
    input: { body: unknown; raw: Record<string, unknown>; params: Record<string, string> },
    ctx: EndpointContext
  ): Promise<EndpointAnswer>
}

/**
 * Dispatches through the Router as `clientId`, the way every endpoint calls a service: a failure
 * becomes an ApiFailure whose field is spelled as the caller spelled it.
 */
export async function dispatchForApi<C extends InvokeChannel>(
  router: Router,
  clientId: string,
  channel: C,
  input: InvokeInput<C>,
  fieldOverrides?: Record<string, string>
): Promise<InvokeOutput<C>> {
  const result = await router.dispatch(channel, input, { clientId })
  if (result.ok) return result.value as InvokeOutput<C>
  const e = result.error
  const wire: SerializedError = { code: e.code, message: e.message }
  const field = toWireField(e.field, fieldOverrides)
  if (field) wire.field = field
  if (e.file) wire.file = e.file
  throw new ApiFailure(STATUS_FOR_CODE[e.code] ?? 500, wire)
}

interface LensRef {
  groupId: string
  lensId: string
}

/** `group/lens`, a lens id unique across groups, or a group id (its first lens). */
export async function resolveLens(ref: string, ctx: EndpointContext): Promise<LensRef> {
  const library: ModelLibrary = await ctx.call('models:list', undefined)
  const groups = library.groups.filter((g) => g.status === 'ok')
  const slash = ref.lastIndexOf('/')
  if (slash > 0) {
    const groupId = ref.slice(0, slash)
    const lensId = ref.slice(slash + 1)
    const group = groups.find((g) => g.groupId === groupId)
    if (group?.lenses.some((l) => l.id === lensId)) return { groupId, lensId }
  }
  const owners = groups.filter((g) => g.lenses.some((l) => l.id === ref))
  if (owners.length === 1) return { groupId: owners[0].groupId, lensId: ref }
  if (owners.length > 1) {
    fail(
      'invalid_input',
      `lens id ${ref} is in several groups (${owners.map((g) => g.groupId).join(', ')}); name it group/lens`,
      'model_id'
    )
  }
  const group = groups.find((g) => g.groupId === ref)
  if (group && group.lenses.length > 0)
    return { groupId: group.groupId, lensId: group.lenses[0].id }
  const known = groups.flatMap((g) => g.lenses.map((l) => `${g.groupId}/${l.id}`))
  fail('not_found', `no lens ${ref} (known: ${known.join(', ') || 'none'})`, 'model_id')
}

/**
 * Contract analysis options from the API's: snake_case renamed, seed aliases applied, and
 * `num_predictions` as best-of-K. Giving one setting two different values is a 400.
 */
function analysisOptions(
  parsed: Record<string, unknown> | undefined,
  rawOptions: unknown,
  numPredictions: number | undefined
): Record<string, unknown> {
  const raw = (rawOptions && typeof rawOptions === 'object' ? rawOptions : {}) as Record<
    string,
    unknown
  >
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(parsed ?? {})) {
    if (key in SEED_ANALYSIS_OPTION_ALIASES) continue
    out[camelCase(key)] = renameKeysDeep(value, camelCase)
  }
  for (const [alias, { to, invert }] of Object.entries(SEED_ANALYSIS_OPTION_ALIASES)) {
    const value = parsed?.[alias]
    if (value === undefined) continue
    const meant = invert ? !value : value
    const ownName = toWireField(to)!
    if (raw[ownName] !== undefined && raw[ownName] !== meant) {
      fail('invalid_input', `options.${alias} contradicts options.${ownName}`, `options.${alias}`)
    }
    out[to] = meant
  }
  if (numPredictions !== undefined) {
    if (raw.best_of_k !== undefined && raw.best_of_k !== numPredictions) {
      fail('invalid_input', 'num_predictions contradicts options.best_of_k', 'num_predictions')
    }
    out.bestOfK = numPredictions
  }
  return out
}

function generateOptions(
  parsed: Record<string, unknown> | undefined,
  rawOptions: unknown,
  numCompletions: number | undefined
): Record<string, unknown> {
  const raw = (rawOptions && typeof rawOptions === 'object' ? rawOptions : {}) as Record<
    string,
    unknown
  >
  const out = renameKeysDeep(parsed ?? {}, camelCase) as Record<string, unknown>
  if (numCompletions !== undefined) {
    if (raw.completions !== undefined && raw.completions !== numCompletions) {
      fail('invalid_input', 'num_completions contradicts options.completions', 'num_completions')
    }
    out.completions = numCompletions
  }
  return out
}

/** Queues a job; with `wait`, answers with its result once it has finished. */
async function submitJob(
  ctx: EndpointContext,
  submit: InvokeInput<'jobs:submit'>,
  wait: boolean
): Promise<EndpointAnswer> {
  const { jobId } = await ctx.call('jobs:submit', submit, { group_id: 'model_id' })
  const state = await ctx.call('jobs:get', { jobId })
  // A job no device can ever take fails at once: say so now, with the reason.
  if (state.status === 'failed' && state.error) throwJobError(state)
  if (!wait) {
    return {
      status: 202,
      body: { jobId, status: state.status, queuePosition: state.queuePosition }
    }
  }
  let answered = false
  ctx.onClientGone(() => {
    if (!answered) void ctx.call('jobs:cancel', { jobId }).catch(() => undefined)
  })
  const final = await ctx.waitForJob(jobId)
  answered = true
  if (!final) fail('not_found', `job ${jobId} is gone`, 'job_id')
  if (final.status === 'failed') throwJobError(final)
  return { status: 200, body: await ctx.call('jobs:result', { jobId }) }
}

function throwJobError(state: JobState): never {
  const error = state.error ?? { code: 'internal' as const, message: 'the job failed' }
  const wire: SerializedError = { code: error.code, message: error.message }
  const field = toWireField(error.field)
  if (field) wire.field = field
  if (error.file) wire.file = error.file
  throw new ApiFailure(STATUS_FOR_CODE[error.code] ?? 500, wire, { job_id: state.id })
}

function loadAnswer(
  result: InvokeOutput<'models:load'>,
  groupId: string,
  modelId: string | null
): EndpointAnswer {
  if (!result.placement) {
    return { status: 202, body: { jobId: result.jobId, status: 'queued', queuePosition: null } }
  }
  return {
    status: 200,
    body: {
      status: 'loaded',
      jobId: result.jobId,
      modelId,
      groupId,
      deviceId: result.deviceId,
      placement: result.placement,
      message: `${groupId} is loaded on ${result.deviceId}`
    }
  }
}

function jobIdParam(params: Record<string, string>): string {
  const jobId = params.job_id
  // A malformed id cannot name a job: it is an unknown id, not bad input.
  if (!JobIdSchema.safeParse(jobId).success) fail('not_found', `no job ${jobId}`, 'job_id')
  return jobId
}

const JOB_ERRORS = [400, 401, 404, 409, 413, 422, 503]

export const endpoints: Endpoint[] = [
  {
    method: 'GET',
    path: '/system/state',
    summary: 'All devices (with placements), groups and lenses, the queue, and the hardware',
    responses: [{ status: 200, schema: ApiSystemStateSchema, description: 'The system state' }],
    errors: [401],
    async handle(_input, ctx) {
      // devices:state starts the device manager if nothing has yet; system:state never does.
      await ctx.call('devices:state', undefined)
      const state = await ctx.call('system:state', undefined)
      return {
        status: 200,
        body: {
          ...state,
          numDevices: state.devices?.length ?? 0,
          groups: state.library?.groups ?? []
        }
      }
    }
  },
  {
    method: 'POST',
    path: '/models/load',
    summary: "Load a lens's group (auto-selects a device when device_id is omitted)",
    request: LoadModelRequestSchema,
    responses: [
      { status: 200, schema: LoadResponseSchema, description: 'Loaded' },
      { status: 202, schema: JobQueuedSchema, description: 'Queued (wait: false)' }
    ],
    errors: [400, 401, 404, 409, 413, 422, 503],
    async handle({ body }, ctx) {
      const b = body as z.output<typeof LoadModelRequestSchema>
      const lens = await resolveLens(b.model_id, ctx)
      const result = await ctx.call(
        'models:load',
        { groupId: lens.groupId, deviceId: toDeviceId(b.device_id), wait: b.wait },
        { group_id: 'model_id' }
      )
      return loadAnswer(result, lens.groupId, `${lens.groupId}/${lens.lensId}`)
    }
  },
  {
    method: 'POST',
    path: '/groups/load',
    summary: 'Load a group (auto-selects a device when device_id is omitted)',
    request: LoadGroupRequestSchema,
    responses: [
      { status: 200, schema: LoadResponseSchema, description: 'Loaded' },
      { status: 202, schema: JobQueuedSchema, description: 'Queued (wait: false)' }
    ],
    errors: [400, 401, 404, 409, 413, 422, 503],
    async handle({ body }, ctx) {
      const b = body as z.output<typeof LoadGroupRequestSchema>
      const result = await ctx.call('models:load', {
        groupId: b.group_id,
        deviceId: toDeviceId(b.device_id),
        wait: b.wait
      })
      return loadAnswer(result, b.group_id, null)
    }
  },
  {
    method: 'POST',
    path: '/groups/unload',
    summary: 'Unload a group (409 when pinned or in use, unless force)',
    request: UnloadGroupRequestSchema,
    responses: [{ status: 200, schema: UnloadResponseSchema, description: 'Unloaded' }],
    errors: [400, 401, 404, 409, 413, 503],
    async handle({ body }, ctx) {
      const b = body as z.output<typeof UnloadGroupRequestSchema>
      const result = await ctx.call('models:unload', {
        groupId: b.group_id,
        deviceId: toDeviceId(b.device_id),
        force: b.force
      })
      const where = result.unloaded.map((u) => u.deviceId).join(', ')
      return {
        status: 200,
        body: { ...result, groupId: b.group_id, message: `${b.group_id} unloaded from ${where}` }
      }
    }
  },
  {
    method: 'POST',
    path: '/groups/pin',
    summary: 'Pin (never evicted or moved automatically) or unpin a loaded group',
    request: PinGroupRequestSchema,
    responses: [{ status: 200, schema: PinResponseSchema, description: 'The placement' }],
    errors: [400, 401, 404, 413],
    async handle({ body }, ctx) {
      const b = body as z.output<typeof PinGroupRequestSchema>
      let deviceId = toDeviceId(b.device_id)
      if (!deviceId) {
        const snapshot = await ctx.call('devices:state', undefined)
        const holders = snapshot.devices.filter((d: ManagedDevice) =>
          d.placements.some((p) => p.groupId === b.group_id)
        )
        if (holders.length === 0) fail('not_found', `${b.group_id} is not loaded`, 'group_id')
        if (holders.length > 1) {
          fail(
            'invalid_input',
            `${b.group_id} is loaded on ${holders.map((d) => d.id).join(', ')}; name one`,
            'device_id'
          )
        }
        deviceId = holders[0].id
      }
      const placement = await ctx.call('models:pin', {
        groupId: b.group_id,
        deviceId,
        pinned: b.pinned
      })
      return { status: 200, body: { groupId: b.group_id, deviceId, placement } }
    }
  },
  {
    method: 'POST',
    path: '/models/process',
    summary: 'Analyse a prompt with a lens (num_predictions = best-of-K)',
    request: ProcessRequestSchema,
    responses: [
      { status: 200, schema: JobResultSchema, description: 'The finished job with its rows' },
      { status: 202, schema: JobQueuedSchema, description: 'Queued (wait: false)' }
    ],
    errors: JOB_ERRORS,
    async handle({ body, raw }, ctx) {
      const b = body as z.output<typeof ProcessRequestSchema>
      const lens = await resolveLens(b.model_id, ctx)
      const options = analysisOptions(b.options, raw.options, b.num_predictions)
      return submitJob(
        ctx,
        {
          kind: 'analyze',
          groupId: lens.groupId,
          lensId: lens.lensId,
          ...promptInput(b.prompt),
          options,
          deviceId: toDeviceId(b.device_id)
        },
        b.wait
      )
    }
  },
  {
    method: 'POST',
    path: '/models/generate',
    summary: 'Continue a prompt with the base model (or the lens donor)',
    request: GenerateRequestSchema,
    responses: [
      { status: 200, schema: JobResultSchema, description: 'The finished job with completions' },
      { status: 202, schema: JobQueuedSchema, description: 'Queued (wait: false)' }
    ],
    errors: JOB_ERRORS,
    async handle({ body, raw }, ctx) {
      const b = body as z.output<typeof GenerateRequestSchema>
      const lens = await resolveLens(b.model_id, ctx)
      return submitJob(
        ctx,
        {
          kind: 'generate',
          groupId: lens.groupId,
          lensId: lens.lensId,
          ...promptInput(b.prompt),
          generate: generateOptions(b.options, raw.options, b.num_completions),
          deviceId: toDeviceId(b.device_id)
        },
        b.wait
      )
    }
  },
  {
    method: 'POST',
    path: '/models/generate-and-analyze',
    summary: 'Continue a prompt, then analyse prompt + continuation with the lens',
    request: GenerateAnalyzeRequestSchema,
    responses: [
      { status: 200, schema: JobResultSchema, description: 'Completions and analysis rows' },
      { status: 202, schema: JobQueuedSchema, description: 'Queued (wait: false)' }
    ],
    errors: JOB_ERRORS,
    async handle({ body, raw }, ctx) {
      const b = body as z.output<typeof GenerateAnalyzeRequestSchema>
      const lens = await resolveLens(b.model_id, ctx)
      return submitJob(
        ctx,
        {
          kind: 'generate-analyze',
          groupId: lens.groupId,
          lensId: lens.lensId,
          ...promptInput(b.prompt),
          options: analysisOptions(b.options, raw.options, b.num_predictions),
          generate: generateOptions(b.generation, raw.generation, undefined),
          deviceId: toDeviceId(b.device_id)
        },
        b.wait
      )
    }
  },
  {
    method: 'GET',
    path: '/jobs/{job_id}',
    summary: 'A job: status, progress, and its rows / completions so far',
    responses: [{ status: 200, schema: JobResultSchema, description: 'The job and its output' }],
    errors: [401, 404],
    async handle({ params }, ctx) {
      return { status: 200, body: await ctx.call('jobs:result', { jobId: jobIdParam(params) }) }
    }
  },
  {
    method: 'POST',
    path: '/jobs/{job_id}/cancel',
    summary: 'Cancel: a queued job at once, a running one at its next batch (rows so far kept)',
    responses: [{ status: 200, schema: JobStateSchema, description: 'The job after the cancel' }],
    errors: [401, 404],
    async handle({ params }, ctx) {
      return { status: 200, body: await ctx.call('jobs:cancel', { jobId: jobIdParam(params) }) }
    }
  }
]

/** Matches a path below /api/v2 against the table: the endpoint, or the methods the path allows. */
export function matchEndpoint(
  method: string,
  path: string
): { endpoint: Endpoint; params: Record<string, string> } | { allowed: string[] } | null {
  const allowed: string[] = []
  for (const endpoint of endpoints) {
    const names: string[] = []
    const pattern = endpoint.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
      names.push(name)
      return '([^/]+)'
    })
    const m = new RegExp(`^${pattern}/?$`).exec(path)
    if (!m) continue
    if (endpoint.method !== method) {
      allowed.push(endpoint.method)
      continue
    }
    const params: Record<string, string> = {}
    names.forEach((name, i) => {
      params[name] = safeDecode(m[i + 1])
    })
    return { endpoint, params }
  }
  return allowed.length ? { allowed } : null
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** A prompt as the job contract takes it: plain text, or a conversation for the chat template. */
function promptInput(
  prompt: string | Array<{ role: 'system' | 'user' | 'assistant'; content: string }>
):
  | { text: string }
  | { messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }> } {
  return typeof prompt === 'string' ? { text: prompt } : { messages: prompt }
}
