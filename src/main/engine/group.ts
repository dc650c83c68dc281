/**
 * A loaded model group: the base session (and donors) created once per device, lens parts loaded
 * on first use into their own small sessions, and the analysis itself.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import {
  AnalyzeOptionsSchema,
  type AnalysisProgress,
  type AnalysisResult,
  type AnalysisRow,
  type AnalyzeOptions
} from '@shared/domain/analysis'
import { AppError, describeZodError } from '@shared/ipc/errors'
import { BaseModel } from './base-model'
import { validateBundle, type ResolvedLens, type ValidatedBundle } from './bundle/open'
import { argminRange, klOrZeroIfRounding, relativeRmse, salience } from './metrics'
import { Session, Tensor, type SessionBuild, type SessionTarget } from './ort'
import type { GroupCache, LoadCacheResult } from './cache'
import type { CachedGroup } from './cache/host-cache'
import { fingerprintFolder } from './cache/fingerprint'
import { OPTIMIZED_STORE_MAX_GROUP_BYTES } from './cache/optimized-store'
import { uniformsFor } from './random'
import { TextTokenizer } from './tokenizer'
import type {
  AnalyzeHooks,
  AnalyzeRequest,
  BundleSummary,
  ExplanationScore,
  LoadHooks,
  LoadedGroup,
  ScoreRequest
} from './types'
import { ENGINE_VERSION } from './version'
import { runGeneration } from './generation/run'
import { positionsInLastMessages } from './chat/turns'
import type { GenerateRequest, GenerationResult } from './generation/options'

/** Default decoder rows (positions × K) per batch by device kind. */
export const DEFAULT_ROWS_PER_BATCH = { cpu: 256, gpu: 1024 } as const

interface LensRuntime {
  resolved: ResolvedLens
  projection: Session
  head: Session
  decoderPrefix: Float32Array
  encoderPrefix: Float32Array
  encoderSuffix?: Float32Array
  lastRowAdd?: Float32Array
}

async function readFloats(file: string): Promise<Float32Array> {
  const buf = await fs.readFile(file)
  const out = new Float32Array(buf.byteLength / 4)
  new Uint8Array(out.buffer).set(buf)
  return out
}

async function createSession(
  file: string,
  target: SessionTarget,
  rel: string,
  build: SessionBuild = {}
): Promise<Session> {
  try {
    return await Session.create(file, target, build)
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0]
    if (target.provider !== 'cpu' && /provider|adapter|library|CUDA|WebGPU/i.test(msg ?? '')) {
      throw new AppError('unavailable', `${target.provider} cannot run ${rel}: ${msg}`, {
        file: rel
      })
    }
    throw new AppError('bundle_invalid', `${rel}: ONNX Runtime rejected the model: ${msg}`, {
      file: rel
    })
  }
}

function relTo(bundle: ValidatedBundle, file: string): string {
  return file.startsWith(bundle.dir) ? file.slice(bundle.dir.length + 1) : file
}

/** What opening a group's models may reuse (engine/cache) and what it did. */
interface OpenContext {
  cache: GroupCache | null
  cached: CachedGroup | null
  fingerprint: string
  result: LoadCacheResult
}

/**
 * Opens one model: from its optimized graph when the host cache or the disk store has it (no graph
 * optimisation), else from the bundle file, saving the optimized graph for the next load.
 */
async function openModel(
  bundle: ValidatedBundle,
  target: SessionTarget,
  ctx: OpenContext,
  file: string
): Promise<Session> {
  const rel = relTo(bundle, file)
  const inMemory = ctx.cached?.models.get(file)
  if (inMemory) {
    try {
      const s = await Session.create(inMemory, target, { preOptimized: true })
      ctx.result.preOptimizedSessions++
      return s
    } catch {
      // Fall through to the disk store and the file: the cached graph is only a shortcut.
    }
  }
  const store =
    bundle.summary.weightBytes <= OPTIMIZED_STORE_MAX_GROUP_BYTES ? ctx.cache?.optimized : undefined
  const stored = store
    ? await store.open(bundle.summary.contentHash, rel, target).catch(() => null)
    : null
  if (stored?.kind === 'hit') {
    try {
      const s = await Session.create(stored.bytes, target, { preOptimized: true })
      ctx.result.preOptimizedSessions++
      return s
    } catch {
      await store!.discard(stored.file)
    }
  } else if (stored?.kind === 'miss') {
    let s: Session
    try {
      s = await createSession(file, target, rel, { saveOptimizedTo: stored.saveTo })
    } catch {
      // Some providers cannot save their optimized graph; the load itself must not fail for it.
      await stored.abandon()
      return createSession(file, target, rel)
    }
    await stored.commit().then(
      () => void ctx.result.savedOptimized++,
      () => stored.abandon()
    )
    return s
  }
  return createSession(file, target, rel)
}

