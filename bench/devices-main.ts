/**
 * The main process's own CPU in the devices bench's replica bursts (bench/devices.ts), apart from
 * the workers: the real device manager, scheduler and executor, with each worker process replaced
 * by an in-process transport that answers at once with what a real worker answered for the same
 * text (captured first from a real run on the demo group, and structured-cloned both ways as the
 * IPC channel would). Nothing is analysed in the timed part; what it measures is the scheduling,
 * the checks of every message and the row assembly of a burst of 40 short jobs: kept to one
 * device, with a replica loaded on the second, and with the replica already there. CPU time of
 * this process per burst (user + system), medians. It does not count the pipe I/O and the
 * serializer of the real channel (≈ 0.2 ms per round trip of a rows message on this machine).
 *
 * `--against DIR`: the same in one process against another checkout's manager (DIR, a `git archive`
 * of the older code with its own src/main; `@shared` resolves to this tree's), the two taking turns
 * burst by burst (old, new, new, old, …), with both devices loaded: the warm burst only, so that a
 * change to the manager's per-job CPU shows in one run on a shared machine.
 *
 *   npx tsx --tsconfig tsconfig.node.json bench/devices-main.ts [--bursts 30] [--json] [--against DIR]
 */
import { loadavg } from 'node:os'
import { rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { AnalysisMetadata, AnalysisRow } from '../src/shared/domain/analysis'
import type { HardwareState } from '../src/shared/domain/system'
import { ModelLibrary } from '../src/main/devices/library'
import { DeviceManager } from '../src/main/devices/manager'
import {
  childProcessSpawner,
  type SpawnWorker,
  type WorkerExit,
  type WorkerTransport
} from '../src/main/devices/transport'
import {
  BURST_TEXTS,
  DEMO_GROUP,
  cpuOnlyHardware,
  demoLibrary,
  median,
  numberArg
} from './devicesSetup'

const OPTIONS = { bestOfK: 16 }
const MEMORY = { rssBytes: 100e6, heapUsedBytes: 1, externalBytes: 1 }

interface Answer {
  rows: AnalysisRow[]
  metadata: AnalysisMetadata
}

/** What a real worker answers for each text (one device, the demo group). */
async function capture(
  hardware: HardwareState,
  library: ModelLibrary
): Promise<Map<string, Answer>> {
  const manager = new DeviceManager({
    hardware,
    library,
    spawn: childProcessSpawner(),
    devices: [{ id: 'cpu:0', threads: 1 }],
    reloadCache: { hostCacheBytes: 0 }
  })
  const answers = new Map<string, Answer>()
  try {
    await manager.start()
    for (const text of BURST_TEXTS) {
      const { jobId } = manager.submit(
        { kind: 'analyze', groupId: DEMO_GROUP, text, options: OPTIONS },
        'capture'
      )
      const s = await manager.waitFor(jobId)
      if (s.status !== 'done') throw new Error(`capture: job ${s.status}: ${s.error?.message}`)
      const r = manager.result(jobId)
      answers.set(text, { rows: r.rows, metadata: r.metadata! })
    }
  } finally {
    await manager.dispose()
  }
  return answers
}

/** A worker that answers every request at once with the captured answer for its text. */
class ReplayingWorker implements WorkerTransport {
  readonly pid = 1
  #listener: (message: unknown) => void = () => undefined
  readonly #exits: ((exit: WorkerExit) => void)[] = []
  readonly #answers: Map<string, Answer>
  readonly #summary: object

  constructor(answers: Map<string, Answer>, summary: object) {
    this.#answers = answers
    this.#summary = summary
  }

  send(message: unknown): void {
    const { seq, request } = structuredClone(message) as {
      seq: number
      request: { op: string; text?: string; taskId?: string }
    }
    const reply = (m: unknown): void => {
      const copy = structuredClone(m)
      setImmediate(() => this.#listener(copy))
    }
    const ok = (value: unknown): void => reply({ type: 'response', seq, ok: true, value })
    const answer = (): Answer => {
      const a = this.#answers.get(request.text ?? '')
      if (!a) throw new Error(`no captured answer for ${request.text}`)
      return a
    }
    switch (request.op) {
      case 'init':
        return ok({ pid: this.pid, memory: MEMORY, engineVersion: 'replay' })
      case 'ping':
        return ok({ memory: MEMORY, groups: [], tasks: [] })
      case 'load':
        return ok({
          summary: this.#summary,
          loadMs: 1,
          rssBeforeBytes: 100e6,
          rssAfterBytes: 110e6
        })
      case 'unload':
        return ok({ rssBeforeBytes: 110e6, rssAfterBytes: 100e6, wasLoaded: true })
      case 'plan': {
        const { rows } = answer()
        return ok({
          positions: rows.map((r) => r.position),
          splittable: true,
          positionsPerBatch: rows.length
        })
      }
      case 'analyze': {
        const { rows, metadata } = answer()
        const n = rows.length
        reply({
          type: 'event',
          event: {
            kind: 'rows',
            taskId: request.taskId,
            rows,
            progress: { batch: 1, totalBatches: 1, rowsDone: n, rowsTotal: n, etaSeconds: 0 }
          }
        })
        return ok({ metadata, rowCount: n })
      }
      case 'shutdown':
        ok({})
        setImmediate(() => this.#exits.forEach((l) => l({ code: 0, signal: null })))
        return
      default:
        return ok({})
    }
  }
  onMessage(listener: (message: unknown) => void): void {
    this.#listener = listener
  }
  onExit(listener: (exit: WorkerExit) => void): void {
    this.#exits.push(listener)
  }
  onOutput(): void {}
  kill(): void {
    this.#exits.forEach((l) => l({ code: null, signal: 'SIGKILL' }))
  }
}

/**
 * The demo library and two virtual CPU devices whose workers replay answers captured once from a
 * real worker (`capture`), so a burst's CPU in this process is the manager's own.
 */
async function replayedManagerOptions(): Promise<{
  options: ConstructorParameters<typeof DeviceManager>[0]
  modelsDir: string
}> {
  const hardware = cpuOnlyHardware(0)
  const { library, modelsDir } = await demoLibrary('bench-devices-main-')
  const answers = await capture(hardware, library)
  const { summary } = library.get(DEMO_GROUP)
  const lite = {
    groupId: DEMO_GROUP,
    contentHash: summary.contentHash,
    estimatedBytes: summary.estimatedBytes,
    weightBytes: summary.weightBytes
  }
  const spawn: SpawnWorker = () => new ReplayingWorker(answers, lite)
  return {
    options: {
      hardware,
      library,
      spawn,
      devices: [
        { id: 'cpu:0', threads: 1 },
        { id: 'cpu:1', threads: 1 }
      ],
      reloadCache: { hostCacheBytes: 0 }
    },
    modelsDir
  }
}

/** `--against DIR`: warm bursts of this tree's manager and DIR's, taking turns; medians per burst. */
async function against(dir: string, bursts: number): Promise<void> {
  const old = (await import(resolve(dir, 'src/main/devices/manager.ts'))) as {
    DeviceManager: typeof DeviceManager
  }
  const { options, modelsDir } = await replayedManagerOptions()
  const managers = { this: new DeviceManager(options), against: new old.DeviceManager(options) }
  const texts = Array.from({ length: 40 }, (_, i) => BURST_TEXTS[i % BURST_TEXTS.length]!)
  const cpu = { this: [] as number[], against: [] as number[] }
  const load0 = loadavg()[0]!
  try {
    for (const m of Object.values(managers)) {
      await m.start()
      await m.load({ groupId: DEMO_GROUP, deviceId: 'cpu:0' }, 'bench')
      await m.load({ groupId: DEMO_GROUP, deviceId: 'cpu:1' }, 'bench')
    }
    const warmUp = 10
    for (let i = 0; i < bursts + warmUp; i++) {
      const order = i % 2 ? (['against', 'this'] as const) : (['this', 'against'] as const)
      for (const k of [...order, ...[...order].reverse()]) {
        const start = process.cpuUsage()
        const ids = texts.map(
          (text) =>
            managers[k].submit(
              { kind: 'analyze', groupId: DEMO_GROUP, text, options: OPTIONS },
              'bench'
            ).jobId
        )
        for (const id of ids) {
          const s = await managers[k].waitFor(id)
          if (s.status !== 'done') throw new Error(`job ${s.status}: ${s.error?.message}`)
        }
        const used = process.cpuUsage(start)
        if (i >= warmUp) cpu[k].push((used.user + used.system) / 1000)
      }
    }
  } finally {
    for (const m of Object.values(managers)) await m.dispose()
    await rm(modelsDir, { recursive: true, force: true })
  }
  console.log(
    JSON.stringify({
      main_cpu_warm_ms: Number(median(cpu.this).toFixed(2)),
      against_main_cpu_warm_ms: Number(median(cpu.against).toFixed(2)),
      bursts: cpu.this.length,
      jobs: texts.length,
      load_avg_1m: [Number(load0.toFixed(2)), Number(loadavg()[0]!.toFixed(2))]
    })
  )
}

async function main(): Promise<void> {
  const againstAt = process.argv.indexOf('--against')
  if (againstAt >= 0) return against(process.argv[againstAt + 1]!, numberArg('--bursts', 30))
  const json = process.argv.includes('--json')
  const bursts = numberArg('--bursts', 30)
  const { options, modelsDir } = await replayedManagerOptions()
  const manager = new DeviceManager(options)
  const texts = Array.from({ length: 40 }, (_, i) => BURST_TEXTS[i % BURST_TEXTS.length]!)
  const burst = async (): Promise<number> => {
    const start = process.cpuUsage()
    const ids = texts.map(
      (text) =>
        manager.submit({ kind: 'analyze', groupId: DEMO_GROUP, text, options: OPTIONS }, 'bench')
          .jobId
    )
    for (const id of ids) {
      const s = await manager.waitFor(id)
      if (s.status !== 'done') throw new Error(`job ${s.status}: ${s.error?.message}`)
    }
    const used = process.cpuUsage(start)
    return (used.user + used.system) / 1000
  }
  const cpu = { one: [] as number[], replica: [] as number[], warm: [] as number[] }
  const load0 = loadavg()[0]!
  try {
    await manager.start()
    await manager.load({ groupId: DEMO_GROUP, deviceId: 'cpu:0' }, 'bench')
    // The first bursts warm the JIT; they are not counted.
    const warmUp = 5
    for (let i = 0; i < bursts + warmUp; i++) {
      if (manager.devices()[1]!.placements.length > 0) await manager.clearDevice('cpu:1', true)
      manager.setGroupSettings({ groupId: DEMO_GROUP, replicas: { min: 0, max: 1 } })
      const one = await burst()
      manager.setGroupSettings({ groupId: DEMO_GROUP, replicas: { min: 0, max: null } })
      const replica = await burst()
      const warm = await burst()
      if (i < warmUp) continue
      cpu.one.push(one)
      cpu.replica.push(replica)
      cpu.warm.push(warm)
    }
  } finally {
    await manager.dispose()
    await rm(modelsDir, { recursive: true, force: true })
  }
  const figures = {
    main_cpu_one_ms: Number(median(cpu.one).toFixed(1)),
    main_cpu_replica_ms: Number(median(cpu.replica).toFixed(1)),
    main_cpu_warm_ms: Number(median(cpu.warm).toFixed(1)),
    bursts,
    jobs: texts.length,
    load_avg_1m: [Number(load0.toFixed(2)), Number(loadavg()[0]!.toFixed(2))]
  }
  if (json) console.log(JSON.stringify(figures))
  else
    console.log(
      `main-process CPU per burst of ${texts.length} jobs (median of ${bursts}): one device ${figures.main_cpu_one_ms} ms, with a replica ${figures.main_cpu_replica_ms} ms, replica already loaded ${figures.main_cpu_warm_ms} ms; load average ${figures.load_avg_1m.join(' → ')}`
    )
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err))
  process.exit(1)
})
