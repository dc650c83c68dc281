/**
 * How the manager talks to a device worker process. Two implementations of one small interface:
 * Node's child_process.fork (headless host, CLI, tests) and Electron's utilityProcess (the app).
 * The Electron one receives `utilityProcess.fork` injected, so nothing here imports electron.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createLogger } from '../platform/logger'

const log = createLogger('devices')

export interface WorkerExit {
  code: number | null
  signal: string | null
}

export interface WorkerTransport {
  readonly pid: number | undefined
  send(message: unknown): void
  onMessage(listener: (message: unknown) => void): void
  onExit(listener: (exit: WorkerExit) => void): void
  /** Lines the worker wrote to stdout/stderr (ORT warnings, crashes before the protocol is up). */
  onOutput(listener: (line: string, stream: 'stdout' | 'stderr') => void): void
  kill(signal?: NodeJS.Signals): void
}

export interface SpawnOptions {
  deviceId: string
  env?: Record<string, string>
}

export type SpawnWorker = (options: SpawnOptions) => WorkerTransport

/** How to start the worker entry: a built file, or the TypeScript source through tsx. */
export interface WorkerEntry {
  modulePath: string
  execArgv: string[]
  env: Record<string, string>
  fromSource: boolean
}

function findRepoRoot(start: string): string | undefined {
  let dir = start
  for (let i = 0; i < 8; i++) {
    if (
      existsSync(join(dir, 'tsconfig.node.json')) &&
      existsSync(join(dir, 'src/main/worker/index.ts'))
    )
      return dir
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  return undefined
}

function here(): string {
  // The build is CommonJS (__dirname); vitest and tsx also provide it for TypeScript sources.
  return typeof __dirname === 'string' ? __dirname : process.cwd()
}

/**
 * Built `out/main/worker.js` beside the running bundle when there is one; else the source entry
 * run through tsx with tsconfig.node.json (so `@shared` resolves). `TALKATIVE_WORKER_ENTRY`
 * overrides both (a path to a .js or .ts file).
 */
export function resolveWorkerEntry(
  from: string = here(),
  env: NodeJS.ProcessEnv = process.env
): WorkerEntry {
  const tsxEntry = (root: string, modulePath: string): WorkerEntry => ({
    modulePath,
    execArgv: ['--import', 'tsx'],
    env: { TSX_TSCONFIG_PATH: join(root, 'tsconfig.node.json') },
    fromSource: true
  })
  const override = env.TALKATIVE_WORKER_ENTRY
  if (override) {
    const modulePath = resolve(override)
    if (!modulePath.endsWith('.ts')) return { modulePath, execArgv: [], env: {}, fromSource: false }
    return tsxEntry(findRepoRoot(dirname(modulePath)) ?? process.cwd(), modulePath)
  }
  // Shared code lands in out/main/chunks/, the entries in out/main/.
  const built = [join(from, 'worker.js'), join(from, '..', 'worker.js')].find((p) => existsSync(p))
  if (built) return { modulePath: resolve(built), execArgv: [], env: {}, fromSource: false }
  const root = findRepoRoot(from) ?? findRepoRoot(process.cwd())
  if (!root)
    throw new Error(
      `cannot find the device worker entry (no worker.js near ${from}, no src/main/worker/index.ts)`
    )
  return tsxEntry(root, join(root, 'src/main/worker/index.ts'))
}

/**
 * glibc raises its mmap threshold after the first large free, after which freed weights stay in
 * the heap and an unload gives nothing back to the system. A fixed threshold keeps every large
 * buffer mmapped, so an unload really returns the memory (ignored by other C libraries). Those
 * buffers are mapped afresh and zero-filled page by page on first touch: a new session's first
 * runs (its arena growing) paid thousands of 4 KiB page faults. `glibc.malloc.hugetlb=1` asks for
 * transparent huge pages on them (where the kernel offers them on request), so the same memory
 * comes in 2 MiB faults and still goes back whole at its unmap (docs/devices.md, "Placement").
 * The benchmarks start their analysis processes with it too, so they measure what a worker runs.
 */
export const WORKER_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1'
}

/** WORKER_ENV over `parent`; tunables the user set already come after ours, so theirs win. */
export function workerEnv(parent: NodeJS.ProcessEnv): Record<string, string> {
  const own = parent.GLIBC_TUNABLES
  return {
    ...WORKER_ENV,
    GLIBC_TUNABLES: own ? `${WORKER_ENV.GLIBC_TUNABLES}:${own}` : WORKER_ENV.GLIBC_TUNABLES!
  }
}

/**
 * V8 flags for the process that runs the engine. Its tensors live outside the JavaScript heap,
 * so the young generation only ever holds small, short-lived objects; V8's default semispaces
 * grow to 16 MB each (two of them, a scavenge copies from one to the other), peak memory the
 * analysis never needs. With 1 MB the GPT-2 preset's analysis peaked at 1,247–1,254 MB instead
 * of 1,250–1,288 MB, as far as the semispaces had grown when the decode peaked
 * (docs/benchmarks.md, "Memory, the workers' young generation"). The benchmarks start their
 * analysis processes with it too.
 */
