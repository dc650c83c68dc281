/**
 * The endpoints that queue a job (`/models/process`, `/models/generate`,
 * `/models/generate-and-analyze`, `/models/intervene`, `/models/sweep`) have one shape: resolve the lens, submit, then answer 202 at
 * once or the result once the job has finished. One factory makes all three.
 */
import type { z } from 'zod'
import type { ChatMessage } from '@shared/domain/chat'
import { JobIdSchema, type JobState } from '@shared/domain/jobs'
import { toPublicJobResult } from '@shared/public/jobResult'
import type { InvokeInput } from '@shared/ipc/contract'
import { createLogger } from '../platform/logger'
import {
  defineEndpoint,
  type Endpoint,
  type EndpointAnswer,
  type EndpointContext
} from './endpoint'
import { apiFailureOf, fail } from './failures'
import { resolveLens } from './lensRef'
import { toDeviceId } from './names'
import { asksForChat, promptInput, wantsContinuationsOnly } from './options'
import { JobQueuedSchema, JobResultSchema } from './schemas'

/** What every job request body has. */
export interface JobRequestBody {
  model_id: string
  prompt: string | ChatMessage[]
  device_id?: Parameters<typeof toDeviceId>[0]
  wait: boolean
}

type JobSubmit = InvokeInput<'jobs:submit'>

const log = createLogger('api')

/** Answer codes of a job endpoint besides success. */
export const JOB_ERRORS = [400, 401, 404, 409, 413, 422, 503]

export function jobEndpoint<S extends z.ZodType<JobRequestBody>>(spec: {
  path: string
  summary: string
  request: S
  kind: JobSubmit['kind']
  /** What the finished job's answer holds (the OpenAPI description). */
  result: string
  /** The kind's own fields of the submission (options, generation settings) from the body. */
  fields(
    body: z.output<S>,
    raw: Record<string, unknown>
  ): Pick<JobSubmit, 'options' | 'generate' | 'intervention' | 'sweep'>
  /** The options objects (as sent) whose `return_full_text` / `use_chat_format` apply. */
  seedOptions(raw: Record<string, unknown>): unknown[]
  /** Contract field paths (snake_case) that this body spells differently, for error messages. */
  fieldNames?: Record<string, string>
}): Endpoint {
  return defineEndpoint({
    method: 'POST',
    path: spec.path,
    summary: spec.summary,
    request: spec.request,
    responses: [
      { status: 200, schema: JobResultSchema, description: spec.result },
      { status: 202, schema: JobQueuedSchema, description: 'Queued (wait: false)' }
    ],
    errors: JOB_ERRORS,
    async handle({ body, raw }, ctx) {
      const lens = await resolveLens(body.model_id, ctx)
      const seed = spec.seedOptions(raw)
      return submitJob(
        ctx,
        {
          kind: spec.kind,
          groupId: lens.groupId,
          lensId: lens.lensId,
          ...promptInput(body.prompt, seed.some(asksForChat)),
          ...spec.fields(body, raw),
          deviceId: toDeviceId(body.device_id)
        },
        body.wait,
        seed.some(wantsContinuationsOnly),
        spec.fieldNames
      )
    }
  })
}

/** Queues a job; with `wait`, answers with its result once it has finished. */
async function submitJob(
  ctx: EndpointContext,
  submit: JobSubmit,
  wait: boolean,
  continuationsOnly: boolean,
  fieldNames: Record<string, string> = {}
): Promise<EndpointAnswer> {
  const { jobId } = await ctx.call('jobs:submit', submit, { group_id: 'model_id', ...fieldNames })
  const state = await ctx.call('jobs:get', { jobId })
  // A job no device can ever take fails at once: say so now, with the reason.
  if (state.status === 'failed' && state.error) throw jobFailure(state, fieldNames)
  if (!wait) {
    return {
      status: 202,
      body: { jobId, status: state.status, queuePosition: state.queuePosition }
    }
  }
  let answered = false
  ctx.onClientGone(() => {
    if (!answered)
      void ctx
        .call('jobs:cancel', { jobId })
        .catch(log.failed(`cancelling ${jobId} after its caller hung up`, 'debug'))
  })
  const final = await ctx.waitForJob(jobId)
  answered = true
  if (!final) fail('not_found', `job ${jobId} is gone`, 'job_id')
  if (final.status === 'failed') throw jobFailure(final, fieldNames)
  const result = toPublicJobResult(await ctx.call('jobs:result', { jobId }))
  // The seed's return_full_text: false answers the generated parts alone (the replies).
  if (continuationsOnly && result.replies.length)
    return { status: 200, body: { ...result, completions: result.replies } }
  return { status: 200, body: result }
}

function jobFailure(state: JobState, fieldNames: Record<string, string>): Error {
  const error = state.error ?? { code: 'internal' as const, message: 'the job failed' }
  return apiFailureOf(error, fieldNames, { job_id: state.id })
}

/** The `{job_id}` of a path; a malformed id cannot name a job: it is unknown, not bad input. */
export function jobIdParam(params: Record<string, string>): string {
  const jobId = params.job_id ?? ''
  if (!JobIdSchema.safeParse(jobId).success) fail('not_found', `no job ${jobId}`, 'job_id')
  return jobId
}