export async function loadGroup(
  dir: string,
  target: SessionTarget,
  hooks: LoadHooks = {}
): Promise<LoadedGroup> {
  const cache = hooks.cache ?? null
  const cached = cache ? await cache.host.take(path.resolve(dir), target) : null
  const ctx: OpenContext = {
    cache,
    cached,
    fingerprint: cached?.fingerprint ?? '',
    result: { hostHit: cached !== null, preOptimizedSessions: 0, savedOptimized: 0 }
  }
  let bundle: ValidatedBundle
  let tokenizer: TextTokenizer
  if (cached) {
    hooks.onStage?.('reusing cached bundle', 0)
    bundle = cached.bundle
    tokenizer = cached.tokenizer
  } else {
    hooks.onStage?.('validating bundle', 0)
    // Taken before validation: a file changed meanwhile makes the cache entry stale, never wrong.
    if (cache) ctx.fingerprint = await fingerprintFolder(dir).catch(() => '')
    bundle = await validateBundle(dir)
    tokenizer = await TextTokenizer.load(
      bundle.tokenizerFile,
      bundle.tokenizerConfigFile,
      bundle.manifest.conventions.bosTokenId
    )
  }
  const sessions: Session[] = []
  const modelFiles = new Map<Session, string>()
  const open = async (file: string): Promise<Session> => {
    const s = await openModel(bundle, target, ctx, file)
    modelFiles.set(s, file)
    return s
  }
  try {
    hooks.onStage?.('loading base model', 0.2)
    const base = await open(bundle.base.file)
    sessions.push(base)
    const models = new Map<string, BaseModel>([
      ['base', new BaseModel(base, bundle.manifest.base.hiddenSize)]
    ])
    for (const [i, donor] of bundle.donors.entries()) {
      hooks.onStage?.(
        `loading donor ${donor.ref.id}`,
        0.2 + (0.6 * (i + 1)) / (bundle.donors.length + 1)
      )
      const s = await open(donor.file)
      sessions.push(s)
      models.set(donor.ref.id, new BaseModel(s, donor.ref.hiddenSize))
    }
    hooks.onStage?.('ready', 1)
    hooks.onCacheResult?.({ ...ctx.result })
    return new Group(bundle, target, tokenizer, models, sessions, { ctx, modelFiles })
  } catch (err) {
    await Promise.all(sessions.map((s) => s.release()))
    throw err
  }
}

class Group implements LoadedGroup {
  readonly summary: BundleSummary
  readonly #lenses = new Map<string, Promise<LensRuntime>>()
  #disposed = false
  #running = Promise.resolve()
  readonly #open: { ctx: OpenContext; modelFiles: Map<Session, string> }
  /** Lens tensors read so far (kept for the host cache). */
  readonly #tensors: Map<string, Float32Array>

  constructor(
    readonly bundle: ValidatedBundle,
    readonly target: SessionTarget,
    readonly tokenizer: TextTokenizer,
    readonly models: Map<string, BaseModel>,
    readonly sessions: Session[],
    open: { ctx: OpenContext; modelFiles: Map<Session, string> }
  ) {
    this.summary = bundle.summary
    this.#open = open
    this.#tensors = new Map(open.ctx.cached?.tensors ?? [])
  }

  async #openLensModel(file: string): Promise<Session> {
    const s = await openModel(this.bundle, this.target, this.#open.ctx, file)
    this.#open.modelFiles.set(s, file)
    return s
  }

