/**
 * A layer sweep at one position (the predecessor's `analyze_all_layers_at_position`,
 * seed-system.md §1.6.2): the residual after every block (or the listed ones) at one token is
 * explained like an analysis row, one row per layer. `trained`: a lens trained at that layer
 * explains it where the group has one (same orig model as the job's lens), the job's lens
 * elsewhere; `fixed`: the job's lens everywhere. A row at the lens's own layer is computed exactly
 * as the analysis computes that position's row (same activation pass, explanation, KL chunk).
 */
import type { AnalysisMetadata, AnalysisResult, AnalysisRow } from '@shared/domain/analysis'
import { SweepRequestSchema, type SweepRequest } from '@shared/domain/research'
import { AppError, describeZodError } from '@shared/ipc/errors'
import {
  groupAutoRows,
  logitLensTop,
  origRefOf,
  parseAnalyzeOptions,
  tokenizeForLens
} from '../analysis'
import { analysisRow, type ExplainContext } from '../explain'
import { explainTargets } from '../explainTargets'
import type { LensRuntime } from '../lenses'
import type { GroupParts } from '../loading'
import type { AnalyzeHooks, SweepEngineRequest } from '../types'
import { ENGINE_VERSION } from '../version'

export function parseSweepRequest(input: unknown): SweepRequest {
  const parsed = SweepRequestSchema.safeParse(input ?? {})
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error, 'sweep')
    throw new AppError('invalid_input', message, { field })
  }
  return parsed.data
}

/** Which lens explains layer `layer`: a lens trained there (same orig model) in `trained` mode, else the job's. */
export function lensForLayer(
  lenses: readonly { id: string; layer: number; orig: string }[],
  chosen: { id: string; layer: number; orig: string },
  layer: number,
  mode: SweepRequest['lenses']
): string {
  if (mode === 'fixed' || chosen.layer === layer) return chosen.id
  return lenses.find((l) => l.layer === layer && l.orig === chosen.orig)?.id ?? chosen.id
}

export async function sweepText(
  parts: GroupParts,
  lensOf: (lensId: string) => Promise<LensRuntime>,
  req: SweepEngineRequest,
  hooks: AnalyzeHooks
): Promise<AnalysisResult> {
  const t0 = performance.now()
  const opts = parseAnalyzeOptions(req.options)
  const sr = parseSweepRequest(req.sweep)
  const chosen = await lensOf(req.lensId)
  const cm = chosen.resolved.manifest
  const { bundle } = parts
  const orig = parts.models.get(cm.orig)!
  const d = bundle.manifest.base.hiddenSize
  const { ids, tokens } = tokenizeForLens(parts, cm.orig, req.text)
  const p = sr.position
  if (p >= ids.length) {
    throw new AppError(
      'invalid_input',
      `position ${p} is outside the text's ${ids.length} tokens`,
      {
        field: 'sweep.position'
      }
    )
  }
  const depth = origRefOf(parts, cm.orig).layers
  const wanted = sr.layers ?? Array.from({ length: depth }, (_, l) => l)
  wanted.forEach((l, i) => {
    if (l >= depth) {
      throw new AppError('invalid_input', `layer ${l} is outside the model's ${depth} layers`, {
        field: `sweep.layers.${i}`
      })
    }
  })
  const layers = [...new Set(wanted)].sort((a, b) => a - b)
  const candidates = bundle.lenses.map((l) => ({
    id: l.manifest.id,
    layer: l.manifest.layer,
    orig: l.manifest.orig
  }))
  const me = { id: cm.id, layer: cm.layer, orig: cm.orig }

  const timings: Record<string, number> = { tokenizeMs: performance.now() - t0 }
  const time = (k: string, since: number): void => {
    timings[k] = (timings[k] ?? 0) + performance.now() - since
  }
  const rowsBudget = opts.rowsPerBatch ?? groupAutoRows(parts)
  const rows: AnalysisRow[] = []
  let status: 'completed' | 'cancelled' = 'completed'
  const loopStart = performance.now()
  for (const [li, layer] of layers.entries()) {
    if (hooks.isCancelled?.()) {
      status = 'cancelled'
      break
    }
    const lens = await lensOf(lensForLayer(candidates, me, layer, sr.lenses))
    const lm = lens.resolved.manifest
    const ctx: ExplainContext = {
      parts,
      lens,
      opts,
      rowsBudget,
      textIds: ids,
      time,
      onOptimiser: (o) => hooks.onOptimiser?.({ ...o, batch: li + 1, totalBatches: layers.length }),
      isCancelled: hooks.isCancelled
    }
    let t = performance.now()
    // The whole text, as the analysis computes the activation (so a row at the lens's own layer
    // is that analysis's row).
    const acts = await orig.activations(ids, layer)
    time('activationsMs', t)
    const target = acts.slice(p * d, (p + 1) * d)
    const ex = await explainTargets(ctx, [p], target)
    let kl: number | null = null
    if (opts.kl) {
      t = performance.now()
      kl = (await orig.kl(ids, [p], ex.recon, layer))[0]!
      time('klMs', t)
    }
    let lensTop: string | null = null
    if (opts.logitLens) {
      t = performance.now()
      lensTop = (await logitLensTop(parts, orig, target, 1, lm.explanationTokens))[0]!
      time('logitLensMs', t)
    }
    const row: AnalysisRow = {
      ...analysisRow(
        ctx,
        ex,
        0,
        { position: p, token: tokens[p]!, tokenId: ids[p]! },
        target,
        kl,
        lensTop
      ),
      layer,
      lensId: lm.id,
      lensLayer: lm.layer,
      trainedAtLayer: lm.layer === layer
    }
    rows.push(row)
    const elapsed = (performance.now() - loopStart) / 1000
    hooks.onBatch?.([row], {
      batch: li + 1,
      totalBatches: layers.length,
      rowsDone: rows.length,
      rowsTotal: layers.length,
      etaSeconds: (elapsed / rows.length) * (layers.length - rows.length)
    })
  }
  timings.totalMs = performance.now() - t0
  const metadata: AnalysisMetadata = {
    groupId: bundle.summary.groupId,
    lensId: cm.id,
    layer: cm.layer,
    bundleHash: bundle.summary.contentHash,
    engineVersion: ENGINE_VERSION,
    executionProvider: parts.target.provider,
    options: { ...opts, rowsPerBatch: rowsBudget, sweep: sr },
    seed: opts.seed,
    numTokens: ids.length,
    analysedPositions: rows.length,
    timings,
    status
  }
  return { metadata, rows }
}
