/**
 * The analysis of a loaded group: for every planned position, the activation is explained
 * (explain.ts: best-of-K or the iterative optimiser), and KL and the logit lens are measured for
 * it. Also the scoring of given explanations. Loading and lens management live in loading.ts and
 * lenses.ts; the research modes (intervention, layer sweep) in research/.
 */
import {
  AnalyzeOptionsSchema,
  type AnalyzeOptions,
  type AnalysisProgress,
  type AnalysisResult,
  type AnalysisRow
} from '@shared/domain/analysis'
import { AppError, describeZodError } from '@shared/ipc/errors'
import type { LensRuntime } from './lenses'
import type { ModelRef } from './bundle/manifest'
import type { GroupParts } from './loading'
import type { SessionTarget } from './ort'
import type { BaseModel } from './baseModel'
import { analysisRow, reconstruct, type ExplainContext } from './explain'
import { explainTargets } from './explainTargets'
import { relativeRmse } from './metrics'
import { requireFinite } from './finite'
import {
  autoRowsPerBatch,
  planPositions,
  positionsPerBatch,
  rolloutsPerPosition
} from './positions'
import type { AnalyzeHooks, AnalyzeRequest, ExplanationScore, ScoreRequest } from './types'
import { ENGINE_VERSION } from './version'

/** Analysis options checked, or the caller's error naming the field. */
export function parseAnalyzeOptions(options: unknown): AnalyzeOptions {
  const parsed = AnalyzeOptionsSchema.safeParse(options ?? {})
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error, 'options')
    throw new AppError('invalid_input', message, { field })
  }
  return parsed.data
}

/** The orig model's reference (the base, or the donor a lens names). */
export function origRefOf(parts: Pick<GroupParts, 'bundle'>, origId: string): ModelRef {
  const { bundle } = parts
  return origId === 'base'
    ? bundle.manifest.base
    : bundle.donors.find((m) => m.ref.id === origId)!.ref
}

/** A text's ids and tokens as the analysis sees them; empty or too long for the orig model is the caller's error. */
export function tokenizeForLens(
  parts: Pick<GroupParts, 'bundle' | 'tokenizer'>,
  origId: string,
  text: string
): { ids: number[]; tokens: string[]; sources: (string | undefined)[] } {
  const { ids, tokens, sources } = parts.tokenizer.encode(text)
  if (ids.length === 0)
    throw new AppError('invalid_input', 'the text has no tokens', { field: 'text' })
  const max = origRefOf(parts, origId).maxPositions
  if (ids.length > max) {
    throw new AppError(
      'invalid_input',
      `the text has ${ids.length} tokens; this model takes at most ${max}`,
      { field: 'text' }
    )
  }
  return { ids, tokens, sources }
}

/** Top min(T, 10) logit-lens tokens of each target, space-joined. */
export async function logitLensTop(
  parts: Pick<GroupParts, 'tokenizer'>,
  orig: BaseModel,
  target: Float32Array,
  b: number,
  T: number
): Promise<string[]> {
  const topK = Math.min(T, 10)
  const top = await orig.logitLens(target, b, topK)
  return Array.from({ length: b }, (_, i) =>
    Array.from(top.subarray(i * topK, (i + 1) * topK), (id) => parts.tokenizer.decodeOne(id)).join(
      ' '
    )
  )
}

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
  const opts = parseAnalyzeOptions(req.options)
  const lens = await lensOf(req.lensId)
  const lm = lens.resolved.manifest
  const orig = parts.models.get(lm.orig)!
  const d = bundle.manifest.base.hiddenSize
  const T = lm.explanationTokens
  const { ids, tokens, sources } = tokenizeForLens(parts, lm.orig, req.text)
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
  const perBatch = positionsPerBatch(rowsBudget, rolloutsPerPosition(opts))
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
  requireFinite(bundle.dir, lens, `activations of model "${lm.orig}" at layer ${lm.layer}`, acts)

  const ctx: ExplainContext = {
    parts,
    lens,
    opts,
    rowsBudget,
    textIds: ids,
    time: add,
    onOptimiser: (p) =>
      hooks.onOptimiser?.({ ...p, batch: currentBatch, totalBatches: batches.length }),
    isCancelled: hooks.isCancelled
  }
  let currentBatch = 0
  const rows: AnalysisRow[] = []
  let status: 'completed' | 'cancelled' = 'completed'
  const loopStart = performance.now()
  for (const [bi, batch] of batches.entries()) {
    if (hooks.isCancelled?.()) {
      status = 'cancelled'
      break
    }
    currentBatch = bi + 1
    const b = batch.length
    const target = new Float32Array(b * d)
    // A loop, not a per-call closure (engine/explain.ts, "Hot loops").
    for (let i = 0; i < b; i++) {
      const p = batch[i]!
      target.set(acts.subarray(p * d, (p + 1) * d), i * d)
    }
    const ex = await explainTargets(ctx, batch, target)

    let kl: Float32Array | null = null
    if (opts.kl) {
      t = performance.now()
      // Always the whole text, never truncated after this batch's last position: the unmodified
      // pass then has the same shapes in every batch, so KL is bit-identical however positions are
      // split across batches or devices.
      kl = await orig.kl(ids, batch, ex.recon, lm.layer)
      requireFinite(bundle.dir, lens, 'KL divergence', kl)
      add('klMs', t)
    }

    let lensTop: string[] | null = null
    if (opts.logitLens) {
      t = performance.now()
      lensTop = await logitLensTop(parts, orig, target, b, T)
      add('logitLensMs', t)
    }

    const newRows: AnalysisRow[] = batch.map((position, i) =>
      analysisRow(
        ctx,
        ex,
        i,
        {
          position,
          token: tokens[position]!,
          tokenId: ids[position]!,
          sourceText: sources[position]
        },
        target.subarray(i * d, (i + 1) * d),
        kl ? kl[i]! : null,
        lensTop ? lensTop[i]! : null
      )
    )
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
      origModel: modelName(origRefOf(parts, lm.orig)),
      donorModel: lm.orig === 'base' ? null : modelName(origRefOf(parts, lm.orig)),
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
