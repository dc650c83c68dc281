/**
 * Explaining activations with a lens: the decoder verbalises each target K times (or the iterative
 * optimiser searches, research/optimise.ts), the encoder and lens head reconstruct each
 * explanation, the lowest MSE wins, and salience ablates every explanation token. The analysis,
 * the layer sweep and the intervention all explain through here, so an explanation of the same
 * activation with the same options is the same whichever of them asks.
 */
import type { AnalysisRow, AnalyzeOptions, OptimiserProgress } from '@shared/domain/analysis'
import type { LensRuntime } from './lenses'
import type { GroupParts } from './loading'
import { argminRange, klOrZeroIfRounding, relativeRmse, salience } from './metrics'
import { Tensor } from './ort'
import { requireFinite, requirePatchShape } from './finite'
import { uniformsFor } from './random'

/*
 * Hot loops. The per-analysis loops here (and in random.ts, baseModel.ts) are plain loops, not
 * callbacks made at each call (`forEach((i, n) => ...)`, `Array.from(xs, (x) => ...)`). Closures
 * made at one site share their optimized code through a feedback vector that holds it only weakly,
 * so a full collection while none of them is alive (a worker's unload collects twice, between
 * analyses) throws that code away and the next analysis compiles every such closure again: on a
 * replica's device, in the background threads of the CPU its first analyses need (V8 11.3; no flag
 * keeps it; docs/benchmarks.md, "Devices", 2026-12-01). A module's own functions hold their code.
 */

/** What one explanation run needs: the group, the lens, the options and the analysed text. */
export interface ExplainContext {
  parts: GroupParts
  lens: LensRuntime
  opts: AnalyzeOptions
  /** The analysis's rows budget: at most this many encoder rows per graph run (`encoderRunRows`). */
  rowsBudget: number
  /** The analysed text's ids (the current token of a position is `textIds[position]`). */
  textIds: readonly number[]
  /** Adds elapsed milliseconds to a named timing. */
  time(name: string, since: number): void
  /** The optimiser's progress inside a batch (when the options ask for it). */
  onOptimiser?: (p: Omit<OptimiserProgress, 'batch' | 'totalBatches'>) => void
  /** Polled between the optimiser's steps: true keeps the explanations found so far. */
  isCancelled?: () => boolean
}

/** The chosen explanation of each target of a batch. */
export interface Explained {
  /** (b, T) explanation ids. */
  ids: Int32Array
  /** (b, d) reconstructions Â. */
  recon: Float32Array
  /** (b) MSE(A, Â). */
  mse: Float32Array
  /** (b, T) MSE with token j replaced by the null token, when salience is wanted. */
  ablatedMse: Float32Array | null
  /** Optimised explanations: the starting candidate's MSE and the rollouts spent, per target. */
  mseBefore: Float32Array | null
  rollouts: Int32Array | null
}

/** Decoder patch vectors of every target: (b, Np, d). */
export async function projectTargets(
  lens: LensRuntime,
  target: Float32Array,
  b: number,
  d: number,
  /** The bundle folder, to name the lens's files in errors. */
  bundleDir: string
): Promise<Float32Array> {
  const proj = await lens.projection.run({ activations: new Tensor('float32', target, [b, d]) })
  const patch = proj.patch_vectors!.data as Float32Array
  requirePatchShape(bundleDir, lens, patch, b, d)
  requireFinite(bundleDir, lens, 'decoder projection', patch)
  return patch
}

/** Each row's target (patch_index), in a loop ("Hot loops"). */
function rowTargets(rows: readonly SampleRow[]): number[] {
  const out = new Array<number>(rows.length)
  for (let r = 0; r < rows.length; r++) out[r] = rows[r]!.target
  return out
}

/** One decoder row: which target of the batch it verbalises, and its sample stream. */
export interface SampleRow {
  /** Index of the target in the batch (its patch vectors). */
  target: number
  position: number
  rollout: number
}

/**
 * Explanations sampled for `rows` in one decoder run at `temperature`; a row's stream is
 * `u(seed, position, rollout, step)`. With `forced`, row r keeps its first `steps` tokens.
 */
