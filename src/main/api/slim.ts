/**
 * The predecessor's `/api/slim`: chat messages in, poll for the result. Same Router, same fair
 * queue, same devices as everything else; request and answer shapes are the predecessor's. A job
 * submitted here is named by its job id (`request_id`), so `/api/v2/jobs/{id}` and the sockets
 * see it too.
 */
import { z } from 'zod'
import { ChatMessageSchema } from '@shared/domain/chat'
import type { JobState } from '@shared/domain/jobs'
import type { LibraryGroup, ModelLibrary } from '@shared/domain/models'
import {
  defineEndpoint,
  type Endpoint,
  type EndpointAnswer,
  type EndpointContext
} from './endpoint'
import { fail } from './failures'
import { jobIdParam } from './jobEndpoints'
import { resolveLens } from './lensRef'
import { modelId, seedAnalysisMetadata, seedRow } from './seedViews'

export const SLIM_PREFIX = '/api/slim'

const Messages = z.array(ChatMessageSchema).min(1).max(1000)
const GroupRef = z.string().min(1).max(200)
const ModelRef = z.string().min(1).max(401)
const AnyJson = z.unknown()

const wire = (body: unknown, status = 200): EndpointAnswer => ({ status, body, wire: true })

/** What a slim job was asked as (a reply to a chat is a generation with one completion). */
type SlimKind = 'generate' | 'analyze' | 'send_message'
const KEEP_KINDS = 1000
const kinds = new Map<string, SlimKind>()
function remember(jobId: string, kind: SlimKind): void {
  kinds.set(jobId, kind)
  if (kinds.size > KEEP_KINDS) kinds.delete(kinds.keys().next().value!)
}

async function groupOf(ctx: EndpointContext, groupId: string): Promise<LibraryGroup> {
  const library = await ctx.call('models:list', undefined)
  const g = library.groups.find((x) => x.groupId === groupId && x.status === 'ok')
  if (!g) {
    const known = library.groups.filter((x) => x.status === 'ok').map((x) => x.groupId)
    fail(
      'invalid_input',
      `unknown model_group ${groupId} (known: ${known.join(', ')})`,
      'model_group'
    )
  }
  return g
}

/** `model_id` if given (it must be in `model_group`), else the group's first lens. */
async function lensFor(
  ctx: EndpointContext,
  group: string,
  model: string | undefined
): Promise<{ groupId: string; lensId: string }> {
  const g = await groupOf(ctx, group)
  if (!model) {
    const first = g.lenses[0]
    if (!first) fail('invalid_input', `model_group ${group} has no lens`, 'model_group')
    return { groupId: g.groupId, lensId: first.id }
  }
  const lens = await resolveLens(model.includes('/') ? model : `${g.groupId}/${model}`, ctx)
  if (lens.groupId !== g.groupId)
    fail('invalid_input', `model_id ${model} is not in model_group ${group}`, 'model_id')
  return lens
}

async function queued(
  ctx: EndpointContext,
  submit: Parameters<EndpointContext['call']>[1] & object,
  kind: SlimKind
): Promise<EndpointAnswer> {
  const { jobId, queuePosition } = await ctx.call('jobs:submit', submit as never, {
    group_id: 'model_group',
    lens_id: 'model_id',
    messages: 'messages'
  })
  remember(jobId, kind)
  return wire({
    request_id: jobId,
    status: 'queued',
    queue_position: queuePosition ?? 0,
    message: `${kind === 'analyze' ? 'Analysis' : kind === 'send_message' ? 'Message' : 'Generation'} queued`
  })
}

const SEED_STATUS: Record<JobState['status'], string> = {
  queued: 'queued',
  loading: 'processing',
  running: 'processing',
  done: 'completed',
  failed: 'failed',
  cancelled: 'cancelled'
}

function groupSummary(g: LibraryGroup, loaded: boolean): Record<string, unknown> {
  return {
    id: g.groupId,
    name: g.name,
    description: '',
    is_loaded: loaded,
    default_layer: g.lenses[0] ? modelId(g.groupId, g.lenses[0].id) : null
  }
}

function usable(library: ModelLibrary): LibraryGroup[] {
  return library.groups.filter((g) => g.status === 'ok')
}

