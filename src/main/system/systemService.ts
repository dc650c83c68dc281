import type { CpuInfo, HardwareState, ProviderProbe } from '@shared/domain/system'
import type { EventPayload } from '@shared/ipc/contract'
import type { CommandRunner } from '../platform/commandRunner'
import { queryNvidiaGpus, type GpuQuery } from './nvidiaSmi'
import { createLogger } from '../platform/logger'
import { guarded } from '../platform/boundary'

const log = createLogger('system')

/** The parts of `node:os` the service reads; injected so tests can pin the figures. */
export interface OsProbe {
  cpus(): ReadonlyArray<{ model: string }>
  totalmem(): number
  freemem(): number
  loadavg(): number[]
  availableParallelism?(): number
}

export interface SystemServiceDeps {
  os: OsProbe
  runCommand: CommandRunner
  probeProviders: () => Promise<ProviderProbe[]>
  ortVersion: () => string
  appVersion: string
  emit: (channel: 'system:changed', payload: EventPayload<'system:changed'>) => void
  /** Poll period while someone listens (2 s: fresh enough for a live view, cheap for nvidia-smi). */
  pollIntervalMs?: number
  /**
   * How old a reading `state()` may hand out (default 1 s). A reading costs an nvidia-smi run;
   * without this, a client asking for the state in a loop made every other client wait.
   */
  maxAgeMs?: number
  now?: () => number
  nvidiaSmiCommand?: string
}

const DEFAULT_POLL_MS = 2000
/** probeProviders (engine/ort.ts) keeps the first 300 characters of an ONNX Runtime error. */
const PROBE_MESSAGE_LIMIT = 300

/**
 * ONNX Runtime errors start with a source location and an assertion
 * (`/onnxruntime_src/.../webgpu_context.cc:136 ... was false. Failed to get a WebGPU adapter: ...`).
 * The user needs the sentence after that, not the C++ frame.
 */
export function summarizeProviderError(message: string, truncatedAt?: number): string {
  let text = message.split(/\r?\n/)[0] ?? ''
  if (truncatedAt !== undefined && text.length >= truncatedAt) {
    // The probe keeps only the first N characters: drop the clause the cut went through.
    const clauseEnd = Math.max(text.lastIndexOf(': '), text.lastIndexOf('. '))
    if (clauseEnd > 0) text = text.slice(0, clauseEnd + (text[clauseEnd] === '.' ? 1 : 0))
  }
  text = text.replace(/^\S+\.(?:cc|cpp|h|hpp):\d+\s+/, '')
  const assertion = text.lastIndexOf(' was false. ')
  if (assertion >= 0) text = text.slice(assertion + ' was false. '.length)
  text = text.replace(/^.*?\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/, '')
  text = text.trim()
  if (text.length > 200) {
    const cut = text.lastIndexOf('. ', 200)
    text = cut > 40 ? text.slice(0, cut + 1) : `${text.slice(0, 199)}…`
  }
  return text || 'provider could not create a session'
}

function withHints(probe: ProviderProbe): ProviderProbe {
  if (probe.available || probe.error === undefined) return probe
  let error = summarizeProviderError(probe.error, PROBE_MESSAGE_LIMIT)
  if (probe.provider === 'cuda' && /load (shared )?librar/i.test(probe.error)) {
    error = `${error} (the CUDA provider is not installed: npm run install:cuda)`
  }
  return { ...probe, error }
}

/** Whether two snapshots differ in anything but the time they were taken. */
function sameFigures(a: HardwareState, b: HardwareState): boolean {
  return JSON.stringify({ ...a, takenAt: 0 }) === JSON.stringify({ ...b, takenAt: 0 })
}

/**
 * What this machine has: CPU, NVIDIA GPUs, ONNX Runtime and the providers that can start a
 * session. Providers are probed once (a probe creates real sessions); CPU and GPU figures are read
 * on demand and polled only while at least one client listens.
 */
