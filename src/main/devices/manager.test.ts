/**
 * The manager's lifecycle edges with scripted workers: a worker that dies while starting, shutting
 * down under running jobs, cancelling during a load. Real worker processes are covered by
 * test/integration/devices.test.ts; these races need a worker whose timing the test controls. Time
 * is a manual clock: the manager, its worker clients and the scripted workers set every timer on
 * it, and the test moves it (no sleeps).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { HardwareState } from '@shared/domain/system'
import type { DeviceActivity, DevicesSnapshot } from '@shared/ipc/channels/devices'
import { ManualClock } from '../../../test/helpers/manualClock'
import { setLogSink, type LogEntry } from '../platform/logger'
import type { BundleSummary } from '../engine'
import type { WorkerOp } from '../worker/protocol'
import { ModelLibrary } from './library'
import { DeviceManager, type DeviceManagerOptions } from './manager'
import type { SpawnWorker, WorkerExit, WorkerTransport } from './transport'

/** What a scripted worker does with one request: answer (after a delay), never answer, or die. */
type Behaviour = { value: unknown; afterMs?: number } | 'hang' | 'crash'
type Script = (op: WorkerOp, worker: FakeWorker) => Behaviour

const MEMORY = { rssBytes: 1_000_000, heapUsedBytes: 1, externalBytes: 1 }
const ANALYSIS_METADATA = {
  groupId: 'g',
  lensId: 'l',
  layer: 0,
  bundleHash: 'h',
  engineVersion: 'test',
  executionProvider: 'cpu',
  options: {},
  seed: 0,
  numTokens: 3,
  analysedPositions: 0,
  timings: {}
}
const SUMMARY = { groupId: 'g', contentHash: 'h', estimatedBytes: 1000, weightBytes: 1000 }

function standardAnswer(op: WorkerOp, worker: FakeWorker): unknown {
  switch (op) {
    case 'init':
      return { pid: worker.pid, memory: MEMORY, engineVersion: 'test' }
    case 'ping':
      return { memory: MEMORY, groups: [], tasks: [] }
    case 'load':
      return { summary: SUMMARY, loadMs: 1, rssBeforeBytes: 1, rssAfterBytes: 2 }
    case 'unload':
      return { rssBeforeBytes: 2, rssAfterBytes: 1, wasLoaded: true }
    case 'plan':
      return { positions: [0, 1, 2, 3], splittable: true, positionsPerBatch: 4 }
    case 'cancel':
      return { found: false }
    default:
      return {}
  }
}

class FakeWorker implements WorkerTransport {
  readonly pid: number
  alive = true
  readonly received: WorkerOp[] = []
  /**
   * Requests left unanswered, oldest first, so a test can answer them when it chooses (a device
   * may hold one analysis ahead of the running one).
   */
  readonly held = new Map<WorkerOp, { seq: number; taskId?: string }[]>()
  /** Task ids of the cancels received. */
  readonly cancels: string[] = []
  /** Each load request's `analysisRolesFirst`, in order. */
  readonly loadsAnalysisRolesFirst: (boolean | undefined)[] = []
  #onMessage: (m: unknown) => void = () => undefined
  readonly #onExit: ((e: WorkerExit) => void)[] = []
  readonly #script: Script

  readonly #clock: ManualClock

  constructor(pid: number, script: Script, clock: ManualClock) {
    this.pid = pid
    this.#script = script
    this.#clock = clock
  }

  send(message: unknown): void {
    if (!this.alive) throw new Error('channel closed')
    const { seq, request } = message as {
      seq: number
      request: { op: WorkerOp; taskId?: string; analysisRolesFirst?: boolean }
    }
    const op = request.op
    this.received.push(op)
    if (op === 'cancel' && request.taskId) this.cancels.push(request.taskId)
    if (op === 'load') this.loadsAnalysisRolesFirst.push(request.analysisRolesFirst)
    if (op === 'shutdown') {
      this.#answer(seq, {}, 1)
      this.#clock.after(2, () => this.exit(0))
      return
    }
    const behaviour = this.#script(op, this)
    if (behaviour === 'crash') this.exit(1)
    else if (behaviour === 'hang')
      this.held.set(op, [...(this.held.get(op) ?? []), { seq, taskId: request.taskId }])
    else this.#answer(seq, behaviour.value, behaviour.afterMs ?? 1)
  }