export async function sampleExplanations(
  ctx: ExplainContext,
  patch: Float32Array,
  batchSize: number,
  rows: readonly SampleRow[],
  temperature: number,
  forced?: { ids: Int32Array; steps: number }
): Promise<Int32Array> {
  const lm = ctx.lens.resolved.manifest
  const T = lm.explanationTokens
  return ctx.parts.models.get('base')!.decode({
    prefix: ctx.lens.decoderPrefix,
    prefixRows: ctx.lens.resolved.decoderPrefix.shape[0]!,
    patch,
    patchRows: batchSize,
    patchIndex: rowTargets(rows),
    rows: rows.length,
    patchLayers: lm.decoder.patchLayers,
    embedPos: lm.decoder.embedPos,
    uniforms: uniformsFor(ctx.opts.seed, rows, T),
    steps: T,
    temperature,
    ...(forced ? { forced: { ids: forced.ids, width: T, steps: forced.steps } } : {})
  })
}

/** Encoder + lens head for explanation rows, chunked by the rows budget. */
export async function reconstruct(
  parts: GroupParts,
  lens: LensRuntime,
  explIds: Int32Array,
  currentIds: readonly number[],
  target: Float32Array,
  budget: number
): Promise<{ mse: Float32Array; recon: Float32Array }> {
  const lm = lens.resolved.manifest
  const T = lm.explanationTokens
  const d = parts.bundle.manifest.base.hiddenSize
  const rows = currentIds.length
  const m = T + (lm.encoder.addCurrentToken ? 1 : 0)
  const mse = new Float32Array(rows)
  const recon = new Float32Array(rows * d)
  const base = parts.models.get('base')!
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
  requireFinite(parts.bundle.dir, lens, 'encoder and lens head (mse)', mse)
  requireFinite(parts.bundle.dir, lens, 'encoder and lens head (reconstruction)', recon)
  return { mse, recon }
}

/** Each target repeated `times` times, row-major: (b·times, d). */
export function repeatRows(
  target: Float32Array,
  b: number,
  d: number,
  times: number
): Float32Array {
  const out = new Float32Array(b * times * d)
  for (let i = 0; i < b; i++) {
    for (let k = 0; k < times; k++)
      out.set(target.subarray(i * d, (i + 1) * d), (i * times + k) * d)
  }
  return out
}

/**
 * MSE with each explanation token replaced by the null token in turn: (b, T). `which` limits it to
 * some targets of the batch (the optimiser's); the rows of the others stay 0.
 */
export async function ablatedMse(
  ctx: ExplainContext,
  positions: readonly number[],
  ids: Int32Array,
  target: Float32Array,
  which?: readonly number[]
): Promise<Float32Array> {
  const { parts } = ctx
  const T = ctx.lens.resolved.manifest.explanationTokens
  const d = parts.bundle.manifest.base.hiddenSize
  const nullId = parts.bundle.manifest.conventions.nullTokenId
  const targets = which ?? positions.map((_, i) => i)
  const ablated = new Int32Array(targets.length * T * T)
  const abTarget = new Float32Array(targets.length * T * d)
  const abCurrent: number[] = []
  for (let n = 0; n < targets.length; n++) {
    const i = targets[n]!
    for (let j = 0; j < T; j++) {
      const r = n * T + j
      ablated.set(ids.subarray(i * T, (i + 1) * T), r * T)
      ablated[r * T + j] = nullId
      abTarget.set(target.subarray(i * d, (i + 1) * d), r * d)
      abCurrent.push(ctx.textIds[positions[i]!]!)
    }
  }
  const { mse } = await reconstruct(parts, ctx.lens, ablated, abCurrent, abTarget, ctx.rowsBudget)
  if (!which) return mse
  const out = new Float32Array(positions.length * T)
  for (let n = 0; n < targets.length; n++) {
    const i = targets[n]!
    out.set(mse.subarray(n * T, (n + 1) * T), i * T)
  }
  return out
}

