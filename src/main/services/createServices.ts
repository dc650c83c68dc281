import * as nodeOs from 'node:os'
import { probeProviders, ortVersion } from '../engine/ort'
import { EventHub, Router, type InvokeHandlers } from '../ipc/router'
import { runCommand, type CommandRunner } from './nvidiaSmi'
import { SystemService, type OsProbe } from './SystemService'
import packageJson from '../../../package.json'

/**
 * The composition root shared by the Electron main process, the headless host and the tests: it
 * builds every main-side service once, wires their events into one hub and their methods into one
 * router. Transports (ipcMain, WebSocket, in-memory) only ever see `router` and `hub`.
 *
 * To add a service: construct it in its own region below, push its client-count listener if it
 * polls, spread its handlers into `handlers`, and dispose it in `dispose`.
 */
export interface ServiceOptions {
  appVersion?: string
  /** Test seams: replace the machine probes (never the engine) with recorded figures. */
  os?: OsProbe
  runCommand?: CommandRunner
  probeProviders?: typeof probeProviders
  pollIntervalMs?: number
}

export interface Services {
  readonly hub: EventHub
  readonly router: Router
  readonly system: SystemService
  /** Starts background work that should begin at launch (provider probe). */
  start(): void
  dispose(): Promise<void>
}

export function createServices(options: ServiceOptions = {}): Services {
  // The hub exists before the services so each can get `emit` injected; services that poll
  // register here to hear when the first client connects and the last one leaves.
  const clientCountListeners: Array<(count: number) => void> = []
  const hub = new EventHub((count) => {
    for (const listener of clientCountListeners) listener(count)
  })

  //#region system
  const system = new SystemService({
    os: options.os ?? nodeOs,
    runCommand: options.runCommand ?? runCommand,
    probeProviders: options.probeProviders ?? probeProviders,
    ortVersion,
    appVersion: options.appVersion ?? packageJson.version,
    emit: (channel, payload) => hub.emit(channel, payload),
    pollIntervalMs: options.pollIntervalMs
  })
  clientCountListeners.push((count) => system.onClientCount(count))
  //#endregion

  const handlers: Partial<InvokeHandlers> = {
    'system:state': () => system.state()
  }
  const router = new Router(handlers)

  return {
    hub,
    router,
    system,
    start(): void {
      system.start()
    },
    async dispose(): Promise<void> {
      system.dispose()
    }
  }
}