  /** Answers a held request now, with the standard answer. */
  release(op: WorkerOp): void {
    this.#answer(this.#takeHeld(op).seq, standardAnswer(op, this), 0)
  }

  /**
   * Answers the oldest held analysis as a worker does: completed with no rows, or cancelled when
   * a cancel for its task came first.
   */
  finishAnalysis(): void {
    const { seq, taskId } = this.#takeHeld('analyze')
    const status = taskId && this.cancels.includes(taskId) ? 'cancelled' : 'completed'
    this.#answer(seq, { metadata: { ...ANALYSIS_METADATA, status }, rowCount: 0 }, 0)
  }

  /** Task ids of the held requests of `op`, oldest first. */
  heldTasks(op: WorkerOp): (string | undefined)[] {
    return (this.held.get(op) ?? []).map((h) => h.taskId)
  }

  #takeHeld(op: WorkerOp): { seq: number; taskId?: string } {
    const queue = this.held.get(op)
    const first = queue?.shift()
    if (!first) throw new Error(`no held ${op}`)
    if (queue!.length === 0) this.held.delete(op)
    return first
  }

  #answer(seq: number, value: unknown, afterMs: number): void {
    this.#clock.after(afterMs, () => {
      if (this.alive) this.#onMessage({ type: 'response', seq, ok: true, value })
    })
  }

  exit(code: number | null, signal: string | null = null): void {
    if (!this.alive) return
    this.alive = false
    this.#clock.after(0, () => this.#onExit.forEach((l) => l({ code, signal })))
  }

  onMessage(listener: (m: unknown) => void): void {
    this.#onMessage = listener
  }

  onExit(listener: (e: WorkerExit) => void): void {
    this.#onExit.push(listener)
  }

  onOutput(): void {}

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.exit(null, signal)
  }
}

class FakeFleet {
  readonly workers: FakeWorker[] = []
  script: Script = (op, w) => ({ value: standardAnswer(op, w) })
  readonly spawn: SpawnWorker = () => {
    const worker = new FakeWorker(
      1000 + this.workers.length + 1,
      (op, w) => this.script(op, w),
      clock
    )
    this.workers.push(worker)
    return worker
  }

  alive(): number[] {
    return this.workers.filter((w) => w.alive).map((w) => w.pid)
  }
}

const hardware: HardwareState = {
  cpu: {
    id: 'cpu',
    kind: 'cpu',
    name: 'test cpu',
    cores: 2,
    memoryTotalBytes: 8e9,
    memoryFreeBytes: 4e9,
    utilization: 0
  },
  gpus: [],
  onnxRuntimeVersion: '',
  providers: [{ provider: 'cpu', available: true }],
  appVersion: '',
  takenAt: 0
} as unknown as HardwareState

const folders: string[] = []
let manager: DeviceManager | undefined
let clock = new ManualClock()

beforeEach(() => {
  clock = new ManualClock()
})

afterEach(async () => {
  if (manager) await clock.settle(manager.dispose())
  manager = undefined
  for (const f of folders.splice(0)) rmSync(f, { recursive: true, force: true })
})

