/**
 * The scripting API: /api/v2 over HTTP and /api/v2/ws, on the headless host's server, driving the
 * same Router and EventHub as the app's windows. See docs/api.md.
 */
import type { HttpHost } from '../http/server'
import type { Services } from '../services/createServices'
import { BadRequestLog } from './badRequests'
import { DEFAULT_MAX_BODY_BYTES, type ApiOptions } from './config'
import { API_PREFIX, createApiRoute } from './http'
import { JobWaiter } from './jobWaiter'
import { attachApiWebSocket } from './ws'

export { loadApiConfig, type ApiOptions } from './config'
export { API_PREFIX } from './http'
export { API_WS_PATH } from './ws'

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
  host.addRoute(
    API_PREFIX,
    createApiRoute({
      router: services.router,
      waiter,
      tokens,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      badRequests,
      version: options.version,
      log
    })
  )
  const ws = attachApiWebSocket({
    host,
    router: services.router,
    hub: services.hub,
    tokens,
    badRequests
  })
  return {
    badRequests,
    async close() {
      await ws.close()
      waiter.close()
      badRequests.close()
    }
  }
}