export class SystemService {
  readonly #deps: SystemServiceDeps
  readonly #pollMs: number
  readonly #now: () => number
  #providers: Promise<ProviderProbe[]> | undefined
  #timer: ReturnType<typeof setInterval> | undefined
  #last: HardwareState | undefined
  /** The latest reading and when it was taken, and the reading under way (shared by all callers). */
  #latest: { state: HardwareState; at: number } | undefined
  #reading: Promise<HardwareState> | undefined
  readonly #maxAgeMs: number
  #polling = false
  #disposed = false

  constructor(deps: SystemServiceDeps) {
    this.#deps = deps
    this.#pollMs = deps.pollIntervalMs ?? DEFAULT_POLL_MS
    this.#now = deps.now ?? Date.now
    this.#maxAgeMs = deps.maxAgeMs ?? 1000
  }

  /** Starts the provider probe early so the first `state()` does not wait for it. */
  start(): void {
    void this.providers()
  }

  providers(): Promise<ProviderProbe[]> {
    this.#providers ??= this.#deps.probeProviders().then(
      (list) => list.map(withHints),
      (err: unknown) => [
        {
          provider: 'cpu',
          available: false,
          error: summarizeProviderError(err instanceof Error ? err.message : String(err))
        }
      ]
    )
    return this.#providers
  }

  cpu(): CpuInfo {
    const { os } = this.#deps
    const cpus = os.cpus()
    const cores = cpus.length || os.availableParallelism?.() || 1
    const load = os.loadavg()[0] ?? 0
    return {
      id: 'cpu',
      kind: 'cpu',
      name: cpus[0]?.model.trim() || 'CPU',
      cores,
      memoryTotalBytes: os.totalmem(),
      memoryFreeBytes: os.freemem(),
      utilization: Math.max(0, load / cores)
    }
  }

  gpus(): Promise<GpuQuery> {
    return queryNvidiaGpus(this.#deps.runCommand, this.#deps.nvidiaSmiCommand)
  }

  /** The hardware: the latest reading when it is recent enough, else a new one. */
  async state(): Promise<HardwareState> {
    const latest = this.#latest
    if (latest && this.#now() - latest.at < this.#maxAgeMs) return latest.state
    return this.#read()
  }

  /** A new reading; callers that ask while one is under way share it. */
  #read(): Promise<HardwareState> {
    this.#reading ??= this.#measure()
      .then((state) => {
        this.#latest = { state, at: this.#now() }
        return state
      })
      .finally(() => {
        this.#reading = undefined
      })
    return this.#reading
  }

  async #measure(): Promise<HardwareState> {
    const [gpuQuery, providers] = await Promise.all([this.gpus(), this.providers()])
    const state: HardwareState = {
      cpu: this.cpu(),
      gpus: gpuQuery.gpus,
      onnxRuntimeVersion: this.#deps.ortVersion(),
      providers,
      appVersion: this.#deps.appVersion,
      takenAt: this.#now()
    }
    if (gpuQuery.note !== undefined) state.gpuNote = gpuQuery.note
    return state
  }

  /** Wired to the event hub's client count: poll only while somebody listens. */
  onClientCount(count: number): void {
    if (count > 0) this.#startPolling()
    else this.#stopPolling()
  }

  get polling(): boolean {
    return this.#timer !== undefined
  }

  /** One poll step: read, compare, push when something changed. Exposed for tests. */
  async pollOnce(): Promise<boolean> {
    if (this.#polling || this.#disposed) return false
    this.#polling = true
    try {
      const next = await this.#read()
      if (this.#disposed || this.#timer === undefined) return false
      const changed = !this.#last || !sameFigures(this.#last, next)
      this.#last = next
      if (changed) this.#deps.emit('system:changed', next)
      return changed
    } finally {
      this.#polling = false
    }
  }

  #startPolling(): void {
    if (this.#timer || this.#disposed) return
    this.#timer = setInterval(
      guarded(log, 'polling the hardware', () => this.pollOnce()),
      this.#pollMs
    )
    // Polling must never be what keeps a headless host or a test process alive.
    this.#timer.unref?.()
    // A newly connected client gets fresh figures at once rather than after the first period.
    this.#last = undefined
    void this.pollOnce().catch(log.failed('polling the hardware'))
  }

  #stopPolling(): void {
    if (!this.#timer) return
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  dispose(): void {
    this.#disposed = true
    this.#stopPolling()
  }
}
