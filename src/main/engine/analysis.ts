/**
 * The analysis of a loaded group: for every planned position, the decoder verbalises the
 * activation K times, the encoder and lens head reconstruct it from each explanation, the best of
 * K is kept, and salience, KL and the logit lens are measured for it. Also the scoring of given
 * explanations. Loading and lens management live in loading.ts and lenses.ts.
 */
import {
  AnalyzeOptionsSchema,
  type AnalysisProgress,
  type AnalysisResult,
  type AnalysisRow
} from '@shared/domain/analysis'
import { AppError, describeZodError } from '@shared/ipc/errors'
import type { LensRuntime } from './lenses'
import type { GroupParts } from './loading'
import { argminRange, klOrZeroIfRounding, relativeRmse, salience } from './metrics'
import { Tensor, type SessionTarget } from './ort'
import { autoRowsPerBatch, planPositions, positionsPerBatch } from './positions'
import { uniformsFor } from './random'
import type { AnalyzeHooks, AnalyzeRequest, ExplanationScore, ScoreRequest } from './types'
import { ENGINE_VERSION } from './version'

/** Rows per engine batch when a request names none (the manifest's figure for this provider). */
export function groupAutoRows(parts: Pick<GroupParts, 'bundle' | 'target'>): number {
  return autoRowsPerBatch(parts.bundle.manifest.rowsPerBatch, parts.target.provider)
}

export async function analyzeText(
  parts: GroupParts,
  lensOf: (lensId: string) => Promise<LensRuntime>,
  req: AnalyzeRequest,
  hooks: AnalyzeHooks
): Promise<AnalysisResult> {
  const t0 = performance.now()
  const { bundle, tokenizer } = parts
  const parsed = AnalyzeOptionsSchema.safeParse(req.options ?? {})
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error, 'options')
    throw new AppError('invalid_input', message, { field })
  }
  const opts = parsed.data
  const lens = await lensOf(req.lensId)
  const lm = lens.resolved.manifest
  const orig = parts.models.get(lm.orig)!
  const base = parts.models.get('base')!
  const d = bundle.manifest.base.hiddenSize
  const T = lm.explanationTokens
  const K = opts.bestOfK

  const { ids, tokens, sources } = tokenizer.encode(req.text)
  if (ids.length === 0)
    throw new AppError('invalid_input', 'the text has no tokens', { field: 'text' })
  const origRef =
    lm.orig === 'base' ? bundle.manifest.base : bundle.donors.find((m) => m.ref.id === lm.orig)!.ref
  if (ids.length > origRef.maxPositions) {
    throw new AppError(
      'invalid_input',
      `the text has ${ids.length} tokens; this model takes at most ${origRef.maxPositions}`,
      { field: 'text' }
    )
  }
  const positions = planPositions(
    ids,
    {
      positionList: req.positionList,
      positions: opts.positions,
      lastNMessages: opts.lastNMessages
    },
    tokenizer
  )
  const rowsBudget = opts.rowsPerBatch ?? groupAutoRows(parts)
  const perBatch = positionsPerBatch(rowsBudget, K)
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
    const all = await reconstruct(
      parts,
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
          ablated[r * T + j] = bundle.manifest.conventions.nullTokenId
          abTarget.set(target.subarray(i * d, (i + 1) * d), r * d)
          abCurrent.push(ids[batch[i]!]!)
        }
      }
      sal = (await reconstruct(parts, lens, ablated, abCurrent, abTarget, rowsBudget)).mse
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
      const structured = expl.map((id) => tokenizer.decodeOne(id))
      let explanation = tokenizer.decode(expl)
      if (lm.encoder.addCurrentToken) {
        structured.push(`[${tokens[position]}]`)
        explanation += `[${tokens[position]}]`
      }
      const mse = all.mse[chosen[i]!]!
      const source = sources[position]
      return {
        position,
        token: tokens[position]!,
        tokenId: ids[position]!,
        ...(source === undefined ? {} : { sourceText: source }),
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
              tokenizer.decodeOne(id)
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
      groupId: bundle.summary.groupId,
      lensId: lm.id,
      layer: lm.layer,
      bundleHash: bundle.summary.contentHash,
      engineVersion: ENGINE_VERSION,
      executionProvider: parts.target.provider,
      options: { ...opts, rowsPerBatch: rowsBudget, positionsPerBatch: perBatch },
      seed: opts.seed,
      numTokens: ids.length,
      analysedPositions: rows.length,
      timings,
      status,
      lensName: lm.name,
      baseModel: modelName(bundle.manifest.base),
      origModel: modelName(origRef),
      donorModel: lm.orig === 'base' ? null : modelName(origRef),
      checkpointPath: bundle.summary.dir,
      device: deviceName(parts.target)
    },
    rows
  }
}

function modelName(ref: { id: string; name?: string }): string {
  return ref.name ?? ref.id
}

/** The device an engine session runs on, as the command line names it. */
function deviceName(target: SessionTarget): string {
  return target.provider === 'cpu' ? 'cpu' : `cuda:${target.deviceIndex ?? 0}`
}

/** Reconstruction error of given explanations for one position (e.g. a user's edit). */
export async function scoreExplanations(
  parts: GroupParts,
  lens: LensRuntime,
  req: ScoreRequest
): Promise<ExplanationScore[]> {
  const { bundle, tokenizer } = parts
  const lm = lens.resolved.manifest
  const T = lm.explanationTokens
  const d = bundle.manifest.base.hiddenSize
  const { ids } = tokenizer.encode(req.text)
  if (!Number.isInteger(req.position) || req.position < 0 || req.position >= ids.length) {
    throw new AppError(
      'invalid_input',
      `position ${req.position} is outside the text's ${ids.length} tokens`,
      { field: 'position' }
    )
  }
  if (req.explanations.length === 0) return []
  const acts = await parts.models
    .get(lm.orig)!
    .activations(ids.slice(0, req.position + 1), lm.layer)
  const target = acts.slice(req.position * d, (req.position + 1) * d)
  const n = req.explanations.length
  const explIds = new Int32Array(n * T).fill(bundle.manifest.conventions.nullTokenId)
  const lists = req.explanations.map((e, i) => {
    const list = tokenizer.encodePlain(e).slice(0, T)
    explIds.set(list, i * T)
    return Array.from(explIds.subarray(i * T, (i + 1) * T))
  })
  const repTarget = new Float32Array(n * d)
  for (let i = 0; i < n; i++) repTarget.set(target, i * d)
  const { mse } = await reconstruct(
    parts,
    lens,
    explIds,
    Array(n).fill(ids[req.position]!),
    repTarget,
    groupAutoRows(parts)
  )
  return lists.map((list, i) => ({
    explanation: tokenizer.decode(list),
    ids: list,
    mse: mse[i]!,
    relativeRmse: relativeRmse(mse[i]!, target)
  }))
}

/** Encoder + lens head for explanation rows, chunked by the rows budget. */
async function reconstruct(
  parts: GroupParts,
  lens: LensRuntime,
  explIds: Int32Array,
  currentIds: number[],
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
  return { mse, recon }
}
