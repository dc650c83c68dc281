/**
 * The only module that talks to ONNX Runtime. Everything else (engine, workers, system probe)
 * goes through these wrappers, so execution-provider knowledge and session lifetime live in one
 * place. onnxruntime-node returns every output to host memory, cannot share weights between
 * sessions and cannot interrupt a single `run`: the engine is designed around those facts
 * (one session per base model holding every role, whole generations inside one `run`).
 */
import * as ort from 'onnxruntime-node'
import { onnx } from 'onnx-proto'
import type { ExecutionProvider, ProviderProbe } from '@shared/domain/system'
import { AppError } from '@shared/ipc/errors'
import type { SessionTarget } from './types'

export type Tensor = ort.Tensor
export const Tensor = ort.Tensor
export type Feeds = Record<string, ort.Tensor>

export type { SessionTarget }

/** Frozen device-kind → execution-provider option table. */
const PROVIDER_OPTIONS: Readonly<
  Record<ExecutionProvider, (t: SessionTarget) => ort.InferenceSession.ExecutionProviderConfig>
> = Object.freeze({
  cpu: () => 'cpu',
  cuda: (t) => ({ name: 'cuda', deviceId: t.deviceIndex ?? 0 }),
  webgpu: () => 'webgpu'
})

export function ortVersion(): string {
  return ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown'
}

export function sessionOptions(target: SessionTarget): ort.InferenceSession.SessionOptions {
  const make = PROVIDER_OPTIONS[target.provider]
  if (!make) {
    throw new AppError(
      'invalid_input',
      `unsupported execution provider "${String(target.provider)}"; one of cpu, cuda, webgpu`,
      { field: 'provider' }
    )
  }
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: [make(target)],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3
  }
  // ONNX Runtime's memory pattern allocates, per run and per Loop step, one block laid out from an
  // earlier run at the same shapes, with the step's vocabulary-wide sampler temporaries side by
  // side; without it the arena reuses each one as it is freed. At the preset analyses that lowered
  // the peak RSS by 0.4 GB (GPT-2) and 1.6 GB (Gemma-3-270M), and a run of several batches no
  // longer grows from batch to batch (docs/benchmarks.md "At real shapes", memory).
  if (target.provider === 'cpu') opts.enableMemPattern = false
  if (target.threads && target.threads > 0) {
    opts.intraOpNumThreads = target.threads
    opts.interOpNumThreads = 1
  }
  return opts
}

/**
 * The words of an ONNX Runtime error, for a person: its first line without the C++ frame it quotes
 * (`/onnxruntime_src/…/graph.cc:1409 onnxruntime::Graph::Graph(…) This is an invalid model.` →
 * `This is an invalid model.`) and without the `[ONNXRuntimeError] : 1 : FAIL :` code prefix.
 */
export function ortWords(message: string): string {
  let text = message.split(/\r?\n/)[0] ?? ''
  text = text.replace(/\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*/g, '')
  const frame = /[\w./-]+\.(?:cc|cpp|h|hpp):\d+\s+/.exec(text)
  if (frame) {
    // The frame is the source location, then the function's signature up to its closing parenthesis.
    let at = frame.index + frame[0].length
    const open = text.indexOf('(', at)
    const head = open >= 0 ? text.slice(at, open) : ''
    // A C++ function: an optional return type, then a qualified name (`a::b::C::f`).
    if (head.includes('::') && /^[\w:<>,*& ~]+$/.test(head)) {
      let depth = 0
      for (at = open; at < text.length; at++) {
        if (text[at] === '(') depth++
        else if (text[at] === ')' && --depth === 0) break
      }
      at++
      const qualifiers = /^(?:\s+const)?\s*/.exec(text.slice(at))
      at += qualifiers?.[0].length ?? 0
    }
    text = `${text.slice(0, frame.index)} ${text.slice(at)}`
  }
  return text.replace(/\s+/g, ' ').trim()
}

/** How a session is built beyond its target (the optimized-model cache, engine/cache). */
export interface SessionBuild {
  /** Also write ONNX Runtime's optimized graph, in ORT format, to this file (name ends in .ort). */
  saveOptimizedTo?: string
  /**
   * `model` is an ORT-format buffer this ONNX Runtime version optimized for the same target:
   * graph optimisation is skipped and initializers are used in place (no copy), so the buffer is
   * kept alive by the session and must never be modified.
   */
  preOptimized?: boolean
  /** The model's file inside its bundle: a graph that fails at run time is reported by it. */
  file?: string
  /** A model given as bytes reads its external data relative to this folder. */
  externalDataFolder?: string
}

