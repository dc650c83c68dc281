/**
 * The /api/v2 endpoints: each one's body is checked with its schema, the seed's names are mapped to
 * the contract's, and every call goes through the Router, the same way a window's does (no second
 * engine). The table also makes the OpenAPI document.
 */
import type { ManagedDevice } from '@shared/domain/devices'
import { toPublicJobResult } from '@shared/public/jobResult'
import { defineEndpoint, type EndpointAnswer, type Endpoint } from './endpoint'
import { fail } from './failures'
import { jobEndpoint, jobIdParam } from './jobEndpoints'
import { resolveLens } from './lensRef'
import { managerEndpoints } from './managerEndpoints'
import { toDeviceId } from './names'
import { analysisOptions, generateOptions } from './options'
import {
  ApiSystemStateSchema,
  GenerateAnalyzeRequestSchema,
  GenerateRequestSchema,
  JobResultSchema,
  JobStateSchema,
  LoadGroupRequestSchema,
  LoadModelRequestSchema,
  LoadResponseSchema,
  JobQueuedSchema,
  PinGroupRequestSchema,
  PinResponseSchema,
  InterveneRequestSchema,
  ProcessRequestSchema,
  SweepApiRequestSchema,
  UnloadGroupRequestSchema,
  UnloadResponseSchema
} from './schemas'

function loadAnswer(
  result: { jobId: string; deviceId: string; placement: unknown },
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
      device: result.deviceId,
      placement: result.placement,
      message: `${groupId} is loaded on ${result.deviceId}`
    }
  }
}

const LOAD_RESPONSES = [
  { status: 200, schema: LoadResponseSchema, description: 'Loaded' },
  { status: 202, schema: JobQueuedSchema, description: 'Queued (wait: false)' }
]