function managerWith(
  fleet: FakeFleet,
  options: { cancelGraceMs?: number; emit?: DeviceManagerOptions['emit'] } = {}
): DeviceManager {
  const folder = mkdtempSync(join(tmpdir(), 'talkative-manager-'))
  folders.push(folder)
  mkdirSync(join(folder, 'g'))
  const summary: BundleSummary = {
    groupId: 'g',
    name: 'g',
    dir: join(folder, 'g'),
    contentHash: 'h',
    baseModel: { id: 'b', hiddenSize: 4, layers: 1, vocabSize: 4, maxPositions: 16 },
    lenses: [{ id: 'l', name: 'l', layer: 0, tokens: 2, origModel: 'b' }],
    weightBytes: 1000,
    estimatedBytes: 1000,
    hasChatTemplate: false
  }
  const library = new ModelLibrary({ folder, openBundle: async () => summary })
  manager = new DeviceManager({
    hardware,
    library,
    spawn: fleet.spawn,
    devices: [{ id: 'cpu:0', threads: 1 }],
    heartbeatMs: 20,
    graceMs: 1000,
    cancelGraceMs: options.cancelGraceMs ?? 100,
    reloadCache: { hostCacheBytes: 0 },
    clock,
    emit: options.emit
  })
  return manager
}

/** Lets `ms` of the manager's time pass. */
const elapse = (ms: number): Promise<void> => clock.advance(ms)

/** Runs the manager's time until `check` holds (within 2 s of it). */
const until = (what: string, check: () => boolean): Promise<void> => clock.until(what, check, 2000)

/** Runs the manager's time until `p` settles. */
const settled = <T>(p: Promise<T>): Promise<T> => clock.settle(p)

/** Settles within `ms` of the manager's time, or says it did not. */
const settles = (p: Promise<unknown>, ms = 1000): Promise<'settled' | 'pending'> =>
  clock.settles(p, ms)

describe('a worker that dies while starting', () => {
  it('is replaced by exactly one worker, counted once, and none survives dispose', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) =>
      op === 'init' && w.pid === 1001 ? 'crash' : { value: standardAnswer(op, w) }
    const m = managerWith(fleet)
    await settled(m.start())
    await elapse(100)
    const [device] = m.devices()
    expect(device!.status).toBe('ready')
    expect(fleet.workers).toHaveLength(2)
    expect(fleet.alive()).toEqual([1002])
    expect(device!.workerPid).toBe(1002)
    expect(device!.restarts).toBe(1)
    await settled(m.dispose())
    await elapse(20)
    expect(fleet.alive()).toEqual([])
  })

  it('gives up after the allowed failures in a row with every process gone', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'init' ? 'crash' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet)
    await settled(m.start())
    await elapse(50)
    const [device] = m.devices()
    expect(device!.status).toBe('error')
    expect(device!.statusDetail).toMatch(/cannot start/)
    expect(fleet.workers).toHaveLength(3)
    expect(fleet.alive()).toEqual([])
  })

  it('a worker still starting when the manager is disposed does not outlive it', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'init' ? 'hang' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet)
    const started = m.start()
    await until('the first worker', () => fleet.workers.length === 1)
    await settled(m.dispose())
    fleet.workers[0]!.release('init')
    await settles(started)
    await elapse(50)
    expect(fleet.workers).toHaveLength(1)
    expect(fleet.alive()).toEqual([])
  })
})

describe('dispose with jobs in flight', () => {
  it('settles running and queued jobs as cancelled; waiters and load({wait}) return', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'analyze' ? 'hang' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet)
    await settled(m.start())
    const running = m.submit({ kind: 'analyze', groupId: 'g', text: 'abc' }, 'a').jobId
    await until('the analysis to run', () => m.getJob(running).status === 'running')
    const queued = m.submit({ kind: 'analyze', groupId: 'g', text: 'def' }, 'b').jobId
    const waiting = m.waitFor(running)
    const loadWait = m.load({ groupId: 'g', deviceId: 'cpu:0', wait: true }, 'c').then(
      () => 'loaded',
      (err: Error) => err.message
    )
    await settled(m.dispose())
    expect(await settles(waiting)).toBe('settled')
    expect(await settles(loadWait)).toBe('settled')
    expect(await loadWait).toMatch(/shutting down/)
    for (const id of [running, queued]) {
      const s = m.getJob(id)
      expect(s.status).toBe('cancelled')
      expect(s.error?.message).toMatch(/shutting down/)
    }
    expect(fleet.alive()).toEqual([])
  })

  it('refuses new jobs once disposed', async () => {
    const fleet = new FakeFleet()
    const m = managerWith(fleet)
    await settled(m.start())
    await settled(m.dispose())
    expect(() => m.submit({ kind: 'analyze', groupId: 'g', text: 'abc' }, 'a')).toThrow(
      /shutting down/
    )
  })
})

