/**
 * Causal intervention (the predecessor's `causal_intervention`, seed-system.md §1.6.3): at token
 * position t, the residual after the lens's layer L is replaced by three vectors, and the orig
 * model's behaviour is compared:
 *
 * - A, the residual itself (the run every other is measured against: P_A),
 * - A_int, the encoder's reconstruction from an intervention string (one per string),
 * - Â, the reconstruction from the position's own explanation (best-of-K, or optimised).
 *
 * All runs of a position go through the graph's patch role together (identical vectors give
 * identical rows, so intervening with A gives KL 0 exactly), read the next-token distribution
 * after `nextPosition` (default t: the prediction of the next token), and continue the text up to
 * t greedily with the replacement in place (patchGenerate role). KL(P_A‖P_x) is summed in float64
 * from the float32 log-probabilities; MSEs are the lens head's, as in an analysis row.
 */
import type { AnalysisMetadata } from '@shared/domain/analysis'
import {
  InterventionRequestSchema,
  type InterventionRequest,
  type InterventionRow,
  type Prediction
} from '@shared/domain/research'
import { AppError, describeZodError } from '@shared/ipc/errors'
import { groupAutoRows, origRefOf, parseAnalyzeOptions, tokenizeForLens } from '../analysis'
import { explanationText, reconstruct, type ExplainContext } from '../explain'
import { explainTargets } from '../explainTargets'
import { endOfTurnIdsOf } from '../generation/run'
import type { LensRuntime } from '../lenses'
import type { GroupParts } from '../loading'
import { klOrZeroIfRounding } from '../metrics'
import { positionsPerBatch, rolloutsPerPosition } from '../positions'
import type { TextTokenizer } from '../tokenizer'
import type { InterveneRequest, InterventionResult, ResearchHooks } from '../types'
import { ENGINE_VERSION } from '../version'

/** An intervention string as the lens's encoder reads it (the predecessor's rule). */
export interface InterventionTokens {
  ids: number[]
  truncated: number
  padded: number
}

/**
 * The predecessor's tokenisation of an intervention string: with the tokenizer's own specials (so
 * a BOS where the tokenizer adds one), the first tokens cut when longer than T, left-padded with
 * id 0 when shorter.
 */
export function interventionTokens(
  tokenizer: Pick<TextTokenizer, 'encode'>,
  text: string,
  T: number
): InterventionTokens {
  const ids = tokenizer.encode(text).ids
  if (ids.length >= T)
    return { ids: ids.slice(ids.length - T), truncated: ids.length - T, padded: 0 }
  return {
    ids: [...Array<number>(T - ids.length).fill(0), ...ids],
    truncated: 0,
    padded: T - ids.length
  }
}

export function parseInterventionRequest(input: unknown): InterventionRequest {
  const parsed = InterventionRequestSchema.safeParse(input ?? {})
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error, 'intervention')
    throw new AppError('invalid_input', message, { field })
  }
  return parsed.data
}

/** KL(P_a ‖ P_b) between rows a and b of (R, V) log-probabilities, summed in float64. */
export function klBetweenRows(lp: Float32Array, V: number, a: number, b: number): number {
  let kl = 0
  for (let v = 0; v < V; v++) {
    const p = lp[a * V + v]!
    kl += Math.exp(p) * (p - lp[b * V + v]!)
  }
  return klOrZeroIfRounding(kl)
}

/** The k most likely tokens of row r (ties → lower id). */
export function topPredictions(
  tokenizer: Pick<TextTokenizer, 'decodeOne'>,
  lp: Float32Array,
  V: number,
  r: number,
  k: number
): Prediction[] {
  const row = lp.subarray(r * V, (r + 1) * V)
  const best: number[] = []
  for (let v = 0; v < V; v++) {
    if (best.length === k && row[v]! <= row[best[k - 1]!]!) continue
    let i = best.length < k ? best.length : k - 1
    best[i] = v
    while (i > 0 && row[best[i]!]! > row[best[i - 1]!]!) {
      ;[best[i], best[i - 1]] = [best[i - 1]!, best[i]!]
      i--
    }
  }
  return best.map((id) => ({
    token: tokenizer.decodeOne(id),
    tokenId: id,
    probability: Math.exp(row[id]!)
  }))
}

