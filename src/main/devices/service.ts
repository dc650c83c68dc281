/**
 * The device manager as a service of the composition root: builds the library and the manager
 * once the hardware is known, and binds the models / jobs / devices channels to them.
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { DeviceSpec } from '@shared/domain/devices'
import type { HardwareState } from '@shared/domain/system'
import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import type { InvokeHandlers } from '../router/router'
import type { CommandRunner } from '../platform/commandRunner'
import { ModelLibrary } from './library'

type EngineModule = typeof import('../engine')
import { DeviceManager, type ManagerEmit } from './manager'
import { defaultPlacementsFile, PlacementStore } from './placementStore'
import { childProcessSpawner, type SpawnWorker } from './transport'
import { createLogger } from '../platform/logger'

const log = createLogger('devices')

export interface DevicesServiceOptions {
  /** Models folder; default `TALKATIVE_MODELS_DIR`, else ~/.talkative-workbench/models. */
  modelsDir?: string
  /** Device list; default `TALKATIVE_DEVICES`, else the CPU plus every GPU. */
  devices?: DeviceSpec[]
  /** How workers start: child_process (default) or Electron's utilityProcess. */
  spawnWorker?: SpawnWorker
  heartbeatMs?: number
  graceMs?: number
  cancelGraceMs?: number
  /** Watch the models folder for changes (default true). */
  watch?: boolean
  /**
   * Saved pins, placements and group settings (restored at start); default
   * `TALKATIVE_PLACEMENTS_FILE`, else ~/.talkative-workbench/placements.json; null: not saved.
   */
  placementsFile?: string | null
}

export interface DevicesServiceDeps {
  hardware: () => Promise<HardwareState>
  emit: ManagerEmit
  runCommand: CommandRunner
  /** The engine's bundle functions (injected so this module stays light to import). */
  engine: () => Promise<
    Pick<EngineModule, 'openBundle' | 'ensureDemoBundle' | 'loadTokenizerConfig' | 'ChatTemplate'>
  >
}

export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TALKATIVE_MODELS_DIR || join(homedir(), '.talkative-workbench', 'models')
}

export class DevicesService {
  readonly #deps: DevicesServiceDeps
  readonly #options: DevicesServiceOptions
  #manager: Promise<DeviceManager> | undefined
  #started: DeviceManager | undefined
  #library: ModelLibrary | undefined
  #disposed = false

  constructor(deps: DevicesServiceDeps, options: DevicesServiceOptions = {}) {
    this.#deps = deps
    this.#options = options
  }

  /** Starts the library and the workers (once); every models/jobs call waits for it. */
  manager(): Promise<DeviceManager> {
    this.#manager ??= (async () => {
      const [hardware, engine] = await Promise.all([this.#deps.hardware(), this.#deps.engine()])
      // The library's change callback exists before the manager it notifies.
      const ref: { manager?: DeviceManager } = {}
      const library = new ModelLibrary({
        folder: this.#options.modelsDir ?? defaultModelsDir(),
        openBundle: engine.openBundle,
        ensureDemoBundle: () => engine.ensureDemoBundle(),
        loadChatTemplate: async (dir) =>
          engine.ChatTemplate.fromSpecials(await engine.loadTokenizerConfig(dir)),
        onChange: () => ref.manager?.libraryChanged()
      })
      this.#library = library
      const placementsFile =
        this.#options.placementsFile === undefined
          ? defaultPlacementsFile()
          : this.#options.placementsFile
      const manager = new DeviceManager({
        hardware,
        library,
        spawn: this.#options.spawnWorker ?? childProcessSpawner(),
        emit: this.#deps.emit,
        devices: this.#options.devices,
        heartbeatMs: this.#options.heartbeatMs,
        graceMs: this.#options.graceMs,
        cancelGraceMs: this.#options.cancelGraceMs,
        runCommand: this.#deps.runCommand,
        placements: placementsFile ? new PlacementStore(placementsFile) : undefined
      })
      ref.manager = manager
      await manager.start()
      if (this.#options.watch !== false) library.watch()
      if (this.#disposed) await manager.dispose()
      this.#started = manager
      return manager
    })()
    return this.#manager
  }

  start(): void {
    // Every models / jobs call awaits the same start and reports its failure to its caller.
    this.manager().catch(log.failed('starting the device manager'))
  }

  /** The snapshot when the manager is up, else undefined (never starts workers by itself). */
  snapshot(): DevicesSnapshot | undefined {
    return this.#started?.snapshot()
  }

  handlers(): Pick<
    InvokeHandlers,
    | 'devices:state'
    | 'devices:clear'
    | 'devices:reset'
    | 'models:list'
    | 'models:load'
    | 'models:unload'
    | 'models:pin'
    | 'models:move'
    | 'models:estimate'
    | 'models:settings'
    | 'jobs:submit'
    | 'jobs:cancel'
    | 'jobs:get'
    | 'jobs:list'
    | 'jobs:result'
  > {
    const m = (): Promise<DeviceManager> => this.manager()
    return {
      'devices:state': async () => (await m()).snapshot(),
      'devices:clear': async (input) => (await m()).clearDevice(input.deviceId, input.force),
      'devices:reset': async () => (await m()).reset(),
      'models:list': async (input) => {
        const manager = await m()
        if (input?.rescan) await manager.rescan()
        return manager.library()
      },
      'models:load': async (input, ctx) => (await m()).load(input, ctx.clientId),
      'models:unload': async (input) => ({ unloaded: await (await m()).unload(input) }),
      'models:pin': async (input) => (await m()).pin(input.groupId, input.deviceId, input.pinned),
      'models:move': async (input, ctx) => (await m()).move(input, ctx.clientId),
      'models:estimate': async (input) => (await m()).estimate(input.groupId, input.deviceId),
      'models:settings': async (input) => (await m()).setGroupSettings(input),
      'jobs:submit': async (input, ctx) => (await m()).submit(input, ctx.clientId),
      'jobs:cancel': async (input) => (await m()).cancel(input.jobId),
      'jobs:get': async (input) => (await m()).getJob(input.jobId),
      'jobs:list': async (input, ctx) =>
        (await m()).listJobs({
          clientId: input?.mine ? ctx.clientId : undefined,
          status: input?.status
        }),
      'jobs:result': async (input) => (await m()).result(input.jobId)
    }
  }

  async dispose(): Promise<void> {
    this.#disposed = true
    this.#library?.close()
    if (this.#manager)
      await (
        await this.#manager.catch(log.failed('starting the device manager', 'debug'))
      )?.dispose()
  }
}
