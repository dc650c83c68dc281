/**
 * What an /api/v2 endpoint is: its method, path and schemas (they also make the OpenAPI
 * document), and a handler that receives the body as its request schema's output type. The HTTP
 * route and the WebSocket both check a body with `accept` first, so a handler never sees an
 * unchecked body and never casts one.
 */
import type { z } from 'zod'
import type { JobState } from '@shared/domain/jobs'
import type { InvokeChannel, InvokeInput, InvokeOutput } from '@shared/ipc/contract'
import type { Router } from '../router/router'
import { apiFailureOf } from './failures'

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
  /**
   * The body already has its wire names (the predecessor's shapes, whose object keys may be ids
   * such as a group id or `cuda:0`): sent as it is, not renamed to snake_case.
   */
  wire?: true
}

export interface EndpointInput<Body> {
  /** The body as the request schema made it (defaults applied). */
  body: Body
  /** The body as sent (the endpoints compare seed aliases against what was given). */
  raw: Record<string, unknown>
  /** Path parameters, e.g. `job_id` of `/jobs/{job_id}`. */
  params: Record<string, string>
  /** The query string (e.g. `force=true` of `DELETE /devices/{device_id}/clear`). */
  query?: URLSearchParams
}

interface EndpointMeta {
  method: 'GET' | 'POST' | 'DELETE'
  /** OpenAPI path template below /api/v2, e.g. `/jobs/{job_id}`. */
  path: string
  summary: string
  /** Success answers; every error answer has the shared error schema. */
  responses: Array<{ status: number; schema: z.ZodType; description: string }>
  errors: number[]
}

interface EndpointSpec<Body> extends EndpointMeta {
  handle(input: EndpointInput<Body>, ctx: EndpointContext): Promise<EndpointAnswer>
}

export type AcceptedBody =
  | {
      ok: true
      run(
        input: Omit<EndpointInput<unknown>, 'body'>,
        ctx: EndpointContext
      ): Promise<EndpointAnswer>
    }
  | { ok: false; error: z.ZodError }

export interface Endpoint extends EndpointMeta {
  request?: z.ZodType
  /** Checks a body against the request schema; on success, the handler bound to it. */
  accept(body: unknown): AcceptedBody
}

/** An endpoint with a JSON body checked by `request`. */
export function defineEndpoint<S extends z.ZodType>(
  spec: EndpointSpec<z.output<S>> & { request: S }
): Endpoint
/** An endpoint without a body. */
export function defineEndpoint(spec: EndpointSpec<undefined> & { request?: undefined }): Endpoint
export function defineEndpoint(spec: EndpointSpec<unknown> & { request?: z.ZodType }): Endpoint {
  const { handle, request, ...meta } = spec
  return {
    ...meta,
    ...(request ? { request } : {}),
    accept(body) {
      if (!request)
        return { ok: true, run: (input, ctx) => handle({ ...input, body: undefined }, ctx) }
      const parsed = request.safeParse(body)
      if (!parsed.success) return { ok: false, error: parsed.error }
      return { ok: true, run: (input, ctx) => handle({ ...input, body: parsed.data }, ctx) }
    }
  }
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
  throw apiFailureOf(result.error, fieldOverrides)
}

/** Matches a path below /api/v2 against a table: the endpoint, or the methods the path allows. */
export function matchEndpoint(
  table: readonly Endpoint[],
  method: string,
  path: string
): { endpoint: Endpoint; params: Record<string, string> } | { allowed: string[] } | null {
  const allowed: string[] = []
  for (const endpoint of table) {
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
      params[name] = safeDecode(m[i + 1] ?? '')
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