export const slimEndpoints: readonly Endpoint[] = [
  defineEndpoint({
    method: 'GET',
    path: '',
    summary: 'What this API is',
    responses: [{ status: 200, schema: AnyJson, description: 'Name and routes' }],
    errors: [401],
    async handle() {
      return wire({
        name: 'Talkative Workbench slim API',
        endpoints: [
          'POST /generate',
          'POST /analyze',
          'POST /send_message',
          'GET /status/{request_id}',
          'GET /models',
          'GET /models/{identifier}/layers'
        ]
      })
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/debug',
    summary: 'Slim API state (kinds remembered)',
    responses: [{ status: 200, schema: AnyJson, description: 'Debug info' }],
    errors: [401],
    async handle() {
      return wire({ status: 'ok', requests_remembered: kinds.size })
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/generate',
    summary: 'Continue a conversation (n_continuations samples of n_tokens)',
    request: z.strictObject({
      messages: Messages,
      temperature: z.number().min(0.1).max(2).default(1),
      n_continuations: z.number().int().min(1).max(10).default(1),
      n_tokens: z.number().int().min(1).max(512).default(100),
      model_group: GroupRef,
      model_id: ModelRef.optional()
    }),
    responses: [{ status: 200, schema: AnyJson, description: 'Queued' }],
    errors: [400, 401, 404, 422, 503],
    async handle({ body }, ctx) {
      const lens = await lensFor(ctx, body.model_group, body.model_id)
      return queued(
        ctx,
        {
          kind: 'generate',
          ...lens,
          messages: body.messages,
          generate: {
            temperature: body.temperature,
            completions: body.n_continuations,
            maxNewTokens: body.n_tokens,
            topP: 1
          }
        },
        'generate'
      )
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/analyze',
    summary: 'Analyse a conversation with a lens (best-of-K)',
    request: z.strictObject({
      messages: Messages,
      calculate_token_salience: z.boolean().default(true),
      best_of_k: z.number().int().min(1).max(32).default(8),
      model_group: GroupRef,
      model_id: ModelRef.optional(),
      last_n_messages: z.number().int().min(1).optional()
    }),
    responses: [{ status: 200, schema: AnyJson, description: 'Queued' }],
    errors: [400, 401, 404, 422, 503],
    async handle({ body }, ctx) {
      const lens = await lensFor(ctx, body.model_group, body.model_id)
      return queued(
        ctx,
        {
          kind: 'analyze',
          ...lens,
          messages: body.messages,
          options: {
            bestOfK: body.best_of_k,
            salience: body.calculate_token_salience,
            temperature: 1,
            // The predecessor's slim analyses never computed KL (no_kl: true).
            kl: false,
            ...(body.last_n_messages ? { lastNMessages: body.last_n_messages } : {})
          }
        },
        'analyze'
      )
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/send_message',
    summary: "The model's reply to a conversation (stops at its end of turn)",
    request: z.strictObject({
      messages: Messages,
      temperature: z.number().min(0.1).max(2).default(1),
      max_tokens: z.number().int().min(1).max(4096).default(1024),
      model_group: GroupRef,
      model_id: ModelRef.optional()
    }),
    responses: [{ status: 200, schema: AnyJson, description: 'Queued' }],
    errors: [400, 401, 404, 422, 503],
    async handle({ body }, ctx) {
      const lens = await lensFor(ctx, body.model_group, body.model_id)
      return queued(
        ctx,
        {
          kind: 'generate',
          ...lens,
          messages: body.messages,
          generate: {
            temperature: body.temperature,
            maxNewTokens: body.max_tokens,
            completions: 1,
            topP: 1,
            stopAtEndOfTurn: true
          }
        },
        'send_message'
      )
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/status/{request_id}',
    summary: 'A request: status, and its result once completed',
    responses: [{ status: 200, schema: AnyJson, description: 'The status' }],
    errors: [401, 404],
    async handle({ params }, ctx) {
      const jobId = jobIdParam({ job_id: params.request_id ?? '' })
      const r = await ctx.call('jobs:result', { jobId }, { job_id: 'request_id' })
      const job = r.job
      const status = SEED_STATUS[job.status]
      const body: Record<string, unknown> = {
        request_id: jobId,
        status,
        processing_time:
          job.startedAt !== null ? ((job.finishedAt ?? Date.now()) - job.startedAt) / 1000 : null
      }
      if (job.status === 'failed') body.error = job.error?.message ?? 'failed'
      if (job.status === 'done') {
        const kind = kinds.get(jobId) ?? (job.kind === 'analyze' ? 'analyze' : 'generate')
        const library = await ctx.call('models:list', undefined)
        const meta = {
          model_id: modelId(job.groupId, job.lensId ?? ''),
          device: job.devices.join(', ')
        }
        if (kind === 'analyze' || job.kind === 'generate-analyze') {
          body.result = {
            data: r.rows.map(seedRow),
            metadata: seedAnalysisMetadata(job, r.metadata, library)
          }
        } else if (kind === 'send_message') {
          body.result = {
            response: r.replies[0] ?? r.completions[0] ?? '',
            thinking: null,
            metadata: meta
          }
        } else {
          body.result = { completions: r.completions, metadata: meta }
        }
      }
      return wire(body)
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/models',
    summary: 'The model groups, each with its first lens as default layer',
    responses: [{ status: 200, schema: AnyJson, description: 'The groups' }],
    errors: [401],
    async handle(_input, ctx) {
      const library = await ctx.call('models:list', undefined)
      const groups = usable(library)
      const loaded = groups.find((g) => g.loadedOn.length > 0)
      return wire({
        model_groups: groups.map((g) => groupSummary(g, g.loadedOn.length > 0)),
        current_model_id:
          loaded && loaded.lenses[0] ? modelId(loaded.groupId, loaded.lenses[0].id) : null
      })
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/models/{identifier}/layers',
    summary: 'The lenses ("layers") of a group, named by group id or by one of its lenses',
    responses: [{ status: 200, schema: AnyJson, description: 'The layers' }],
    errors: [401, 404],
    async handle({ params }, ctx) {
      const ref = params.identifier ?? ''
      const library = await ctx.call('models:list', undefined)
      let g = usable(library).find((x) => x.groupId === ref)
      let current: string | null = null
      if (!g) {
        const lens = await resolveLens(ref, ctx).catch(() => null)
        if (!lens) fail('not_found', `no group or lens ${ref}`, 'identifier')
        g = usable(library).find((x) => x.groupId === lens.groupId)!
        current = modelId(lens.groupId, lens.lensId)
      }
      const group = g
      return wire({
        group_id: group.groupId,
        group_name: group.name,
        is_loaded: group.loadedOn.length > 0,
        layers: group.lenses.map((l) => ({
          id: modelId(group.groupId, l.id),
          name: l.name,
          layer: l.layer,
          description: `layer ${l.layer}, ${l.tokens} explanation tokens`,
          is_current: current === modelId(group.groupId, l.id)
        })),
        default_layer: group.lenses[0] ? modelId(group.groupId, group.lenses[0].id) : null
      })
    }
  })
]
