/**
 * Where the replica ceiling goes (bench/devices.ts `replicaBurst`, the burst with the replica
 * already loaded): the same burst of short analyses (demo group, K 16) kept to cpu:0 and spread
 * over cpu:0 and cpu:1, alternating, with each process's CPU read from the kernel around every
 * burst: per thread of the bench (main) process and of both worker processes, time on a CPU and
 * time runnable but waiting for one (/proc/<pid>/task/<tid>/schedstat, ns), minor page faults and
 * context switches; and the whole machine's busy time (/proc/stat), so what other processes took
 * during the burst shows too. Per-job figures are the burst's totals over its jobs; medians over
 * `--bursts` pairs. On a shared machine, read the CPU figures (per job, per process) and
 * `others_busy_ms` before any wall time.
 *
 * `handoff_ms` (per job) and `handoff_total_ms` (per burst): how long the main process took from
 * reading a worker's answer to an analysis until it sent that worker its next one (wall time, so
 * the main process's run-queue waits count too): the part of a worker's idle gap between two jobs
 * that the manager's own work decides.
 *
 *   npx tsx --tsconfig tsconfig.node.json bench/devices-ceiling.ts [--bursts 6] [--jobs 40] [--json]
 *     [--count-snapshots] [--nice-workers N] [--cpu-prof FILE] [--signal-workers]
 */
import { readFileSync, readdirSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { cpus, loadavg, setPriority } from 'node:os'
import { DeviceManager } from '../src/main/devices/manager'
import { childProcessSpawner, type SpawnWorker } from '../src/main/devices/transport'
import {
  BURST_TEXTS,
  DEMO_GROUP,
  cpuOnlyHardware,
  demoLibrary,
  median,
  numberArg
} from './devicesSetup'

/** One process's counters, summed over its threads (ns for times). */
interface ProcessSample {
  runNs: number
  waitNs: number
  userTicks: number
  sysTicks: number
  minorFaults: number
  voluntary: number
  involuntary: number
}

/** Time on a CPU per thread name (ns), summed over threads of one name. */
function threadRun(pid: number): Map<string, number> {
  const out = new Map<string, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name =
        String(pid) === tid ? 'js' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      const run = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
      out.set(name, (out.get(name) ?? 0) + run)
    } catch {
      // ended meanwhile
    }
  }
  return out
}

function readProcess(pid: number): ProcessSample {
  let runNs = 0
  let waitNs = 0
  let voluntary = 0
  let involuntary = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')
      runNs += Number(run)
      waitNs += Number(wait)
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
      voluntary += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0)
      involuntary += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0)
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  // Fields after the command's closing parenthesis: state is [0], minflt [7], utime [11], stime [12].
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {
    runNs,
    waitNs,
    minorFaults: Number(fields[7]),
    userTicks: Number(fields[11]),
    sysTicks: Number(fields[12]),
    voluntary,
    involuntary
  }
}

/** Whole machine: busy and steal jiffies over all CPUs. */
function readMachine(): { busy: number; steal: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
  const busy = user! + nice! + system! + irq! + softirq!
  return { busy, steal: steal!, total: busy + idle! + iowait! + steal! }
}

function diff(a: ProcessSample, b: ProcessSample): ProcessSample {
  return {
    runNs: b.runNs - a.runNs,
    waitNs: b.waitNs - a.waitNs,
    userTicks: b.userTicks - a.userTicks,
    sysTicks: b.sysTicks - a.sysTicks,
    minorFaults: b.minorFaults - a.minorFaults,
    voluntary: b.voluntary - a.voluntary,
    involuntary: b.involuntary - a.involuntary
  }
}