/** Best-of-K explanations of each target (activation `target[i]` of token `positions[i]`). */
export async function explainBestOfK(
  ctx: ExplainContext,
  positions: readonly number[],
  target: Float32Array
): Promise<Explained> {
  const { parts, lens, opts } = ctx
  const T = lens.resolved.manifest.explanationTokens
  const d = parts.bundle.manifest.base.hiddenSize
  const K = opts.bestOfK
  const b = positions.length

  // Decoder: project once per position; its K rows (row = i·K + k) share the vectors through
  // patch_index, so they are not copied K times on the host.
  let t = performance.now()
  const patch = await projectTargets(lens, target, b, d, parts.bundle.dir)
  const rows: SampleRow[] = []
  const currentIds: number[] = []
  for (let i = 0; i < b; i++)
    for (let rollout = 0; rollout < K; rollout++) {
      rows.push({ target: i, position: positions[i]!, rollout })
      currentIds.push(ctx.textIds[positions[i]!]!)
    }
  const explIds = await sampleExplanations(ctx, patch, b, rows, opts.temperature)
  ctx.time('decodeMs', t)

  t = performance.now()
  const all = await reconstruct(
    parts,
    lens,
    explIds,
    currentIds,
    repeatRows(target, b, d, K),
    ctx.rowsBudget
  )
  const chosen = new Array<number>(b)
  for (let i = 0; i < b; i++) chosen[i] = i * K + argminRange(all.mse, i * K, K)
  const ids = new Int32Array(b * T)
  const recon = new Float32Array(b * d)
  const mse = new Float32Array(b)
  for (let i = 0; i < b; i++) {
    const row = chosen[i]!
    ids.set(explIds.subarray(row * T, (row + 1) * T), i * T)
    recon.set(all.recon.subarray(row * d, (row + 1) * d), i * d)
    mse[i] = all.mse[row]!
  }
  ctx.time('encodeMs', t)

  let ablated: Float32Array | null = null
  if (opts.salience) {
    t = performance.now()
    ablated = await ablatedMse(ctx, positions, ids, target)
    ctx.time('salienceMs', t)
  }
  return { ids, recon, mse, ablatedMse: ablated, mseBefore: null, rollouts: null }
}

/** The explanation of target i as text: decoded with specials kept, `[token]` appended when the lens encodes the current token. */
export function explanationText(
  ctx: Pick<ExplainContext, 'parts' | 'lens'>,
  ids: ArrayLike<number>,
  token: string
): { explanation: string; structured: string[] } {
  const { tokenizer } = ctx.parts
  const list = Array.from(ids)
  const structured = new Array<string>(list.length)
  for (let k = 0; k < list.length; k++) structured[k] = tokenizer.decodeOne(list[k]!)
  let explanation = tokenizer.decode(list)
  if (ctx.lens.resolved.manifest.encoder.addCurrentToken) {
    structured.push(`[${token}]`)
    explanation += `[${token}]`
  }
  return { explanation, structured }
}

/** Each token's salience from its ablated MSE, in a loop ("Hot loops"). */
function tokenSalience(ablatedMse: Float32Array, mse: number): number[] {
  const out = new Array<number>(ablatedMse.length)
  for (let j = 0; j < ablatedMse.length; j++) out[j] = salience(ablatedMse[j]!, mse)
  return out
}

/** An analysis row from target i of an explained batch. */
export function analysisRow(
  ctx: Pick<ExplainContext, 'parts' | 'lens' | 'opts'>,
  ex: Explained,
  i: number,
  at: { position: number; token: string; tokenId: number; sourceText?: string | undefined },
  target: Float32Array,
  kl: number | null,
  logitLensTop: string | null
): AnalysisRow {
  const T = ctx.lens.resolved.manifest.explanationTokens
  const { explanation, structured } = explanationText(
    ctx,
    ex.ids.subarray(i * T, (i + 1) * T),
    at.token
  )
  const mse = ex.mse[i]!
  const row: AnalysisRow = {
    position: at.position,
    token: at.token,
    tokenId: at.tokenId,
    ...(at.sourceText === undefined ? {} : { sourceText: at.sourceText }),
    explanation,
    explanationStructured: structured,
    mse,
    relativeRmse: relativeRmse(mse, target),
    klDivergence: kl === null ? null : klOrZeroIfRounding(kl),
    tokenSalience:
      ctx.opts.salience && ex.ablatedMse
        ? tokenSalience(ex.ablatedMse.subarray(i * T, (i + 1) * T), mse)
        : [],
    logitLensTop
  }
  if (ex.mseBefore) row.mseBefore = ex.mseBefore[i]!
  if (ex.rollouts) row.rollouts = ex.rollouts[i]!
  return row
}