describe('queue positions', () => {
  it('move up when a queued job starts, not only when one is added or finishes', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'analyze' ? 'hang' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet)
    await settled(m.start())
    const first = m.submit({ kind: 'analyze', groupId: 'g', text: 'abc' }, 'a').jobId
    await until('the first analysis to run', () => m.getJob(first).status === 'running')
    // The second is held ahead at the worker (one job ahead): it has left the queue.
    const second = m.submit({ kind: 'analyze', groupId: 'g', text: 'def' }, 'a')
    const third = m.submit({ kind: 'analyze', groupId: 'g', text: 'ghi' }, 'a')
    const fourth = m.submit({ kind: 'analyze', groupId: 'g', text: 'jkl' }, 'a')
    expect([second.queuePosition, third.queuePosition, fourth.queuePosition]).toEqual([null, 1, 2])
    // Submits that change nothing else leave the positions as they were.
    expect(m.getJob(third.jobId).queuePosition).toBe(1)
    expect(m.getJob(fourth.jobId).queuePosition).toBe(2)
    // The first ends (its answer is malformed), the second runs: the third is held ahead now.
    fleet.workers[0]!.release('analyze')
    await until('the third to leave the queue', () => m.getJob(third.jobId).status !== 'queued')
    expect(m.getJob(first).status).toBe('failed')
    expect(m.getJob(third.jobId).queuePosition).toBeNull()
    expect(m.getJob(fourth.jobId).queuePosition).toBe(1)
  })
})