function childPids(): number[] {
  const own = process.pid
  return readFileSync(`/proc/${own}/task/${own}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
}

function workerPid(pids: number[], deviceId: string): number {
  for (const pid of pids) {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    const i = cmd.indexOf('--device')
    if (i >= 0 && cmd[i + 1] === deviceId) return pid
  }
  throw new Error(`no worker process for ${deviceId}`)
}

/**
 * The real spawner, with each worker's channel watched: when the answer to an analysis was read
 * and when the next analysis request left for the same worker (`handoffs`, ms, while `on`).
 */
function handoffSpawner(): {
  spawn: SpawnWorker
  handoffs: number[]
  /** Starts watching: answers read before now start no hand-off. */
  start(): void
  stop(): void
} {
  const base = childProcessSpawner()
  const handoffs: number[] = []
  const watch = { on: false, since: Infinity }
  const spawn: SpawnWorker = (options) => {
    const transport = base(options)
    const analyses = new Set<number>()
    let answeredAt: number | null = null
    type Msg = { type?: unknown; seq?: unknown; request?: { op?: unknown } }
    return {
      get pid() {
        return transport.pid
      },
      send(message) {
        const m = message as Msg
        if (m.type === 'request' && m.request?.op === 'analyze' && typeof m.seq === 'number') {
          if (answeredAt !== null && watch.on && answeredAt >= watch.since)
            handoffs.push(performance.now() - answeredAt)
          answeredAt = null
          analyses.add(m.seq)
        }
        transport.send(message)
      },
      onMessage(listener) {
        transport.onMessage((message) => {
          const m = message as Msg
          if (m.type === 'response' && typeof m.seq === 'number' && analyses.delete(m.seq))
            answeredAt = performance.now()
          listener(message)
        })
      },
      onExit: (listener) => transport.onExit(listener),
      onOutput: (listener) => transport.onOutput(listener),
      kill: (signal) => transport.kill(signal)
    }
  }
  return {
    spawn,
    handoffs,
    start: () => {
      handoffs.length = 0
      watch.on = true
      watch.since = performance.now()
    },
    stop: () => {
      watch.on = false
    }
  }
}

interface BurstFigures {
  wallMs: number
  /** Per hand-off (ms): a worker's answer read → its next analysis sent. */
  handoffs: number[]
  main: ProcessSample
  workers: ProcessSample[]
  /** The worker's own analysis time (metadata.timings.totalMs) summed per device. */
  analysisMs: number[]
  jobsPerDevice: number[]
  machineBusyMs: number
  stealMs: number
  /** CPU ms per thread name: `main/…`, `w0/…`, `w1/…`. */
  threads: Record<string, number>
}

function threadDiff(
  prefix: string,
  before: Map<string, number>,
  after: Map<string, number>,
  out: Record<string, number>
): void {
  for (const [name, run] of after) out[`${prefix}/${name}`] = (run - (before.get(name) ?? 0)) / 1e6
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json')
  const bursts = numberArg('--bursts', 6)
  const jobs = numberArg('--jobs', 40)
  const tick = 1000 / 100 // ms per clock tick (USER_HZ 100)
  const { library, modelsDir } = await demoLibrary('bench-ceiling-')
  const watched = handoffSpawner()
  const manager = new DeviceManager({
    hardware: cpuOnlyHardware(loadavg()[0]! / cpus().length),
    library,
    spawn: watched.spawn,
    devices: [
      { id: 'cpu:0', threads: 1 },
      { id: 'cpu:1', threads: 1 }
    ],
    reloadCache: { hostCacheBytes: 0 }
  })
  try {
    await manager.start()
    await manager.load({ groupId: DEMO_GROUP, deviceId: 'cpu:0' }, 'bench')
    await manager.load({ groupId: DEMO_GROUP, deviceId: 'cpu:1' }, 'bench')
    // `--count-snapshots`: CPU time and calls of the manager's snapshot (the coalesced
    // devices:changed payload) during the measured bursts.
    const snapshotCost = { calls: 0, cpuUs: 0 }
    if (process.argv.includes('--count-snapshots')) {
      const original = manager.snapshot.bind(manager)
      manager.snapshot = () => {
        const t = process.cpuUsage()
        const out = original()
        const d = process.cpuUsage(t)
        snapshotCost.calls++
        snapshotCost.cpuUs += d.user + d.system
        return out
      }
    }
    const pids = childPids()
    const workers = ['cpu:0', 'cpu:1'].map((d) => workerPid(pids, d))
    // `--nice-workers N`: both worker processes at that nice value (all their threads).
    const niceAt = process.argv.indexOf('--nice-workers')
    if (niceAt >= 0)
      for (const pid of workers)
        for (const tid of readdirSync(`/proc/${pid}/task`))
          setPriority(Number(tid), Number(process.argv[niceAt + 1]))
    const texts = Array.from({ length: jobs }, (_, i) => BURST_TEXTS[i % BURST_TEXTS.length]!)
    const options = { bestOfK: 16 }
    const burst = async (): Promise<BurstFigures> => {
      const mainBefore = readProcess(process.pid)
      const threadsBefore = [process.pid, ...workers].map(threadRun)
      const workersBefore = workers.map(readProcess)
      const machineBefore = readMachine()
      watched.start()
      const t = performance.now()
      const ids = texts.map(
        (text) =>
          manager.submit({ kind: 'analyze', groupId: DEMO_GROUP, text, options }, 'bench').jobId
      )
      for (const id of ids) {
        const s = await manager.waitFor(id)
        if (s.status !== 'done') throw new Error(`job ${s.status}: ${s.error?.message}`)
      }
      const wallMs = performance.now() - t
      watched.stop()
      const handoffs = [...watched.handoffs]
      const machineAfter = readMachine()
      const threads: Record<string, number> = {}
      ;[process.pid, ...workers].forEach((pid, k) =>
        threadDiff(['main', 'w0', 'w1'][k]!, threadsBefore[k]!, threadRun(pid), threads)
      )
      const analysisMs = [0, 0]
      const jobsPerDevice = [0, 0]
      for (const id of ids) {
        const d = manager.getJob(id).devices.includes('cpu:1') ? 1 : 0
        analysisMs[d]! += manager.result(id).metadata?.timings.totalMs ?? 0
        jobsPerDevice[d]!++
      }
      return {
        wallMs,
        handoffs,
        main: diff(mainBefore, readProcess(process.pid)),
        workers: workers.map((pid, k) => diff(workersBefore[k]!, readProcess(pid))),
        analysisMs,
        jobsPerDevice,
        machineBusyMs: (machineAfter.busy - machineBefore.busy) * tick,
        stealMs: (machineAfter.steal - machineBefore.steal) * tick,
        threads
      }
    }
    // As bench/devices.ts runs them: the one-device burst with cpu:1 empty and `replicas.max` 1;
    // the two-device burst with the replica loaded and warm (one burst run on it first).
    const oneDevice = async (): Promise<BurstFigures> => {
      if (manager.devices()[1]!.placements.length > 0) await manager.clearDevice('cpu:1', true)
      manager.setGroupSettings({ groupId: DEMO_GROUP, replicas: { min: 0, max: 1 } })
      return burst()
    }
    const twoDevices = async (): Promise<BurstFigures> => {
      manager.setGroupSettings({ groupId: DEMO_GROUP, replicas: { min: 0, max: null } })
      await manager.load({ groupId: DEMO_GROUP, deviceId: 'cpu:1' }, 'bench')
      await burst()
      return burst()
    }
    // `--cold`: also the two-device burst as bench/devices.ts times `replica_speedup`, cpu:1 empty
    // at its start (the replica's load and first runs inside it), so its figures against the warm
    // burst's show what the replica's start costs each process.
    const withCold = process.argv.includes('--cold')
    const coldTwo = async (): Promise<BurstFigures> => {
      if (manager.devices()[1]!.placements.length > 0) await manager.clearDevice('cpu:1', true)
      manager.setGroupSettings({ groupId: DEMO_GROUP, replicas: { min: 0, max: null } })
      return burst()
    }
    await oneDevice()
    await twoDevices()
    const one: BurstFigures[] = []
    const two: BurstFigures[] = []
    const cold: BurstFigures[] = []
    // `--cpu-prof FILE`: this process's CPU profile over the measured bursts only.
    const profileAt = process.argv.indexOf('--cpu-prof')
    const profiler = profileAt >= 0 ? new Session() : null
    if (profiler) {
      profiler.connect()
      await profiler.post('Profiler.enable')
      await profiler.post('Profiler.setSamplingInterval', { interval: 200 })
      await profiler.post('Profiler.start')
    }
    // `--signal-workers`: SIGUSR2 to both workers before and after the measured bursts (a profiling
    // entry given in TALKATIVE_WORKER_ENTRY can start and stop a profile on it).
    const signalWorkers = process.argv.includes('--signal-workers')
    if (signalWorkers) for (const pid of workers) process.kill(pid, 'SIGUSR2')
    snapshotCost.calls = 0
    snapshotCost.cpuUs = 0
    for (let i = 0; i < bursts; i++) {
      one.push(await oneDevice())
      if (withCold) cold.push(await coldTwo())
      two.push(await twoDevices())
    }
    if (signalWorkers) for (const pid of workers) process.kill(pid, 'SIGUSR2')
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop')
      await writeFile(process.argv[profileAt + 1]!, JSON.stringify(profile))
      profiler.disconnect()
    }
    const summary = (runs: BurstFigures[], label: string): Record<string, number | string> => {
      const ms = (ns: number): number => Number((ns / 1e6).toFixed(1))
      const m = (f: (r: BurstFigures) => number): number => Number(median(runs.map(f)).toFixed(1))
      const workerRun = (r: BurstFigures): number => r.workers.reduce((s, w) => s + w.runNs, 0)
      const jobsOn = (r: BurstFigures, k: number): number => r.jobsPerDevice[k]!
      return {
        label,
        wall_ms: m((r) => r.wallMs),
        handoff_ms: Number(median(runs.flatMap((r) => r.handoffs)).toFixed(3)),
        handoff_total_ms: m((r) => r.handoffs.reduce((s, x) => s + x, 0)),
        main_cpu_ms: m((r) => ms(r.main.runNs)),
        main_wait_ms: m((r) => ms(r.main.waitNs)),
        main_sys_ms: m((r) => r.main.sysTicks * tick),
        main_voluntary: m((r) => r.main.voluntary),
        workers_cpu_ms: m((r) => ms(workerRun(r))),
        worker_cpu_per_job_ms: m((r) => ms(workerRun(r)) / jobs),
        worker0_cpu_per_job_ms: m((r) => ms(r.workers[0]!.runNs) / Math.max(1, jobsOn(r, 0))),
        worker1_cpu_per_job_ms: m((r) =>
          jobsOn(r, 1) ? ms(r.workers[1]!.runNs) / jobsOn(r, 1) : 0
        ),
        analysis_per_job_ms: m((r) => (r.analysisMs[0]! + r.analysisMs[1]!) / jobs),
        workers_wait_ms: m((r) => ms(r.workers.reduce((s, w) => s + w.waitNs, 0))),
        workers_sys_ms: m((r) => r.workers.reduce((s, w) => s + w.sysTicks, 0) * tick),
        workers_minflt_per_job: m((r) => r.workers.reduce((s, w) => s + w.minorFaults, 0) / jobs),
        workers_involuntary: m((r) => r.workers.reduce((s, w) => s + w.involuntary, 0)),
        workers_voluntary: m((r) => r.workers.reduce((s, w) => s + w.voluntary, 0)),
        jobs_on_cpu1: m((r) => jobsOn(r, 1)),
        others_busy_ms: m((r) => r.machineBusyMs - ms(r.main.runNs) - ms(workerRun(r))),
        steal_ms: m((r) => r.stealMs),
        ...Object.fromEntries(
          Object.keys(runs[0]!.threads)
            .map((k) => [`thread ${k}`, m((r) => r.threads[k] ?? 0)] as const)
            .filter(([, v]) => v >= 1)
        )
      }
    }
    const a = summary(one, 'one device')
    const b = summary(two, 'two devices')
    const ceiling = Number((Number(a.wall_ms) / Number(b.wall_ms)).toFixed(3))
    const cpuRatio = Number(
      (Number(b.worker_cpu_per_job_ms) / Number(a.worker_cpu_per_job_ms)).toFixed(3)
    )
    if (json) {
      console.log(
        JSON.stringify({
          one: a,
          two: b,
          ...(withCold
            ? {
                cold: summary(cold, 'two devices, replica loaded in the burst'),
                replica_speedup: Number(
                  (Number(a.wall_ms) / median(cold.map((r) => r.wallMs))).toFixed(3)
                )
              }
            : {}),
          ceiling,
          worker_cpu_per_job_ratio: cpuRatio,
          load_avg_1m: Number(loadavg()[0]!.toFixed(2)),
          snapshots_per_burst: snapshotCost.calls / (3 * bursts),
          snapshot_cpu_ms_per_burst: Number((snapshotCost.cpuUs / 1000 / (3 * bursts)).toFixed(1))
        })
      )
    } else {
      for (const s of [a, b]) console.log(JSON.stringify(s))
      console.log(
        `ceiling ${ceiling}×; worker CPU per job two/one ${cpuRatio}; load ${loadavg()[0]!.toFixed(2)}`
      )
    }
  } finally {
    await manager.dispose()
    await rm(modelsDir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err))
  process.exit(1)
})