export const endpoints: readonly Endpoint[] = [
  defineEndpoint({
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
  }),
  defineEndpoint({
    method: 'POST',
    path: '/models/load',
    summary: "Load a lens's group (auto-selects a device when device_id is omitted)",
    request: LoadModelRequestSchema,
    responses: LOAD_RESPONSES,
    errors: [400, 401, 404, 409, 413, 422, 503],
    async handle({ body }, ctx) {
      const lens = await resolveLens(body.model_id, ctx)
      const result = await ctx.call(
        'models:load',
        { groupId: lens.groupId, deviceId: toDeviceId(body.device_id), wait: body.wait },
        { group_id: 'model_id' }
      )
      return loadAnswer(result, lens.groupId, `${lens.groupId}/${lens.lensId}`)
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/groups/load',
    summary: 'Load a group (auto-selects a device when device_id is omitted)',
    request: LoadGroupRequestSchema,
    responses: LOAD_RESPONSES,
    errors: [400, 401, 404, 409, 413, 422, 503],
    async handle({ body }, ctx) {
      const result = await ctx.call('models:load', {
        groupId: body.group_id,
        deviceId: toDeviceId(body.device_id),
        wait: body.wait
      })
      return loadAnswer(result, body.group_id, null)
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/groups/unload',
    summary: 'Unload a group (409 when pinned or in use, unless force)',
    request: UnloadGroupRequestSchema,
    responses: [{ status: 200, schema: UnloadResponseSchema, description: 'Unloaded' }],
    errors: [400, 401, 404, 409, 413, 503],
    async handle({ body }, ctx) {
      const result = await ctx.call('models:unload', {
        groupId: body.group_id,
        deviceId: toDeviceId(body.device_id),
        force: body.force
      })
      const where = result.unloaded.map((u) => u.deviceId).join(', ')
      return {
        status: 200,
        body: {
          ...result,
          groupId: body.group_id,
          message: `${body.group_id} unloaded from ${where}`
        }
      }
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/groups/pin',
    summary: 'Pin (never evicted or moved automatically) or unpin a loaded group',
    request: PinGroupRequestSchema,
    responses: [{ status: 200, schema: PinResponseSchema, description: 'The placement' }],
    errors: [400, 401, 404, 413],
    async handle({ body }, ctx) {
      let deviceId = toDeviceId(body.device_id)
      if (!deviceId) {
        const snapshot = await ctx.call('devices:state', undefined)
        const holders = snapshot.devices.filter((d: ManagedDevice) =>
          d.placements.some((p) => p.groupId === body.group_id)
        )
        const [holder] = holders
        if (!holder) fail('not_found', `${body.group_id} is not loaded`, 'group_id')
        if (holders.length > 1) {
          fail(
            'invalid_input',
            `${body.group_id} is loaded on ${holders.map((d) => d.id).join(', ')}; name one`,
            'device_id'
          )
        }
        deviceId = holder.id
      }
      const placement = await ctx.call('models:pin', {
        groupId: body.group_id,
        deviceId,
        pinned: body.pinned
      })
      return { status: 200, body: { groupId: body.group_id, deviceId, placement } }
    }
  }),
  jobEndpoint({
    path: '/models/process',
    summary: 'Analyse a prompt with a lens (num_predictions = best-of-K)',
    request: ProcessRequestSchema,
    kind: 'analyze',
    result: 'The finished job with its rows',
    fields: (body, raw) => ({
      options: analysisOptions(body.options, raw.options, body.num_predictions)
    }),
    seedOptions: (raw) => [raw.options]
  }),
  jobEndpoint({
    path: '/models/generate',
    summary: 'Continue a prompt with the base model (or the lens donor)',
    request: GenerateRequestSchema,
    kind: 'generate',
    result: 'The finished job with completions',
    fields: (body, raw) => ({
      generate: generateOptions(body.options, raw.options, body.num_completions)
    }),
    seedOptions: (raw) => [raw.options]
  }),
  jobEndpoint({
    path: '/models/generate-and-analyze',
    summary: 'Continue a prompt, then analyse prompt + continuation with the lens',
    request: GenerateAnalyzeRequestSchema,
    kind: 'generate-analyze',
    result: 'Completions and analysis rows',
    fields: (body, raw) => ({
      options: analysisOptions(body.options, raw.options, body.num_predictions),
      generate: generateOptions(body.generation, raw.generation, undefined, 'generation')
    }),
    seedOptions: (raw) => [raw.options, raw.generation]
  }),
  jobEndpoint({
    path: '/models/intervene',
    summary:
      'Causal intervention: replace the residual at positions by encoded strings; compare predictions, KL, MSE and continuations',
    request: InterveneRequestSchema,
    kind: 'intervene',
    result: 'The finished job with its interventions (one per position and string)',
    fields: (body, raw) => ({
      options: analysisOptions(body.options, raw.options, body.num_predictions),
      intervention: {
        positions: body.positions,
        strings: body.strings,
        topK: body.top_k,
        maxNewTokens: body.max_new_tokens,
        ...(body.next_position === undefined ? {} : { nextPosition: body.next_position })
      }
    }),
    seedOptions: (raw) => [raw.options],
    fieldNames: { intervention: '' }
  }),
  jobEndpoint({
    path: '/models/sweep',
    summary: 'Explain the residual at one position from every layer (one row per layer)',
    request: SweepApiRequestSchema,
    kind: 'sweep',
    result: 'The finished job with one row per layer',
    fields: (body, raw) => ({
      options: analysisOptions(body.options, raw.options, body.num_predictions),
      sweep: {
        position: body.position,
        lenses: body.lenses,
        ...(body.layers === undefined ? {} : { layers: body.layers })
      }
    }),
    seedOptions: (raw) => [raw.options],
    fieldNames: { sweep: '' }
  }),
  ...managerEndpoints,
  defineEndpoint({
    method: 'GET',
    path: '/jobs/{job_id}',
    summary: 'A job: status, progress, and its rows / completions so far',
    responses: [{ status: 200, schema: JobResultSchema, description: 'The job and its output' }],
    errors: [401, 404],
    async handle({ params }, ctx) {
      const result = await ctx.call('jobs:result', { jobId: jobIdParam(params) })
      return { status: 200, body: toPublicJobResult(result) }
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/jobs/{job_id}/cancel',
    summary: 'Cancel: a queued job at once, a running one at its next batch (rows so far kept)',
    responses: [{ status: 200, schema: JobStateSchema, description: 'The job after the cancel' }],
    errors: [401, 404],
    async handle({ params }, ctx) {
      return { status: 200, body: await ctx.call('jobs:cancel', { jobId: jobIdParam(params) }) }
    }
  })
]