describe('one job ahead', () => {
  /** One running analysis and one held ahead on cpu:0; analyses hang until answered. */
  async function twoAtTheWorker(): Promise<{
    m: DeviceManager
    fleet: FakeFleet
    first: string
    second: string
  }> {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'analyze' ? 'hang' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet)
    await settled(m.start())
    const first = m.submit({ kind: 'analyze', groupId: 'g', text: 'abc' }, 'a').jobId
    await until('the first analysis to run', () => m.getJob(first).status === 'running')
    const second = m.submit({ kind: 'analyze', groupId: 'g', text: 'def' }, 'a').jobId
    await until('both at the worker', () => fleet.workers[0]!.heldTasks('analyze').length === 2)
    return { m, fleet, first, second }
  }

  it('sends the next analysis to the busy worker at once; the running one stays the running one', async () => {
    const { m, fleet, first, second } = await twoAtTheWorker()
    const worker = fleet.workers[0]!
    // Whole: no plan call for the one held ahead.
    expect(worker.received.filter((op) => op === 'plan')).toHaveLength(1)
    expect(m.devices()[0]!.runningJobId).toBe(first)
    expect(m.getJob(second)).toMatchObject({ queuePosition: null, devices: ['cpu:0'] })
    expect(m.getJob(second).stage).toMatch(/next on cpu:0, after/)
    // A third waits in the queue: one ahead at most.
    const third = m.submit({ kind: 'analyze', groupId: 'g', text: 'ghi' }, 'a').jobId
    await elapse(5)
    expect(worker.heldTasks('analyze')).toHaveLength(2)
    expect(m.getJob(third)).toMatchObject({ status: 'queued', queuePosition: 1 })
    // The first ends: the second is the running job, and the third is held ahead in turn.
    worker.finishAnalysis()
    await until('the first to end', () => m.getJob(first).status === 'done')
    await until('the third at the worker', () => worker.heldTasks('analyze').length === 2)
    expect(m.devices()[0]!.runningJobId).toBe(second)
    expect(m.getJob(second)).toMatchObject({ status: 'running', stage: null })
    worker.finishAnalysis()
    worker.finishAnalysis()
    await until('all done', () => m.getJob(third).status === 'done')
    expect(m.getJob(second).status).toBe('done')
    expect(m.devices()[0]).toMatchObject({ runningJobId: null, status: 'ready' })
  })

  it('cancels a job held ahead through its worker, without killing it for the running one', async () => {
    const { m, fleet, first, second } = await twoAtTheWorker()
    const worker = fleet.workers[0]!
    const [, secondTask] = worker.heldTasks('analyze')
    m.cancel(second)
    await elapse(1)
    expect(worker.cancels).toEqual([secondTask])
    // Well past the cancel grace period while the first still runs: the worker is not killed.
    await elapse(300)
    expect(fleet.workers).toHaveLength(1)
    expect(worker.alive).toBe(true)
    expect(m.getJob(second).status).toBe('running')
    worker.finishAnalysis()
    await until('the first to end', () => m.getJob(first).status === 'done')
    worker.finishAnalysis()
    await until('the second to end', () => m.getJob(second).status === 'cancelled')
    expect(m.devices()[0]).toMatchObject({ runningJobId: null, status: 'ready' })
  })

  it('retries both the running job and the one held ahead when the worker dies', async () => {
    const { m, fleet, first, second } = await twoAtTheWorker()
    fleet.workers[0]!.exit(1)
    await until('the replacement worker', () => fleet.workers.length === 2)
    const next = fleet.workers[1]!
    await until('both at the new worker', () => next.heldTasks('analyze').length === 2)
    for (const id of [first, second]) {
      expect(m.getJob(id).retries).toBe(1)
      expect(m.getJob(id).notes.join(' ')).toMatch(/crashed/)
    }
    expect(m.devices()[0]!.runningJobId).toBe(first)
    next.finishAnalysis()
    next.finishAnalysis()
    await until('both done', () => m.getJob(second).status === 'done')
    expect(m.getJob(first).status).toBe('done')
  })

  it('an unload refuses a group with a job held ahead, and with force waits for both', async () => {
    const { m, fleet, first, second } = await twoAtTheWorker()
    const worker = fleet.workers[0]!
    await expect(settled(m.unload({ groupId: 'g' }))).rejects.toThrow(/in use by/)
    const cleared = await settled(m.clearDevice('cpu:0'))
    expect(cleared.unloaded).toEqual([])
    expect(cleared.kept[0]!.reason).toContain(`in use by ${first}, ${second}`)
    const unload = m.unload({ groupId: 'g', force: true })
    await elapse(1)
    expect(worker.cancels).toHaveLength(2)
    worker.finishAnalysis()
    expect(await settles(unload, 50)).toBe('pending')
    worker.finishAnalysis()
    await settled(unload)
    expect(m.getJob(first).status).toBe('cancelled')
    expect(m.getJob(second).status).toBe('cancelled')
    expect(worker.received).toContain('unload')
  })
})

describe('how a load opens the base models (placement.ts, opensAnalysisRolesFirst)', () => {
  it('the analysis roles for an analysis; the whole graph for the optimiser and a load of its own', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'analyze' ? 'hang' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet)
    await settled(m.start())
    const worker = fleet.workers[0]!
    const analyse = async (options?: { optimise: { samplesPerIteration: number } }) => {
      const { jobId } = m.submit({ kind: 'analyze', groupId: 'g', text: 'abc', options }, 'a')
      await until('the analysis at the worker', () => worker.heldTasks('analyze').length === 1)
      worker.finishAnalysis()
      expect((await settled(m.waitFor(jobId))).status).toBe('done')
      await settled(m.unload({ groupId: 'g', deviceId: 'cpu:0' }))
    }
    await analyse()
    await analyse({ optimise: { samplesPerIteration: 4 } })
    await settled(m.load({ groupId: 'g', deviceId: 'cpu:0' }, 'a'))
    expect(worker.loadsAnalysisRolesFirst).toEqual([true, false, false])
  })
})