/** A session plus its release; every model handle in the app is one of these. */
export class Session {
  static #live = 0
  readonly #session: ort.InferenceSession
  /** The ORT-format buffer a pre-optimized session reads its weights from, in place. */
  readonly optimizedBytes: Uint8Array | null
  readonly #file: string | undefined
  #released = false

  /** Sessions created and not yet released in this process (leak checks in tests). */
  static get liveCount(): number {
    return Session.#live
  }
  readonly inputNames: readonly string[]
  readonly outputNames: readonly string[]

  private constructor(
    session: ort.InferenceSession,
    optimizedBytes: Uint8Array | null,
    file?: string
  ) {
    this.#session = session
    this.optimizedBytes = optimizedBytes
    this.#file = file
    this.inputNames = session.inputNames
    this.outputNames = session.outputNames
  }

  static async create(
    model: string | Uint8Array,
    target: SessionTarget,
    build: SessionBuild = {}
  ): Promise<Session> {
    const opts = sessionOptions(target)
    if (build.saveOptimizedTo) opts.optimizedModelFilePath = build.saveOptimizedTo
    const inPlace = build.preOptimized === true && typeof model !== 'string'
    if (inPlace) {
      opts.graphOptimizationLevel = 'disabled'
      opts.extra = {
        session: { use_ort_model_bytes_directly: '1', use_ort_model_bytes_for_initializers: '1' }
      }
    } else if (build.externalDataFolder && typeof model !== 'string') {
      opts.extra = {
        session: { model_external_initializers_file_folder_path: build.externalDataFolder }
      }
    }
    const s =
      typeof model === 'string'
        ? await ort.InferenceSession.create(model, opts)
        : await ort.InferenceSession.create(model, opts)
    Session.#live++
    return new Session(s, inPlace ? (model as Uint8Array) : null, build.file)
  }

  async run(feeds: Feeds, fetches?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    if (this.#released) throw new AppError('internal', 'session already released')
    try {
      return await (fetches
        ? this.#session.run(feeds, fetches as string[])
        : this.#session.run(feeds))
    } catch (err) {
      // A graph that disagrees with its bundle (shapes, an id out of range) fails here with ONNX
      // Runtime's words; the caller learns which file of the bundle it was (a 422, not a 500).
      // Running out of memory is not the bundle's fault and keeps its own error.
      const first = ortWords(err instanceof Error ? err.message : String(err))
      if (!this.#file || /memory|alloc/i.test(first)) throw err
      throw new AppError(
        'bundle_invalid',
        `${this.#file}: ONNX Runtime could not run this graph with the bundle's inputs: ${first}`,
        { file: this.#file }
      )
    }
  }

  get released(): boolean {
    return this.#released
  }

  async release(): Promise<void> {
    if (this.#released) return
    this.#released = true
    Session.#live--
    await this.#session.release()
  }
}

/** A one-node Add model written in code: the smallest thing that proves a provider can run. */
function probeModel(): Uint8Array {
  const f = onnx.TensorProto.DataType.FLOAT
  const vi = (name: string): onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: f, shape: { dim: [{ dimValue: 2 }] } } }
  })
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'talkative-workbench-probe',
    graph: {
      name: 'probe',
      node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'] }],
      input: [vi('x')],
      output: [vi('y')]
    }
  })
  return onnx.ModelProto.encode(model).finish()
}

/**
 * Which execution providers can actually create a session and run on this machine. Probed, not
 * assumed: a missing CUDA download or a missing WebGPU adapter fails here, cleanly.
 */
export async function probeProviders(
  providers: readonly ExecutionProvider[] = ['cpu', 'webgpu', 'cuda']
): Promise<ProviderProbe[]> {
  const bytes = probeModel()
  const out: ProviderProbe[] = []
  for (const provider of providers) {
    try {
      const s = await Session.create(bytes, { provider })
      const x = new ort.Tensor('float32', Float32Array.from([1, 2]), [2])
      const y = await s.run({ x })
      await s.release()
      const v = y.y?.data as Float32Array | undefined
      if (!v || v[0] !== 2 || v[1] !== 4) throw new Error('probe model returned a wrong value')
      out.push({ provider, available: true })
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err)
      out.push({ provider, available: false, error: msg.split('\n')[0]?.slice(0, 300) ?? msg })
    }
  }
  return out
}
