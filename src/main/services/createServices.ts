import * as nodeOs from 'node:os'
import { probeProviders, ortVersion } from '../engine'
import { Router, type InvokeHandlers } from '../router/router'
import { EventHub } from '../router/eventHub'
import { runCommand, type CommandRunner } from '../platform/commandRunner'
import { SystemService, type OsProbe } from '../system/systemService'
import { DevicesService, defaultModelsDir, type DevicesServiceOptions } from '../devices/service'
import { ImportService } from '../import/service'
import { SessionsService, defaultSessionsDir } from '../sessions/service'
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
  /** Device manager: models folder, device list, worker spawner (utilityProcess in Electron). */
  devices?: DevicesServiceOptions
  /** Offline sessions folder; default `TALKATIVE_SESSIONS_DIR`, else under the user's data dir. */
  sessionsDir?: string
}

export interface Services {
  readonly hub: EventHub
  readonly router: Router
  readonly system: SystemService
  readonly devices: DevicesService
  readonly sessions: SessionsService
  /** Imports: checkpoints → groups in the models folder, as jobs (imports:* channels). */
  readonly imports: ImportService
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

  //#region devices (the device manager): models, jobs, devices channels
  const devices = new DevicesService(
    {
      hardware: () => system.state(),
      // The manager's event map is a subset of the contract's; the hub validates each payload.
      emit: (channel, payload) => hub.emit(channel, payload as never),
      runCommand: options.runCommand ?? runCommand,
      engine: () => import('../engine')
    },
    options.devices
  )
  //#endregion

  //#region imports: checkpoints into groups of the models folder; the library rescans after each
  const modelsDir = options.devices?.modelsDir ?? defaultModelsDir()
  const imports = new ImportService({
    modelsDir,
    emit: (job) => hub.emit('imports:changed', job),
    imported: async () => (await devices.manager()).rescan()
  })
  //#endregion

  //#region sessions: every analysis saved as it streams, history, export, import, re-run
  const sessions = new SessionsService({
    folder: options.sessionsDir ?? defaultSessionsDir(),
    appVersion: options.appVersion ?? packageJson.version,
    jobs: {
      submit: async (input, clientId) => (await devices.manager()).submit(input, clientId),
      getJob: async (jobId) => (await devices.manager()).getJob(jobId),
      result: async (jobId) => (await devices.manager()).result(jobId),
      library: async () => (await devices.manager()).library()
    },
    emit: (channel, payload) => hub.emit(channel, payload),
    subscribe: (listener) => hub.subscribe(listener)
  })
  //#endregion

  const handlers: Partial<InvokeHandlers> = {
    // The hardware, plus the device manager's snapshot once it is up (never starts it).
    'system:state': async () => ({ ...(await system.state()), ...devices.snapshot() }),
    ...devices.handlers(),
    ...imports.handlers(),
    ...sessions.handlers()
  }
  const router = new Router(handlers)

  return {
    hub,
    router,
    system,
    devices,
    sessions,
    imports,
    start(): void {
      system.start()
      devices.start()
    },
    async dispose(): Promise<void> {
      system.dispose()
      await imports.dispose()
      await sessions.dispose()
      await devices.dispose()
    }
  }
}
