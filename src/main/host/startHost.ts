import { resolve } from 'node:path'
import { attachApi, type ApiOptions } from '../api'
import { createServices, type ServiceOptions, type Services } from '../services/createServices'
import { HttpHost } from '../http/server'
import { createStaticRoute } from './staticFiles'
import { attachWebSocketIpc } from './wsIpc'
import packageJson from '../../../package.json'

export interface HostOptions {
  host?: string
  port?: number
  token?: string
  /** The built renderer; defaults to out/renderer next to this bundle. */
  rendererDir?: string
  services?: ServiceOptions
  /** Scripting API (/api/v2): extra tokens from a config file, limits, log. */
  api?: ApiOptions
}

export interface RunningHost {
  readonly http: HttpHost
  readonly services: Services
  readonly url: string
  stop(): Promise<void>
}

/**
 * The headless host: the same services as the Electron app, behind an HTTP server that serves the
 * built renderer and a WebSocket that speaks the contract. Used by `npm start` where Electron is
 * missing, `npm run serve`, the e2e fixture and in-process tests.
 */
export async function startHost(options: HostOptions = {}): Promise<RunningHost> {
  const services = createServices(options.services)
  const http = new HttpHost({ host: options.host, port: options.port, token: options.token })
  const ipc = attachWebSocketIpc({ host: http, router: services.router, hub: services.hub })
  // Scripting API: registered before the static route, which answers every other path.
  const api = attachApi(http, services, { ...options.api, version: packageJson.version })
  http.addRoute('/', createStaticRoute(options.rendererDir ?? resolve(__dirname, '../renderer')))
  services.start()
  try {
    await http.listen()
  } catch (err) {
    await services.dispose()
    throw err
  }
  let stopped: Promise<void> | undefined
  return {
    http,
    services,
    url: http.url,
    stop() {
      stopped ??= (async () => {
        await ipc.close()
        await api.close()
        await http.close()
        await services.dispose()
      })()
      return stopped
    }
  }
}
