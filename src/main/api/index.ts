/**
 * The scripting API: /api/v2 over HTTP and /api/v2/ws, the predecessor's /api/slim, and the
 * service routes (/health, /metrics, /reset, /api/gpu_stats), on the headless host's server,
 * driving the same Router and EventHub as the app's windows. See docs/api.md.
 */
import type { HttpHost } from '../http/server'
import type { Services } from '../services/createServices'
import { BadRequestLog } from './badRequests'
import { DEFAULT_MAX_BODY_BYTES, type ApiOptions } from './config'
import { API_PREFIX, createApiRoute } from './http'
import { JobWaiter } from './jobWaiter'
import { attachApiWebSocket } from './ws'
import { CompatAccess } from './compatAccess'
import { dispatchForApi } from './endpoint'
import { WorkbenchMetrics } from './metrics'
import { createServiceRoute } from './serviceRoutes'
import { attachSeedWebSocket } from './seedSocket'
import { SLIM_PREFIX, slimEndpoints } from './slim'

export { loadApiConfig, type ApiOptions } from './config'
export { API_PREFIX } from './http'
export { API_WS_PATH } from './ws'
export { parseAllowedOrigin } from './compatAccess'

export interface AttachedApi {
  readonly badRequests: BadRequestLog
  close(): Promise<void>
}

/** Registers the API's route and WebSocket on `host` (before the static files route). */
export function attachApi(
  host: HttpHost,
  services: Pick<Services, 'router' | 'hub'>,
  options: ApiOptions & { version: string }
): AttachedApi {
  const log = options.log ?? ((line: string) => console.warn(line))
  const tokens = (): readonly string[] => [host.token, ...(options.extraTokens ?? [])]
  const badRequests = new BadRequestLog({ intervalMs: options.badRequestLogIntervalMs, log })
  const waiter = new JobWaiter(services.hub, services.router)
  const { router } = services
  const routeOptions = {
    router,
    waiter,
    tokens,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    badRequests,
    version: options.version,
    log
  }
  host.addRoute(API_PREFIX, createApiRoute(routeOptions))
  host.addRoute(
    SLIM_PREFIX,
    createApiRoute({ ...routeOptions, prefix: SLIM_PREFIX, table: slimEndpoints })
  )
  const metrics = new WorkbenchMetrics(services.hub, {
    snapshot: () => dispatchForApi(router, 'api:metrics', 'devices:state', undefined),
    hardware: async () => {
      const {
        devices: _d,
        library: _l,
        queue: _q,
        ...hardware
      } = await dispatchForApi(router, 'api:metrics', 'system:state', undefined)
      return hardware
    }
  })
  const compat = options.compatOrigins
    ? new CompatAccess(options.compatOrigins, (req) => host.isAllowedOrigin(req))
    : null
  if (compat) {
    log(
      `COMPAT MODE: the predecessor's routes answer WITHOUT a token to ${
        compat.origins.size ? [...compat.origins].join(', ') : 'no browser origin'
      } and to local scripts; anyone on this machine can use them`
    )
  }
  // Registered before the static files, which answer every other path.
  host.addRoute(
    '/',
    createServiceRoute({
      router,
      tokens,
      version: options.version,
      startedAt: Date.now(),
      metrics,
      metricsPublic: options.metricsPublic ?? false,
      compat,
      badRequests
    })
  )
  const ws = attachApiWebSocket({
    host,
    router: services.router,
    hub: services.hub,
    tokens,
    badRequests
  })
  // Compat mode: the predecessor's own WebSocket at /ws, for its browser frontend.
  const seedWs = compat
    ? attachSeedWebSocket({ host, router, hub: services.hub, tokens, compat, badRequests })
    : null
  return {
    badRequests,
    async close() {
      await seedWs?.close()
      await ws.close()
      metrics.close()
      waiter.close()
      badRequests.close()
    }
  }
}