describe('cancel while the group is loading', () => {
  it('lets the load finish instead of killing the worker, then ends the job cancelled', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'load' ? 'hang' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet, { cancelGraceMs: 30 })
    await settled(m.start())
    const { jobId } = m.submit({ kind: 'analyze', groupId: 'g', text: 'abc' }, 'a')
    await until('the load to start', () => fleet.workers[0]!.held.has('load'))
    m.cancel(jobId)
    // Well past the cancel grace period: the worker is loading, it has no task to stop.
    await elapse(150)
    expect(fleet.workers).toHaveLength(1)
    expect(fleet.workers[0]!.alive).toBe(true)
    expect(m.devices()[0]!.restarts).toBe(0)
    fleet.workers[0]!.release('load')
    const s = await settled(m.waitFor(jobId))
    expect(s.status).toBe('cancelled')
    expect(fleet.workers[0]!.received).not.toContain('analyze')
    // The group loaded anyway stays usable for the next job.
    expect(m.devices()[0]!.placements.map((p) => [p.groupId, p.state])).toEqual([['g', 'ready']])
    expect(m.devices()[0]!.status).toBe('ready')
  })

  it('a cancelled load job ends cancelled, not done, and does not keep the group', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'load' ? 'hang' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet, { cancelGraceMs: 30 })
    await settled(m.start())
    const loading = m.load({ groupId: 'g', deviceId: 'cpu:0' }, 'a').then(
      () => 'loaded',
      (err: Error) => err.message
    )
    await until('the load to start', () => fleet.workers[0]!.held.has('load'))
    const [job] = m.listJobs({ status: 'loading' })
    m.cancel(job!.id)
    await elapse(100)
    fleet.workers[0]!.release('load')
    expect(await settled(loading)).toMatch(/cancel/)
    expect(m.getJob(job!.id).status).toBe('cancelled')
    await until('the unload', () => m.devices()[0]!.placements.length === 0)
    expect(fleet.workers[0]!.received).toContain('unload')
    expect(fleet.workers[0]!.alive).toBe(true)
    expect(m.devices()[0]!.restarts).toBe(0)
  })

  it('still kills a worker that does not stop a running analysis within the grace period', async () => {
    const fleet = new FakeFleet()
    fleet.script = (op, w) => (op === 'analyze' ? 'hang' : { value: standardAnswer(op, w) })
    const m = managerWith(fleet, { cancelGraceMs: 30 })
    await settled(m.start())
    const { jobId } = m.submit({ kind: 'analyze', groupId: 'g', text: 'abc' }, 'a')
    await until('the analysis to run', () => fleet.workers[0]!.held.has('analyze'))
    m.cancel(jobId)
    expect((await settled(m.waitFor(jobId))).status).toBe('cancelled')
    expect(fleet.workers[0]!.alive).toBe(false)
    await until('the restart', () => m.devices()[0]!.status === 'ready')
    expect(fleet.workers).toHaveLength(2)
  })
})

describe('events the contract refuses', () => {
  it('are logged, never thrown from the deferred snapshot or into the caller', async () => {
    const logged: LogEntry[] = []
    const restore = setLogSink((e) => logged.push(e), 'error')
    try {
      const fleet = new FakeFleet()
      // What the event hub does with a payload that breaks the contract.
      const m = managerWith(fleet, {
        emit: (channel) => {
          throw new Error(`event ${channel} payload does not match the contract`)
        }
      })
      await settled(m.start())
      const loaded = await settled(m.load({ groupId: 'g', deviceId: 'cpu:0' }, 'a'))
      expect(loaded.placement?.state).toBe('ready')
      await elapse(10)
      const refused = new Set(logged.map((e) => e.message))
      expect(refused).toContain('devices:changed was not sent')
      expect(refused).toContain('jobs:changed was not sent')
      expect(
        logged.every((e) => e.scope === 'devices' && /match the contract/.test(e.error ?? ''))
      ).toBe(true)
    } finally {
      restore()
    }
  })
})

