/**
 * How much device memory a loaded group needs: its weights as ONNX Runtime holds them plus the
 * working memory of one engine batch at the device kind's rows budget (docs/devices.md, "Memory
 * estimate"). Pure, so the rule is tested on figures and the device manager can compare it with
 * what a load measured.
 */
import { DEFAULT_BEST_OF_K } from '@shared/domain/analysis'
import { DEFAULT_ROWS_PER_BATCH } from '../positions'
import { vocabularyBlock } from '../generation/sampler'
import { decodeSampleRows } from '../graph/transformer'

export interface EstimateModel {
  layers: number
  hiddenSize: number
  kvHeads: number
  headDim: number
  vocabSize: number
}

export interface EstimateLens {
  /** Decoder prefix rows P. */
  prefixRows: number
  /** Explanation tokens T. */
  tokens: number
  /** Encoder input rows besides the explanation (soft prompt, suffix, current token). */
  encoderRows: number
}

export interface EstimateInput {
  /** Bytes of every weight file of the group. */
  weightBytes: number
  base: EstimateModel
  lenses: readonly EstimateLens[]
  rowsPerBatch?: { cpu?: number; gpu?: number }
}

/**
 * The weights count at least once plus half an embedding table, a rule calibrated on imported
 * GPT-2, Qwen3-0.6B and Gemma-3-270M shapes (docs/benchmarks.md "Import" and "At real shapes").
 * The table is not a second copy that ONNX Runtime holds: it pre-packs no weight of the base graph
 * (every MatMul and Gemm sits two or more subgraphs below its initializers), and the old and the
 * left-operand unembedding measured the same (docs/benchmarks.md "At real shapes", memory); it
 * stands for working memory the batch terms below do not count. It was a whole table until the
 * analysis was measured with the workers' allocator settings and the heap collected after a load,
 * which took 0.3–0.4 GB off Gemma-3-270M's peak (same section).
 */
export const EMBEDDING_TABLE_SHARE = 0.5
/** The weights' own overhead where half a table is less (a small vocabulary). */
export const WEIGHT_OVERHEAD = 1.1

/**
 * Copies of each decoder row's own explanation-token cache (T − 1 slots per layer) alive at the
 * end of a decode step: the loop-carried slots and the step's rewrite of them (graph/transformer.ts
 * `decodeSteps`). The sampler runs at the start of the next step, beside one copy only, so the
 * peak is one copy plus the larger of the second copy and the sampler's temporaries. The prefix
 * cache is not among them: it is held once per position.
 */
const OWN_KV_COPIES = 2
/**
 * Copies of one layer's keys and values over the whole context (P + T − 1 tokens) that a decode
 * step makes per row, one layer at a time: its position's prefix gathered to the row, and that
 * joined with the row's own slots.
 */
const STEP_KV_COPIES = 2
/**
 * Copies of the KV cache a generation holds at its peak: the prefilled cache, its broadcast to the
 * completions, the loop-carried cache and its concatenation, and the allocator's slack as the cache
 * grows a token a step. Measured 3.0–3.4 at the three import presets (docs/benchmarks.md "Import").
 */
const GENERATION_KV_COPIES = 3.2
/**
 * Vocabulary-wide float32 rows alive per sampled row while a step samples: the logits, the
 * probabilities, their transpose and CDF (generation/sampler.ts), as ONNX Runtime's arena holds
 * them. A generation samples all its completions at once. Measured at the three presets
 * (docs/benchmarks.md "At real shapes").
 */
const LOGIT_COPIES = 3
/**
 * The same for the lens decode, which samples `decodeSampleRows` rows at a time
 * (graph/transformer.ts): with the two-level draw only the chunk's logits are vocabulary-wide.
 */
function decodeLogitCopies(vocab: number): number {
  return vocabularyBlock(vocab) ? 1 : LOGIT_COPIES
}
/** A group without a lens still generates: completions per run and tokens of context assumed. */
const GENERATION_ROWS = 16
const GENERATION_CONTEXT = 512

/** Working memory of one batch of `rows` decoder rows (bytes). */
export function batchWorkspaceBytes(
  base: EstimateModel,
  lenses: readonly EstimateLens[],
  rows: number
): number {
  const kvPerToken = base.layers * 2 * base.kvHeads * base.headDim * 4
  if (lenses.length === 0) {
    return (
      GENERATION_ROWS * GENERATION_CONTEXT * kvPerToken * GENERATION_KV_COPIES +
      GENERATION_ROWS * base.vocabSize * 4 * LOGIT_COPIES
    )
  }
  let worst = 0
  // The decoder's prefix runs once per position: rows / K positions, at the default K.
  const positions = Math.ceil(rows / DEFAULT_BEST_OF_K)
  for (const l of lenses) {
    const context = l.prefixRows + l.tokens - 1
    const ownCopy = rows * (l.tokens - 1) * kvPerToken
    const stepEnd =
      ownCopy * (OWN_KV_COPIES - 1) + rows * context * (kvPerToken / base.layers) * STEP_KV_COPIES
    const sampling =
      Math.min(rows, decodeSampleRows(base.vocabSize)) *
      base.vocabSize *
      4 *
      decodeLogitCopies(base.vocabSize)
    const decode = positions * l.prefixRows * kvPerToken + ownCopy + Math.max(stepEnd, sampling)
    // The encoder runs every row's whole input at once: a few d-wide activations per token.
    const encode = rows * (l.encoderRows + l.tokens) * base.hiddenSize * 4 * 8
    worst = Math.max(worst, decode, encode)
  }
  return worst
}

/** The estimate for each device kind, at its rows budget (the bundle's, else the default). */
export function estimateGroupBytes(input: EstimateInput): { cpu: number; gpu: number } {
  const embeddingTable = input.base.vocabSize * input.base.hiddenSize * 4
  const weights = Math.max(
    input.weightBytes * WEIGHT_OVERHEAD,
    input.weightBytes + embeddingTable * EMBEDDING_TABLE_SHARE
  )
  const rows = {
    cpu: input.rowsPerBatch?.cpu ?? DEFAULT_ROWS_PER_BATCH.cpu,
    gpu: input.rowsPerBatch?.gpu ?? DEFAULT_ROWS_PER_BATCH.gpu
  }
  return {
    cpu: Math.round(weights + batchWorkspaceBytes(input.base, input.lenses, rows.cpu)),
    gpu: Math.round(weights + batchWorkspaceBytes(input.base, input.lenses, rows.gpu))
  }
}