  async #tensor(file: string): Promise<Float32Array> {
    let t = this.#tensors.get(file)
    if (!t) {
      t = await readFloats(file)
      this.#tensors.set(file, t)
    }
    return t
  }

  get autoRowsPerBatch(): number {
    return this.#autoRows()
  }

  tokenize(text: string): { ids: number[]; tokens: string[] } {
    return this.tokenizer.encode(text)
  }

  #lens(id: string): Promise<LensRuntime> {
    const resolved = this.bundle.lenses.find((l) => l.manifest.id === id)
    if (!resolved) {
      const known = this.bundle.lenses.map((l) => l.manifest.id).join(', ')
      return Promise.reject(
        new AppError(
          'not_found',
          `no lens "${id}" in group ${this.summary.groupId} (lenses: ${known})`,
          { field: 'lensId' }
        )
      )
    }
    let p = this.#lenses.get(id)
    if (!p) {
      p = this.#loadLens(resolved)
      // A failed load is not cached, so a later call can retry.
      p.catch(() => this.#lenses.delete(id))
      this.#lenses.set(id, p)
    }
    return p
  }

  async #loadLens(resolved: ResolvedLens): Promise<LensRuntime> {
    const projection = await this.#openLensModel(resolved.projectionFile)
    let head: Session
    try {
      head = await this.#openLensModel(resolved.headFile)
    } catch (err) {
      // Retrying the lens later must not leave this projection session behind.
      await projection.release()
      throw err
    }
    this.sessions.push(projection, head)
    return {
      resolved,
      projection,
      head,
      decoderPrefix: await this.#tensor(resolved.decoderPrefix.file),
      encoderPrefix: await this.#tensor(resolved.encoderPrefix.file),
      encoderSuffix: resolved.encoderSuffix
        ? await this.#tensor(resolved.encoderSuffix.file)
        : undefined,
      lastRowAdd: resolved.lastRowAdd ? await this.#tensor(resolved.lastRowAdd.file) : undefined
    }
  }

  /** Lens parts are loaded on first use; this loads them ahead (e.g. when a lens is selected). */
  async prepareLens(id: string): Promise<void> {
    await this.#lens(id)
  }

  analyze(req: AnalyzeRequest, hooks: AnalyzeHooks = {}): Promise<AnalysisResult> {
    // One analysis at a time per group: ONNX Runtime sessions are not meant for concurrent runs
    // from one thread pool, and timings would be meaningless.
    const run = this.#running.then(() => this.#analyze(req, hooks))
    this.#running = run.then(
      () => undefined,
      () => undefined
    )
    return run
  }

  generate(req: GenerateRequest): Promise<GenerationResult> {
    const run = this.#running.then(() => {
      if (this.#disposed) throw new AppError('unavailable', 'group was disposed')
      return runGeneration(this, req)
    })
    this.#running = run.then(
      () => undefined,
      () => undefined
    )
    return run
  }

  async #analyze(req: AnalyzeRequest, hooks: AnalyzeHooks): Promise<AnalysisResult> {
    if (this.#disposed) throw new AppError('unavailable', 'group was disposed')
    const t0 = performance.now()
    const parsed = AnalyzeOptionsSchema.safeParse(req.options ?? {})
    if (!parsed.success) {
      const { message, field } = describeZodError(parsed.error, 'options')
      throw new AppError('invalid_input', message, { field })
    }
    const opts = parsed.data
    const lens = await this.#lens(req.lensId)
    const lm = lens.resolved.manifest
    const orig = this.models.get(lm.orig)!
    const base = this.models.get('base')!
    const d = this.bundle.manifest.base.hiddenSize
    const T = lm.explanationTokens
    const K = opts.bestOfK

    const { ids, tokens } = this.tokenizer.encode(req.text)
    if (ids.length === 0)
      throw new AppError('invalid_input', 'the text has no tokens', { field: 'text' })
    const origRef =
      lm.orig === 'base'
        ? this.bundle.manifest.base
        : this.bundle.donors.find((m) => m.ref.id === lm.orig)!.ref
    if (ids.length > origRef.maxPositions) {
      throw new AppError(
        'invalid_input',
        `the text has ${ids.length} tokens; this model takes at most ${origRef.maxPositions}`,
        { field: 'text' }
      )
    }
    const positions = positionsInLastMessages(
      this.#positions(req, opts, ids.length),
      ids,
      opts.lastNMessages,
      this.tokenizer
    )
    const rowsBudget = opts.rowsPerBatch ?? this.#autoRows()
    const perBatch = Math.max(1, Math.floor(rowsBudget / K))
    const batches: number[][] = []
    for (let i = 0; i < positions.length; i += perBatch)
      batches.push(positions.slice(i, i + perBatch))

    const timings: Record<string, number> = { tokenizeMs: performance.now() - t0 }
    const add = (k: string, since: number): void => {
      timings[k] = (timings[k] ?? 0) + performance.now() - since
    }
    let t = performance.now()
    const acts = await orig.activations(ids, lm.layer)
    add('activationsMs', t)

    const rows: AnalysisRow[] = []
    let status: 'completed' | 'cancelled' = 'completed'
    const loopStart = performance.now()
    for (const [bi, batch] of batches.entries()) {
      if (hooks.isCancelled?.()) {
        status = 'cancelled'
        break
      }
      const b = batch.length
      const target = new Float32Array(b * d)
      batch.forEach((p, i) => target.set(acts.subarray(p * d, (p + 1) * d), i * d))

      // Decoder: project once per position; its K rows (row = i·K + k) share the vectors through
      // patch_index, so they are not copied K times on the host.
      t = performance.now()
      const proj = await lens.projection.run({ activations: new Tensor('float32', target, [b, d]) })
      const patch = proj.patch_vectors!.data as Float32Array
      const np = lm.decoder.patchLayers
      const sampleRows = batch.flatMap((position) =>
        Array.from({ length: K }, (_, rollout) => ({ position, rollout }))
      )
      const explIds = await base.decode({
        prefix: lens.decoderPrefix,
        prefixRows: lens.resolved.decoderPrefix.shape[0]!,
        patch,
        patchRows: b,
        patchIndex: Array.from({ length: b * K }, (_, row) => Math.floor(row / K)),
        rows: b * K,
        patchLayers: np,
        embedPos: lm.decoder.embedPos,
        uniforms: uniformsFor(opts.seed, sampleRows, T),
        steps: T,
        temperature: opts.temperature
      })
      add('decodeMs', t)

      t = performance.now()
      const repTarget = new Float32Array(b * K * d)
      for (let i = 0; i < b; i++) {
        for (let k = 0; k < K; k++)
          repTarget.set(target.subarray(i * d, (i + 1) * d), (i * K + k) * d)
      }
      const all = await this.#reconstruct(
        lens,
        explIds,
        batch.flatMap((p) => Array(K).fill(ids[p]!)),
        repTarget,
        rowsBudget
      )
      const chosen = batch.map((_, i) => i * K + argminRange(all.mse, i * K, K))
      const bestIds = new Int32Array(b * T)
      const bestRecon = new Float32Array(b * d)
      chosen.forEach((row, i) => {
        bestIds.set(explIds.subarray(row * T, (row + 1) * T), i * T)
        bestRecon.set(all.recon.subarray(row * d, (row + 1) * d), i * d)
      })
      add('encodeMs', t)

      let sal: Float32Array | null = null
      if (opts.salience) {
        t = performance.now()
        const ablated = new Int32Array(b * T * T)
        const abTarget = new Float32Array(b * T * d)
        const abCurrent: number[] = []
        for (let i = 0; i < b; i++) {
          for (let j = 0; j < T; j++) {
            const r = i * T + j
            ablated.set(bestIds.subarray(i * T, (i + 1) * T), r * T)
            ablated[r * T + j] = this.bundle.manifest.conventions.nullTokenId
            abTarget.set(target.subarray(i * d, (i + 1) * d), r * d)
            abCurrent.push(ids[batch[i]!]!)
          }
        }
        sal = (await this.#reconstruct(lens, ablated, abCurrent, abTarget, rowsBudget)).mse
        add('salienceMs', t)
      }

      let kl: Float32Array | null = null
      if (opts.kl) {
        t = performance.now()
        // Always the whole text, never truncated after this batch's last position: the unmodified
        // pass then has the same shapes in every batch, so KL is bit-identical however positions are
        // split across batches or devices.
        kl = await orig.kl(ids, batch, bestRecon, lm.layer)
        add('klMs', t)
      }

      let lensTop: Int32Array | null = null
      const topK = Math.min(T, 10)
      if (opts.logitLens) {
        t = performance.now()
        lensTop = await orig.logitLens(target, b, topK)
        add('logitLensMs', t)
      }

      const newRows: AnalysisRow[] = batch.map((position, i) => {
        const expl = Array.from(bestIds.subarray(i * T, (i + 1) * T))
        const structured = expl.map((id) => this.tokenizer.decodeOne(id))
        let explanation = this.tokenizer.decode(expl)
        if (lm.encoder.addCurrentToken) {
          structured.push(`[${tokens[position]}]`)
          explanation += `[${tokens[position]}]`
        }
        const mse = all.mse[chosen[i]!]!
        return {
          position,
          token: tokens[position]!,
          tokenId: ids[position]!,
          explanation,
          explanationStructured: structured,
          mse,
          relativeRmse: relativeRmse(mse, target.subarray(i * d, (i + 1) * d)),
          klDivergence: kl ? klOrZeroIfRounding(kl[i]!) : null,
          tokenSalience: sal
            ? Array.from(sal.subarray(i * T, (i + 1) * T), (m) => salience(m, mse))
            : [],
          logitLensTop: lensTop
            ? Array.from(lensTop.subarray(i * topK, (i + 1) * topK), (id) =>
                this.tokenizer.decodeOne(id)
              ).join(' ')
            : null
        }
      })
      rows.push(...newRows)
      const elapsed = (performance.now() - loopStart) / 1000
      const progress: AnalysisProgress = {
        batch: bi + 1,
        totalBatches: batches.length,
        rowsDone: rows.length,
        rowsTotal: positions.length,
        etaSeconds: (elapsed / rows.length) * (positions.length - rows.length)
      }
      hooks.onBatch?.(newRows, progress)
    }
    timings.totalMs = performance.now() - t0
    return {
      metadata: {
        groupId: this.summary.groupId,
        lensId: lm.id,
        layer: lm.layer,
        bundleHash: this.summary.contentHash,
        engineVersion: ENGINE_VERSION,
        executionProvider: this.target.provider,
        options: { ...opts, rowsPerBatch: rowsBudget, positionsPerBatch: perBatch },
        seed: opts.seed,
        numTokens: ids.length,
        analysedPositions: rows.length,
        timings,
        status
      },
      rows
    }
  }

  async scoreExplanations(req: ScoreRequest): Promise<ExplanationScore[]> {
    const lens = await this.#lens(req.lensId)
    const lm = lens.resolved.manifest
    const T = lm.explanationTokens
    const d = this.bundle.manifest.base.hiddenSize
    const { ids } = this.tokenizer.encode(req.text)
    if (!Number.isInteger(req.position) || req.position < 0 || req.position >= ids.length) {
      throw new AppError(
        'invalid_input',
        `position ${req.position} is outside the text's ${ids.length} tokens`,
        { field: 'position' }
      )
    }
    if (req.explanations.length === 0) return []
    const acts = await this.models
      .get(lm.orig)!
      .activations(ids.slice(0, req.position + 1), lm.layer)
    const target = acts.slice(req.position * d, (req.position + 1) * d)
    const n = req.explanations.length
    const explIds = new Int32Array(n * T).fill(this.bundle.manifest.conventions.nullTokenId)
    const lists = req.explanations.map((e, i) => {
      const list = this.tokenizer.encodePlain(e).slice(0, T)
      explIds.set(list, i * T)
      return Array.from(explIds.subarray(i * T, (i + 1) * T))
    })
    const repTarget = new Float32Array(n * d)
    for (let i = 0; i < n; i++) repTarget.set(target, i * d)
    const { mse } = await this.#reconstruct(
      lens,
      explIds,
      Array(n).fill(ids[req.position]!),
      repTarget,
      this.#autoRows()
    )
    return lists.map((list, i) => ({
      explanation: this.tokenizer.decode(list),
      ids: list,
      mse: mse[i]!,
      relativeRmse: relativeRmse(mse[i]!, target)
    }))
  }

  #autoRows(): number {
    const kind = this.target.provider === 'cpu' ? 'cpu' : 'gpu'
    return this.bundle.manifest.rowsPerBatch?.[kind] ?? DEFAULT_ROWS_PER_BATCH[kind]
  }

  #positions(req: AnalyzeRequest, opts: AnalyzeOptions, n: number): number[] {
    if (req.positionList) {
      for (const [i, p] of req.positionList.entries()) {
        if (!Number.isInteger(p) || p < 0 || p >= n) {
          throw new AppError('invalid_input', `position ${p} is outside the text's ${n} tokens`, {
            field: `positionList.${i}`
          })
        }
      }
      return [...new Set(req.positionList)].sort((a, b) => a - b)
    }
    if (opts.positions) {
      const { start, end } = opts.positions
      if (start >= n) {
        throw new AppError(
          'invalid_input',
          `positions start ${start} is outside the text's ${n} tokens`,
          { field: 'options.positions.start' }
        )
      }
      return Array.from({ length: Math.min(end, n) - start }, (_, i) => start + i)
    }
    return Array.from({ length: n }, (_, i) => i)
  }

  /** Encoder + lens head for explanation rows, chunked by the rows budget. */
  async #reconstruct(
    lens: LensRuntime,
    explIds: Int32Array,
    currentIds: number[],
    target: Float32Array,
    budget: number
  ): Promise<{ mse: Float32Array; recon: Float32Array }> {
    const lm = lens.resolved.manifest
    const T = lm.explanationTokens
    const d = this.bundle.manifest.base.hiddenSize
    const rows = currentIds.length
    const m = T + (lm.encoder.addCurrentToken ? 1 : 0)
    const mse = new Float32Array(rows)
    const recon = new Float32Array(rows * d)
    const base = this.models.get('base')!
    for (let start = 0; start < rows; start += budget) {
      const n = Math.min(budget, rows - start)
      const encIds = new Int32Array(n * m)
      for (let r = 0; r < n; r++) {
        encIds.set(explIds.subarray((start + r) * T, (start + r + 1) * T), r * m)
        if (m > T) encIds[r * m + T] = currentIds[start + r]!
      }
      const hidden = await base.encode({
        prefix: lens.encoderPrefix,
        prefixRows: lens.resolved.encoderPrefix.shape[0]!,
        ids: encIds,
        rows: n,
        idsPerRow: m,
        suffix: lens.encoderSuffix,
        lastAdd: lens.lastRowAdd,
        layer: lm.encoder.outputLayer
      })
      const out = await lens.head.run({
        hidden: new Tensor('float32', hidden, [n, d]),
        target: new Tensor('float32', target.slice(start * d, (start + n) * d), [n, d])
      })
      mse.set(out.mse!.data as Float32Array, start)
      recon.set(out.recon!.data as Float32Array, start * d)
    }
    return { mse, recon }
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    await this.#running
    const lenses = await Promise.allSettled([...this.#lenses.values()])
    void lenses
    await Promise.all(this.sessions.map((s) => s.release()))
    await this.#keepForReload().catch(() => undefined)
  }

  /** Hands the group's parts to the host cache, so that a reload skips what it can. */
  async #keepForReload(): Promise<void> {
    const { ctx, modelFiles } = this.#open
    const host = ctx.cache?.host
    if (!host || host.budgetBytes === 0 || !ctx.fingerprint) return
    const models = new Map<string, Uint8Array>()
    for (const [session, file] of modelFiles) {
      let bytes = session.optimizedBytes
      if (!bytes && ctx.cache?.optimized) {
        const stored = await ctx.cache.optimized.open(
          this.summary.contentHash,
          relTo(this.bundle, file),
          this.target
        )
        if (stored.kind === 'hit') bytes = stored.bytes
        else await stored.abandon()
      }
      if (bytes) models.set(file, bytes)
    }
    const tokenizerBytes = await fs
      .stat(this.bundle.tokenizerFile)
      .then((st) => st.size)
      .catch(() => 0)
    host.put({
      dir: this.bundle.dir,
      target: this.target,
      fingerprint: ctx.fingerprint,
      bundle: this.bundle,
      tokenizer: this.tokenizer,
      models,
      tensors: this.#tensors,
      tokenizerBytes
    })
  }
}