export async function interveneText(
  parts: GroupParts,
  lensOf: (lensId: string) => Promise<LensRuntime>,
  req: InterveneRequest,
  hooks: ResearchHooks<InterventionRow>
): Promise<InterventionResult> {
  const t0 = performance.now()
  const opts = parseAnalyzeOptions(req.options)
  const ir = parseInterventionRequest(req.intervention)
  const lens = await lensOf(req.lensId)
  const lm = lens.resolved.manifest
  const { bundle, tokenizer } = parts
  const orig = parts.models.get(lm.orig)!
  const d = bundle.manifest.base.hiddenSize
  const T = lm.explanationTokens
  const L = lm.layer
  const { ids, tokens } = tokenizeForLens(parts, lm.orig, req.text)
  const S = ids.length
  const positions = [...new Set(ir.positions)]
  positions.forEach((t, i) => {
    if (t >= S) {
      throw new AppError('invalid_input', `position ${t} is outside the text's ${S} tokens`, {
        field: `intervention.positions.${i}`
      })
    }
  })
  if (ir.nextPosition !== undefined) {
    const q = ir.nextPosition
    if (q >= S) {
      throw new AppError('invalid_input', `next position ${q} is outside the text's ${S} tokens`, {
        field: 'intervention.nextPosition'
      })
    }
    const after = positions.find((t) => t > q)
    if (after !== undefined) {
      throw new AppError(
        'invalid_input',
        `next position ${q} is before the intervened position ${after}: predictions before it cannot change`,
        { field: 'intervention.nextPosition' }
      )
    }
  }
  const maxPositions = origRefOf(parts, lm.orig).maxPositions
  const longest = Math.max(...positions) + 1 + ir.maxNewTokens
  if (ir.maxNewTokens > 0 && longest > maxPositions) {
    throw new AppError(
      'invalid_input',
      `a continuation of ${ir.maxNewTokens} tokens after position ${Math.max(...positions)} exceeds this model's ${maxPositions} positions`,
      { field: 'intervention.maxNewTokens' }
    )
  }

  const timings: Record<string, number> = { tokenizeMs: performance.now() - t0 }
  const time = (k: string, since: number): void => {
    timings[k] = (timings[k] ?? 0) + performance.now() - since
  }
  let t = performance.now()
  const acts = await orig.activations(ids, L)
  time('activationsMs', t)
  const rowsBudget = opts.rowsPerBatch ?? groupAutoRows(parts)
  const ctx: ExplainContext = {
    parts,
    lens,
    opts,
    rowsBudget,
    textIds: ids,
    time,
    isCancelled: hooks.isCancelled
  }
  const endIds = endOfTurnIdsOf(parts)
  const V = origRefOf(parts, lm.orig).vocabSize
  const logitBias = new Float32Array(V)
  // Exact-length continuations, as the predecessor's min_new_tokens.
  for (const id of endIds) if (id < V) logitBias[id] = -1e9

  const rows: InterventionRow[] = []
  const total = positions.length * ir.strings.length
  let status: 'completed' | 'cancelled' = 'completed'
  const perBatch = positionsPerBatch(rowsBudget, rolloutsPerPosition(opts))
  const loopStart = performance.now()
  for (let start = 0; start < positions.length; start += perBatch) {
    if (hooks.isCancelled?.()) {
      status = 'cancelled'
      break
    }
    const batch = positions.slice(start, start + perBatch)
    const b = batch.length
    const target = new Float32Array(b * d)
    batch.forEach((p, i) => target.set(acts.subarray(p * d, (p + 1) * d), i * d))
    const ex = await explainTargets(ctx, batch, target)

    // A_int for every (position, string): the string's ids, or the explanation's own ids when the
    // string is the explanation (re-tokenising decoded text need not give the sampled ids back).
    t = performance.now()
    const n = ir.strings.length
    const intIds = new Int32Array(b * n * T)
    const encoded: InterventionTokens[] = []
    batch.forEach((_, i) => {
      const own = ex.ids.subarray(i * T, (i + 1) * T)
      const ownText = tokenizer.decode(Array.from(own))
      ir.strings.forEach((text, k) => {
        const tok: InterventionTokens =
          text === ownText
            ? { ids: Array.from(own), truncated: 0, padded: 0 }
            : interventionTokens(tokenizer, text, T)
        encoded.push(tok)
        intIds.set(tok.ids, (i * n + k) * T)
      })
    })
    const intTarget = new Float32Array(b * n * d)
    for (let i = 0; i < b; i++)
      for (let k = 0; k < n; k++)
        intTarget.set(target.subarray(i * d, (i + 1) * d), (i * n + k) * d)
    const aInt = await reconstruct(
      parts,
      lens,
      intIds,
      batch.flatMap((p) => Array<number>(n).fill(ids[p]!)),
      intTarget,
      rowsBudget
    )
    time('encodeMs', t)

    for (const [i, position] of batch.entries()) {
      if (hooks.isCancelled?.()) {
        status = 'cancelled'
        break
      }
      const q = ir.nextPosition ?? position
      const R = n + 2
      const vectors = new Float32Array(R * d)
      vectors.set(target.subarray(i * d, (i + 1) * d), 0)
      vectors.set(aInt.recon.subarray(i * n * d, (i + 1) * n * d), d)
      vectors.set(ex.recon.subarray(i * d, (i + 1) * d), (n + 1) * d)
      t = performance.now()
      const lp = await orig.patchedLogProbs(ids.slice(0, q + 1), L, position, vectors, R)
      time('patchMs', t)
      let continuations: string[] = Array<string>(R).fill('')
      if (ir.maxNewTokens > 0) {
        t = performance.now()
        const out = await orig.patchedContinuations({
          ids: ids.slice(0, position + 1),
          layer: L,
          at: position,
          vectors,
          rows: R,
          steps: ir.maxNewTokens,
          logitBias
        })
        continuations = Array.from({ length: R }, (_, r) =>
          tokenizer.decode(Array.from({ length: out.steps }, (_, s) => out.ids[s * R + r]!))
        )
        time('continuationMs', t)
      }
      const own = explanationText(ctx, ex.ids.subarray(i * T, (i + 1) * T), tokens[position]!)
      const klDecoded = klBetweenRows(lp, V, 0, n + 1)
      const newRows = ir.strings.map((text, k): InterventionRow => {
        const tok = encoded[i * n + k]!
        return {
          index: rows.length + k,
          interventionPosition: position,
          intervenedToken: tokens[position]!,
          intervenedTokenId: ids[position]!,
          nextTokenPosition: q,
          predictionContextToken: tokens[q]!,
          interventionText: text,
          interventionString: tokenizer.decode(tok.ids.filter((_, j) => j >= tok.padded)),
          interventionIds: tok.ids,
          truncatedTokens: tok.truncated,
          paddedTokens: tok.padded,
          explanationOriginal: own.explanation,
          explanationStructured: own.structured,
          klDivergence: klBetweenRows(lp, V, 0, k + 1),
          klDivOrigDecoded: klDecoded,
          mse: aInt.mse[i * n + k]!,
          mseOrigDecoded: ex.mse[i]!,
          topPredictionsOriginal: topPredictions(tokenizer, lp, V, 0, ir.topK),
          topPredictionsIntervention: topPredictions(tokenizer, lp, V, k + 1, ir.topK),
          topPredictionsOriginalDecoded: topPredictions(tokenizer, lp, V, n + 1, ir.topK),
          continuationOriginal: continuations[0]!,
          continuationIntervention: continuations[k + 1]!,
          continuationOriginalDecoded: continuations[n + 1]!
        }
      })
      rows.push(...newRows)
      const elapsed = (performance.now() - loopStart) / 1000
      hooks.onRows?.(newRows, {
        batch: start / perBatch + 1,
        totalBatches: Math.ceil(positions.length / perBatch),
        rowsDone: rows.length,
        rowsTotal: total,
        etaSeconds: (elapsed / rows.length) * (total - rows.length)
      })
    }
    if (status === 'cancelled') break
  }
  timings.totalMs = performance.now() - t0
  const metadata: AnalysisMetadata = {
    groupId: bundle.summary.groupId,
    lensId: lm.id,
    layer: L,
    bundleHash: bundle.summary.contentHash,
    engineVersion: ENGINE_VERSION,
    executionProvider: parts.target.provider,
    options: { ...opts, rowsPerBatch: rowsBudget, intervention: ir },
    seed: opts.seed,
    numTokens: S,
    analysedPositions: rows.length,
    timings,
    status
  }
  return { metadata, rows }
}