export const WORKER_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1']

/** The entry's own flags (a loader) and the worker's V8 flags, the entry's first. */
export function workerExecArgv(entryExecArgv: readonly string[]): string[] {
  return [...entryExecArgv, ...WORKER_EXEC_ARGV]
}

function splitLines(listener: (line: string) => void): (chunk: Buffer) => void {
  let rest = ''
  return (chunk) => {
    const text = rest + chunk.toString('utf8')
    const lines = text.split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) if (line.trim()) listener(line)
  }
}

class ChildProcessTransport implements WorkerTransport {
  readonly #child: ChildProcess
  constructor(child: ChildProcess) {
    this.#child = child
    // Node emits 'error' when a spawn, a kill or a send fails; unheard, it ends the host. A process
    // that never started is noticed by its init call's timeout, a dead one by its 'exit'.
    child.on('error', (err) => log.warn(`worker process ${child.pid ?? '(not started)'}`, err))
  }
  get pid(): number | undefined {
    return this.#child.pid
  }
  send(message: unknown): void {
    // A worker killed a moment ago can still look connected; the write then fails later. Its exit
    // is what the manager acts on, so the failed write is only noted (without the callback Node
    // would raise it as an uncaught 'error' event).
    if (this.#child.connected)
      this.#child.send(message as object, (err) => {
        if (err) log.debug(`a message to worker ${this.#child.pid} was not delivered`, err)
      })
  }
  onMessage(listener: (message: unknown) => void): void {
    this.#child.on('message', listener)
  }
  onExit(listener: (exit: WorkerExit) => void): void {
    this.#child.on('exit', (code, signal) => listener({ code, signal }))
  }
  onOutput(listener: (line: string, stream: 'stdout' | 'stderr') => void): void {
    this.#child.stdout?.on(
      'data',
      splitLines((l) => listener(l, 'stdout'))
    )
    this.#child.stderr?.on(
      'data',
      splitLines((l) => listener(l, 'stderr'))
    )
  }
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal)
  }
}

/** child_process.fork with the structured-clone serializer (typed arrays travel as such). */
export function childProcessSpawner(entry: WorkerEntry = resolveWorkerEntry()): SpawnWorker {
  return ({ deviceId, env }) => {
    const child = fork(entry.modulePath, ['--device', deviceId], {
      execArgv: workerExecArgv(entry.execArgv),
      env: {
        ...process.env,
        ...workerEnv(process.env),
        ...entry.env,
        ...env,
        TALKATIVE_WORKER_DEVICE: deviceId
      },
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc']
    })
    return new ChildProcessTransport(child)
  }
}

/** The part of Electron's UtilityProcess this transport uses (structural, no electron import). */
export interface UtilityProcessLike {
  readonly pid: number | undefined
  postMessage(message: unknown): void
  kill(): boolean
  on(event: 'message', listener: (message: unknown) => void): this
  on(event: 'exit', listener: (code: number) => void): this
  readonly stdout: NodeJS.ReadableStream | null
  readonly stderr: NodeJS.ReadableStream | null
}

export type UtilityFork = (
  modulePath: string,
  args: string[],
  options: {
    serviceName: string
    stdio: 'pipe'
    env: Record<string, string | undefined>
    execArgv: string[]
  }
) => UtilityProcessLike

/**
 * Electron's utilityProcess. Only testable where Electron exists, so it stays this small. It has no
 * signals: `kill` ends the process whatever signal is asked for.
 */
export function utilityProcessSpawner(utilityFork: UtilityFork, modulePath: string): SpawnWorker {
  return ({ deviceId, env }) => {
    const proc = utilityFork(modulePath, ['--device', deviceId], {
      serviceName: `talkative-worker-${deviceId}`,
      stdio: 'pipe',
      env: { ...process.env, ...workerEnv(process.env), ...env, TALKATIVE_WORKER_DEVICE: deviceId },
      execArgv: workerExecArgv([])
    })
    return {
      get pid() {
        return proc.pid
      },
      send: (m) => {
        // Posting to a process that just exited throws in some Electron versions; its exit
        // event is what the manager acts on.
        try {
          proc.postMessage(m)
        } catch (err) {
          log.debug(`a message to worker ${proc.pid} was not delivered`, err)
        }
      },
      onMessage: (l) => void proc.on('message', l),
      onExit: (l) => void proc.on('exit', (code) => l({ code, signal: null })),
      onOutput: (l) => {
        proc.stdout?.on(
          'data',
          splitLines((line) => l(line, 'stdout'))
        )
        proc.stderr?.on(
          'data',
          splitLines((line) => l(line, 'stderr'))
        )
      },
      kill: () => void proc.kill()
    }
  }
}
