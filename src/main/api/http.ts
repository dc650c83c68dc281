import type { IncomingMessage } from 'node:http'
import { describeZodError, type SerializedError } from '@shared/ipc/errors'
import type { Router } from '../router/router'
import { sendJson } from '../http/replies'
import { BodyTooLarge, firstHeader, readBody, bearerToken, tokenMatches } from '../http/requests'
import type { RouteHandler } from '../http/server'
import type { BadRequestLog } from './badRequests'
import { dispatchForApi, matchEndpoint, type Endpoint, type EndpointContext } from './endpoint'
import { endpoints } from './endpoints'
import { ApiFailure, toApiFailure } from './failures'
import type { JobWaiter } from './jobWaiter'
import { toWire } from './names'
import { buildOpenApi } from './openapi'

export const API_PREFIX = '/api/v2'

/** Per-client fairness: a script may name itself; otherwise all unnamed callers share one lane. */
export function apiClientId(req: IncomingMessage): string {
  const named = firstHeader(req.headers['x-client-id'])
  return named && /^[\w.:-]{1,64}$/.test(named) ? `api:${named}` : 'api:anonymous'
}

export interface ApiRouteOptions {
  /** The path the table's paths are below (default /api/v2) and the table (default /api/v2's). */
  prefix?: string
  table?: readonly Endpoint[]
  router: Router
  waiter: JobWaiter
  tokens: () => readonly string[]
  maxBodyBytes: number
  badRequests: BadRequestLog
  version: string
  log: (line: string) => void
}

/** The HTTP side of /api/v2: auth, limits, parsing, then the endpoint table. */
export function createApiRoute(options: ApiRouteOptions): RouteHandler {
  const { router, waiter, badRequests } = options
  const prefix = options.prefix ?? API_PREFIX
  const table = options.table ?? endpoints
  let openApi: unknown

  return async (req, res, url) => {
    const rest = url.pathname.slice(prefix.length)
    if (rest !== '' && !rest.startsWith('/')) return false
    const reply = (status: number, body: unknown, headers?: Record<string, string>): void => {
      if (status >= 400 && status < 500) badRequests.record(status)
      if (res.headersSent || res.destroyed) return
      sendJson(res, status, body, headers)
    }
    const replyError = (
      status: number,
      error: SerializedError,
      extra: Record<string, unknown> = {},
      headers?: Record<string, string>
    ): void => reply(status, { error, ...extra }, headers)

    if (!tokenMatches(bearerToken(req), options.tokens())) {
      // Drain what the client sent so the connection can answer cleanly.
      req.resume()
      replyError(
        401,
        {
          code: 'forbidden',
          message: 'missing or wrong token: send Authorization: Bearer <token>'
        },
        {},
        { 'www-authenticate': 'Bearer realm="talkative-workbench"' }
      )
      return true
    }
    if (prefix === API_PREFIX && (rest === '/openapi.json' || rest === '/openapi.json/')) {
      openApi ??= buildOpenApi(endpoints, options.version)
      reply(200, openApi)
      return true
    }
    if (prefix === API_PREFIX && rest === '/ws') {
      replyError(
        426,
        { code: 'invalid_input', message: 'this path speaks WebSocket only' },
        {},
        { upgrade: 'websocket' }
      )
      return true
    }
    const match = matchEndpoint(table, req.method ?? 'GET', rest)
    if (!match) {
      req.resume()
      replyError(404, { code: 'not_found', message: `no endpoint ${req.method} ${url.pathname}` })
      return true
    }
    if ('allowed' in match) {
      req.resume()
      replyError(
        405,
        {
          code: 'invalid_input',
          message: `${req.method} is not allowed here (use ${match.allowed.join(', ')})`
        },
        {},
        { allow: match.allowed.join(', ') }
      )
      return true
    }
    const { endpoint, params } = match

    let raw: Record<string, unknown> = {}
    let json: unknown = undefined
    if (endpoint.request) {
      let bytes: Buffer
      try {
        bytes = await readBody(req, options.maxBodyBytes)
      } catch (err) {
        if (err instanceof BodyTooLarge) {
          replyError(
            413,
            {
              code: 'invalid_input',
              message: `body over ${options.maxBodyBytes} bytes`,
              field: 'body'
            },
            {},
            { connection: 'close' }
          )
          req.destroy()
          return true
        }
        throw err
      }
      const type = firstHeader(req.headers['content-type'])
      if (type && !/^application\/json\b/i.test(type)) {
        replyError(415, {
          code: 'invalid_input',
          message: `send application/json, not ${type}`,
          field: 'body'
        })
        return true
      }
      try {
        json = bytes.length === 0 ? {} : JSON.parse(bytes.toString('utf8'))
      } catch (err) {
        replyError(400, {
          code: 'invalid_input',
          message: `body is not JSON: ${(err as Error).message}`,
          field: 'body'
        })
        return true
      }
      if (json === null || typeof json !== 'object' || Array.isArray(json)) {
        replyError(400, {
          code: 'invalid_input',
          message: 'body must be a JSON object',
          field: 'body'
        })
        return true
      }
      raw = { ...json }
    } else {
      req.resume()
    }
    const accepted = endpoint.accept(json)
    if (!accepted.ok) {
      const { message, field } = describeZodError(accepted.error)
      replyError(
        400,
        field ? { code: 'invalid_input', message, field } : { code: 'invalid_input', message }
      )
      return true
    }

    const clientId = apiClientId(req)
    const ctx: EndpointContext = {
      clientId,
      call: (channel, input, fieldOverrides) =>
        dispatchForApi(router, clientId, channel, input, fieldOverrides),
      waitForJob: (jobId) => waiter.wait(jobId, clientId),
      onClientGone(onClose) {
        res.on('close', () => {
          if (!res.writableFinished) onClose()
        })
      }
    }
    try {
      const answer = await accepted.run({ raw, params, query: url.searchParams }, ctx)
      reply(answer.status, answer.wire ? answer.body : toWire(answer.body))
    } catch (err) {
      // A service's typed error (e.g. `unavailable` while the server shuts down) keeps its status;
      // anything else is not the caller's fault: say so plainly, and leave a trace for the operator.
      const failure = toApiFailure(err)
      if (!(err instanceof ApiFailure) && failure.error.code === 'internal')
        options.log(`api/v2: ${req.method} ${url.pathname} failed: ${failure.error.message}`)
      replyError(failure.status, failure.error, failure.extra)
    }
    return true
  }
}