describe('dispatch first', () => {
  it("hands the worker its next job before the finished one's end is published, each job's events in order", async () => {
    const fleet = new FakeFleet()
    const log: string[] = []
    const metadata = {
      ...ANALYSIS_METADATA,
      seed: 1,
      timings: { totalMs: 1 },
      status: 'completed'
    }
    fleet.script = (op, w) => {
      if (op === 'plan' || op === 'analyze') log.push(`${op} sent`)
      return { value: op === 'analyze' ? { metadata, rowCount: 0 } : standardAnswer(op, w) }
    }
    const m = managerWith(fleet, {
      emit: (channel, payload) => {
        if (channel !== 'jobs:changed') return
        const job = payload as { id: string; status: string }
        const last = log.findLast((e) => e.startsWith(`${job.id} `))
        if (last !== `${job.id} ${job.status}`) log.push(`${job.id} ${job.status}`)
      }
    })
    await settled(m.start())
    const a = m.submit({ kind: 'analyze', groupId: 'g', text: 'abc' }, 'a').jobId
    const b = m.submit({ kind: 'analyze', groupId: 'g', text: 'def' }, 'a').jobId
    await settled(m.waitFor(b))
    expect(m.getJob(a).status).toBe('done')
    expect(m.getJob(b).status).toBe('done')
    // The second job's first request (its plan: nothing else is queued for the group now) left for
    // the worker before the first job was published done.
    const firstAnalysis = log.indexOf('analyze sent')
    const next = log.findIndex((e, i) => i > firstAnalysis && e.endsWith(' sent'))
    expect(firstAnalysis).toBeGreaterThan(-1)
    expect(next).toBeGreaterThan(firstAnalysis)
    expect(next).toBeLessThan(log.indexOf(`${a} done`))
    // Each job's own statuses still come in their order.
    for (const id of [a, b]) {
      const own = log.filter((e) => e.startsWith(`${id} `)).map((e) => e.slice(id.length + 1))
      expect(own.filter((s) => s !== 'queued')).toEqual(['loading', 'running', 'done'])
    }
  })
})

describe('devices:activity with coalesced snapshots', () => {
  it('tells a load and its unload that both fall inside one snapshot interval', async () => {
    const fleet = new FakeFleet()
    const snapshots: DevicesSnapshot[] = []
    const activity: DeviceActivity[] = []
    const m = managerWith(fleet, {
      emit: (channel, payload) => {
        if (channel === 'devices:changed') snapshots.push(payload as DevicesSnapshot)
        if (channel === 'devices:activity') activity.push(payload as DeviceActivity)
      }
    })
    await settled(m.start())
    await elapse(500)
    const quietUntil = snapshots.length
    const startedAt = clock.now()
    await settled(m.load({ groupId: 'g', deviceId: 'cpu:0' }, 'a'))
    await settled(m.unload({ groupId: 'g', deviceId: 'cpu:0' }))
    // Both ended well inside one interval: no snapshot showed the group ready or unloading
    // (what /metrics once counted loads and unloads from).
    expect(clock.now() - startedAt).toBeLessThan(50)
    const shown = snapshots
      .slice(quietUntil)
      .flatMap((s) => s.devices.flatMap((d) => d.placements.map((p) => p.state)))
    expect(shown).not.toContain('ready')
    expect(shown).not.toContain('unloading')
    expect(activity).toEqual([
      { kind: 'load', deviceId: 'cpu:0', groupId: 'g', outcome: 'ok', seconds: 0.001 },
      { kind: 'unload', deviceId: 'cpu:0', groupId: 'g', seconds: expect.any(Number) }
    ])
    // The load job's task counts as busy time in the next snapshot, cumulatively.
    await elapse(200)
    const busy = snapshots.at(-1)!.devices.find((d) => d.id === 'cpu:0')!.busySeconds
    expect(busy).toBeGreaterThan(0)
  })
})
