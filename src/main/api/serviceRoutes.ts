/**
 * The predecessor's un-prefixed routes: `GET /health` (no token, nothing beyond ok, version and
 * uptime), `GET /metrics` (Prometheus text; token unless the API config opens it), `POST /reset`
 * and `GET /api/gpu_stats` (token, or an allowed origin in compat mode). Anything else falls
 * through to the next route (the renderer's static files).
 */
import type { Router } from '../router/router'
import { sendJson } from '../http/replies'
import { bearerToken, tokenMatches } from '../http/requests'
import type { RouteHandler } from '../http/server'
import type { BadRequestLog } from './badRequests'
import { dispatchForApi } from './endpoint'
import { toApiFailure } from './failures'
import type { WorkbenchMetrics } from './metrics'
import type { CompatAccess } from './compatAccess'
import { seedGpuStats } from './seedViews'

export interface ServiceRouteOptions {
  router: Router
  tokens: () => readonly string[]
  version: string
  startedAt: number
  now?: () => number
  metrics: WorkbenchMetrics
  /** `/metrics` without the token (for a scraper on a trusted network). */
  metricsPublic: boolean
  /** Compat mode: which tokenless callers the predecessor's routes accept (null: none). */
  compat: CompatAccess | null
  badRequests: BadRequestLog
}

const PATHS = new Set(['/health', '/metrics', '/reset', '/api/gpu_stats'])

export function createServiceRoute(o: ServiceRouteOptions): RouteHandler {
  const now = o.now ?? Date.now
  return async (req, res, url) => {
    const path = url.pathname.replace(/\/$/, '') || '/'
    if (!PATHS.has(path)) return false
    const cors = o.compat?.corsHeaders(req) ?? {}
    const refuse = (status: number, code: 'forbidden' | 'invalid_input', message: string): true => {
      o.badRequests.record(status)
      req.resume()
      sendJson(res, status, { error: { code, message } }, cors)
      return true
    }
    if (req.method === 'OPTIONS' && o.compat && path !== '/metrics') {
      // A browser's preflight (POST /reset with a JSON body): answered for allowed origins only.
      if (!o.compat.allows(req)) return refuse(403, 'forbidden', 'origin not allowed')
      res.writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'content-type, authorization',
        'access-control-max-age': '600'
      })
      res.end()
      return true
    }
    const method = path === '/reset' ? 'POST' : 'GET'
    if (req.method !== method) {
      req.resume()
      o.badRequests.record(405)
      sendJson(
        res,
        405,
        {
          error: {
            code: 'invalid_input',
            message: `${req.method} is not allowed here (use ${method})`
          }
        },
        { allow: method, ...cors }
      )
      return true
    }
    if (path === '/health') {
      req.resume()
      sendJson(res, 200, {
        status: 'ok',
        version: o.version,
        uptime_seconds: Math.round((now() - o.startedAt) / 1000)
      })
      return true
    }
    const hasToken = tokenMatches(
      bearerToken(req) ?? url.searchParams.get('token') ?? undefined,
      o.tokens()
    )
    const open =
      hasToken ||
      (path === '/metrics' ? o.metricsPublic : Boolean(o.compat && o.compat.allows(req)))
    if (!open) {
      if (o.compat?.isForeignOrigin(req))
        return refuse(403, 'forbidden', 'this origin is not in --allow-origin')
      res.setHeader('www-authenticate', 'Bearer realm="talkative-workbench"')
      return refuse(401, 'forbidden', 'missing or wrong token: send Authorization: Bearer <token>')
    }
    req.resume()
    try {
      if (path === '/metrics') {
        const { contentType, text } = await o.metrics.render()
        res.writeHead(200, {
          'content-type': contentType,
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff'
        })
        res.end(text)
      } else if (path === '/reset') {
        const r = await dispatchForApi(o.router, 'api:reset', 'devices:reset', undefined)
        const cleared = r.cleared.flatMap((c) =>
          c.unloaded.map((u) => `${u.groupId} from ${c.deviceId}`)
        )
        sendJson(
          res,
          200,
          {
            status: 'reset',
            message: `Cancelled ${r.cancelled} job${r.cancelled === 1 ? '' : 's'}; cleared ${cleared.length ? cleared.join(', ') : 'nothing'}; preload groups loaded again`,
            cancelled: r.cancelled,
            cleared: r.cleared.map((c) => ({
              device: c.deviceId,
              unloaded: c.unloaded.map((u) => u.groupId)
            }))
          },
          cors
        )
      } else {
        await dispatchForApi(o.router, 'api:gpu-stats', 'devices:state', undefined)
        const state = await dispatchForApi(o.router, 'api:gpu-stats', 'system:state', undefined)
        const { devices, library: _l, queue: _q, ...hardware } = state
        sendJson(res, 200, seedGpuStats(hardware, devices ?? []), cors)
      }
    } catch (err) {
      const failure = toApiFailure(err)
      sendJson(res, failure.status, { error: failure.error }, cors)
    }
    return true
  }
}
