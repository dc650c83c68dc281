/**
 * The predecessor's analyzer math (seed-system.md §1.5, §1.5.5–§1.5.9) in float64 on top of the
 * Hugging Face reference: greedy decoder with per-layer activation patching, encoder
 * reconstruction, MSE, relative RMSE, KL(P‖Q) with the residual replaced, salience with the null
 * token, logit lens. docs/reference-hf.md says where each rule comes from.
 *
 * A lens is given as the predecessor's checkpoint holds it (`SeedLens`: rows in embedding-table
 * space, projections as (out, in) matrices); `toResidualLens` applies the family's √d / position
 * conventions, giving rows in the space the bundle's base graph is fed (docs/bundle-format.md).
 */
import { at } from './checked'
import { argmaxWithMargin, logSoftmax, softmax, type HfReferenceModel, type Row } from './model'

/** A d×d affine map as nn.Linear stores it: y = W a + b, W (out, in). */
export interface Affine {
  weight: readonly ArrayLike<number>[]
  bias: ArrayLike<number>
}

/** The predecessor's lens tensors and config fields, as plain arrays (seed-system.md §1.2, §1.5). */
export interface SeedLens {
  /** `layer_l`: A is the residual after this block. */
  layer: number
  /** `t_text`: explanation length T. */
  explanationTokens: number
  decoder: {
    /** `prompt_left_emb` rows (embedding-table space, as `set_prompt` copies them). */
    promptLeft: readonly ArrayLike<number>[]
    /** `prompt_right_emb` rows. */
    promptRight: readonly ArrayLike<number>[]
    /** `patch_all_layers`: true → every layer, an int n → layers 0..n−1, false/0 → no patching. */
    patchAllLayers: boolean | number
    /** `per_layer_projections`: `projections[l]` per layer (`proj_weight[l]`, `proj_bias[l]`); else one `proj`. */
    perLayerProjections: boolean
    /** `new_decoder`: projection l + 1 patches layer l, projection 0 fills the slot. */
    newDecoder?: boolean
    projections: readonly Affine[]
  }
  encoder: {
    /** `soft_prompt_embeddings` (before the explanation). */
    softPrompt: readonly ArrayLike<number>[]
    /** `soft_prompt_embeddings_postfix` (after the explanation), if any. */
    softPromptPostfix?: readonly ArrayLike<number>[]
    /** `special_last_token_vector`, added to the last input row, if enabled. */
    specialLastTokenVector?: ArrayLike<number>
    /** `proj` when `use_projection_layer`. */
    projection?: Affine
    /** `output_layer`: block index, −1 = last block, −2 = the input to the first block. */
    outputLayer: number
    /** `add_current_token`: append the analysed token's embedding. */
    addCurrentToken: boolean
  }
}

/** A lens in the base graph's input space (docs/bundle-format.md "residual-input space"). */
export interface ResidualLens {
  layer: number
  explanationTokens: number
  decoder: {
    /** Prefix rows for activation `a` ([left | slot | right], scaled space; GPT-2 positions not added). */
    prefix(a: Row): Row[]
    embedPos: number
    /** Np vectors: vector l overwrites the residual at `embedPos` before block l (unscaled). */
    patchVectors(a: Row): Row[]
    /** Multiplier of generated tokens' table rows fed back (√d for Gemma, 1 otherwise). */
    tokenScale: number
  }
  encoder: {
    prefix: Row[]
    suffix: Row[]
    /** Multiplier of explanation / current-token table rows. */
    tokenScale: number
    lastRowAdd?: Row
    /** Reconstruction = residual after this block at the last row; −1 = the input to block 0. */
    outputBlock: number
    addCurrentToken: boolean
    head(hidden: Row): Row
  }
}

export interface LensReferenceOptions {
  /** The group's base: decoder and encoder run on it. */
  base: HfReferenceModel
  /** The orig model for activations, KL and logit lens (a donor); default `base`. */
  orig?: HfReferenceModel
  lens: SeedLens
  /** The analysed text's token ids (after the double-BOS rule). */
  inputIds: readonly number[]
  /** Positions to analyse; default all. */
  positions?: readonly number[]
  /** Replaces an explanation token in salience ablations (the seed: `encode(" ")[0]`, else EOS). */
  nullTokenId: number
  /** Apply the final norm before the logit lens's unembedding (the Workbench does; the seed did not). Default false. */
  logitLensFinalNorm?: boolean
  /** Logit-lens ids per row; default min(T, 10). */
  logitLensTopK?: number
  /** Put the current token before the encoder suffix (the Workbench's order) instead of after it (the seed's). Default false. */
  currentTokenBeforeSuffix?: boolean
}

export interface LensReferenceRow {
  position: number
  tokenId: number
  /** A: the orig model's residual after block `layer` at this position. */
  activation: Row
  /** Greedy explanation ids (temperature 0, no final softcap). */
  explanation: number[]
  /** Per decoding step: best logit − runner-up (small = float32 may pick another token). */
  decoderMargins: number[]
  /** Â. */
  reconstruction: Row
  mse: number
  relativeRmse: number
  /** KL(P‖Q) in nats at this position, Q with Â replacing the residual after block `layer`. */
  kl: number
  /** Per explanation token: (mse with it replaced by the null token − mse) / mse. */
  salience: number[]
  /** Top ids of the logit lens, best first (ties → lower id). */
  logitLens: number[]
}

/** Every analysed position's row, as the seed's analyzer computes it (greedy, K irrelevant at T=0). */
export function lensReference(options: LensReferenceOptions): LensReferenceRow[] {
  const { base, lens, inputIds } = options
  const orig = options.orig ?? base
  checkLens(base, orig, lens)
  const residual = toResidualLens(base, lens)
  const L = lens.layer
  const S = inputIds.length
  const positions = options.positions ?? Array.from({ length: S }, (_, s) => s)
  const unmodified = orig.forward({ inputIds })
  const T = lens.explanationTokens
  const topK = options.logitLensTopK ?? Math.min(T, 10)
  return positions.map((t) => {
    if (!Number.isInteger(t) || t < 0 || t >= S)
      throw new Error(`lensReference: position ${t} is outside 0..${S - 1}`)
    const tokenId = inputIds[t]!
    const activation = Float64Array.from(
      at(unmodified.blockOutputs, L, 'lensReference: block outputs')[t]!
    )
    const { tokens: explanation, margins: decoderMargins } = decodeExplanation(
      base,
      residual,
      activation
    )
    const encode = (ids: readonly number[]): Row =>
      encodeExplanation(base, residual, ids, tokenId, options.currentTokenBeforeSuffix ?? false)
    const reconstruction = encode(explanation)
    const mse = meanSquaredError(activation, reconstruction)
    const relativeRmse = Math.sqrt(mse) / Math.sqrt(meanSquare(activation))
    const salience = explanation.map((_, j) => {
      const ablated = explanation.map((id, i) => (i === j ? options.nullTokenId : id))
      return (meanSquaredError(activation, encode(ablated)) - mse) / Math.max(mse, 1e-12)
    })
    const kl = klAfterReplacement(orig, inputIds, L, t, reconstruction, unmodified.logits[t])
    const lensInput = options.logitLensFinalNorm ? orig.finalNorm(activation) : activation
    const logitLens = topIds(orig.unembed(lensInput), topK)
    return {
      position: t,
      tokenId,
      activation,
      explanation,
      decoderMargins,
      reconstruction,
      mse,
      relativeRmse,
      kl,
      salience,
      logitLens
    }
  })
}

/**
 * The family's conventions (seed-system.md §1.5.5, §1.5.7; the predecessor's `_patched_forward`
 * and `Encoder.forward`): Gemma-2's model scales every input row by √d, Gemma-3's lens code scales
 * them explicitly — the same rows either way; GPT-2 and Qwen/Llama rows are used as stored (GPT-2's
 * model adds learned positions). Patch vectors are never scaled.
 */
export function toResidualLens(base: HfReferenceModel, lens: SeedLens): ResidualLens {
  const c = base.config
  const d = c.hiddenSize
  const gemma = c.embedScale !== 1
  const { decoder, encoder } = lens
  const patchLayers = patchLayerCount(decoder.patchAllLayers, c.layers)
  // `patch_all_layers: false` takes the unpatched path, `base(inputs_embeds=…)`: Gemma-2's model
  // scales, Gemma-3's does not (its scale lives in the embedding module, which inputs_embeds
  // bypass). Any int, 0 included, takes `_patched_forward`, which scales by the normaliser for both.
  const unpatchedPath = decoder.patchAllLayers === false
  const decoderScale = gemma && (!unpatchedPath || c.family === 'gemma2') ? c.embedScale : 1
  const scaled = (rows: readonly ArrayLike<number>[], scale: number, what: string): Row[] =>
    rows.map((row, i) => {
      if (row.length !== d)
        throw new Error(`lens: ${what}[${i}] has ${row.length} values, expected ${d}`)
      return Float64Array.from(row, (x) => x * scale)
    })
  const left = scaled(decoder.promptLeft, decoderScale, 'decoder.promptLeft')
  const right = scaled(decoder.promptRight, decoderScale, 'decoder.promptRight')
  const projection = (index: number, a: Row): Row => {
    const p = decoder.perLayerProjections ? decoder.projections[index] : decoder.projections[0]
    if (!p)
      throw new Error(
        `lens: decoder projection ${index} is missing (${decoder.projections.length} given)`
      )
    return affine(p, a)
  }
  const offset = decoder.newDecoder ? 1 : 0
  const encoderScale = gemma ? c.embedScale : 1
  const last = encoder.specialLastTokenVector
  const head = encoder.projection
  const outputLayer = encoder.outputLayer
  if (!Number.isInteger(outputLayer) || outputLayer < -2 || outputLayer >= c.layers) {
    throw new Error(`lens: encoder.outputLayer ${outputLayer} is outside -2..${c.layers - 1}`)
  }
  return {
    layer: lens.layer,
    explanationTokens: lens.explanationTokens,
    decoder: {
      // The slot holds projection 0 (`_apply_projection(layer_idx=-1)`); with patching it is
      // overwritten before block 0, so only the unpatched path sees it (scaled like the prompt).
      prefix: (a) => [...left, projection(0, a).map((x) => x * decoderScale), ...right],
      embedPos: left.length,
      patchVectors: (a) => Array.from({ length: patchLayers }, (_, l) => projection(l + offset, a)),
      // Generated tokens: Gemma-2's model scales them, Gemma-3's decoder multiplies them by the
      // normaliser itself on every path.
      tokenScale: gemma ? c.embedScale : 1
    },
    encoder: {
      prefix: scaled(encoder.softPrompt, encoderScale, 'encoder.softPrompt'),
      suffix: scaled(encoder.softPromptPostfix ?? [], encoderScale, 'encoder.softPromptPostfix'),
      tokenScale: encoderScale,
      lastRowAdd: last
        ? scaled([last], encoderScale, 'encoder.specialLastTokenVector')[0]
        : undefined,
      // −1 = last block, −2 = the input to the first block (the predecessor's pre-hook on layer 0).
      outputBlock: outputLayer === -1 ? c.layers - 1 : outputLayer === -2 ? -1 : outputLayer,
      addCurrentToken: encoder.addCurrentToken,
      head: (hidden) => (head ? affine(head, hidden) : Float64Array.from(hidden))
    }
  }
}

/** Greedy decoding at temperature 0: prefix pass with the slot patched before blocks 0..Np−1, then T steps. */
export function decodeExplanation(
  base: HfReferenceModel,
  lens: ResidualLens,
  activation: Row
): { tokens: number[]; margins: number[] } {
  const { decoder } = lens
  const prefix = decoder.prefix(activation)
  const patches = decoder.patchVectors(activation)
  const rows = [...prefix]
  const tokens: number[] = []
  const margins: number[] = []
  for (let step = 0; step < lens.explanationTokens; step++) {
    // Recomputing the whole sequence with the same patches equals the predecessor's KV-cached
    // decoding: blocks are causal and the patch only touches the prefix's slot row.
    const out = base.forward({
      inputsEmbeds: rows,
      patch: (layer, hidden) => {
        if (layer < patches.length) hidden[decoder.embedPos] = Float64Array.from(patches[layer]!)
      },
      logitRows: [rows.length - 1]
    })
    // The decoder reads lm_head(final_norm(h)) itself: no final-logit softcapping.
    const { best, margin } = argmaxWithMargin(
      at(out.logitsNoSoftcap, 0, 'decodeExplanation: logits')
    )
    tokens.push(best)
    margins.push(margin)
    rows.push(base.tableRow(best).map((x) => x * decoder.tokenScale))
  }
  return { tokens, margins }
}

/** Â for explanation `ids`: [prefix | E[ids] | suffix | E[current]] (+ last-row vector) → block k, last row → head. */
export function encodeExplanation(
  base: HfReferenceModel,
  lens: ResidualLens,
  ids: readonly number[],
  currentTokenId: number,
  currentTokenBeforeSuffix = false
): Row {
  const { encoder } = lens
  const token = (id: number): Row => base.tableRow(id).map((x) => x * encoder.tokenScale)
  const current = encoder.addCurrentToken ? [token(currentTokenId)] : []
  const rows = currentTokenBeforeSuffix
    ? [...encoder.prefix, ...ids.map(token), ...current, ...encoder.suffix]
    : [...encoder.prefix, ...ids.map(token), ...encoder.suffix, ...current]
  const lastRow = rows.length - 1
  if (encoder.lastRowAdd) {
    const add = encoder.lastRowAdd
    rows[lastRow] = at(rows, lastRow, 'encodeExplanation: rows').map((x, i) => x + add[i]!)
  }
  const out = base.forward({ inputsEmbeds: rows, lastLayer: Math.max(encoder.outputBlock, 0) })
  const hidden = at(
    encoder.outputBlock < 0
      ? out.inputs
      : at(out.blockOutputs, encoder.outputBlock, 'encodeExplanation: block outputs'),
    lastRow,
    'encodeExplanation: last row'
  )
  return encoder.head(hidden)
}

/**
 * KL(P‖Q) = Σ P (log P − log Q) at position t: P from the unmodified orig model, Q with `vector`
 * replacing the residual after block `layer` at t. Both are the orig model's own predictions
 * (final softcap included where its config has one).
 */
export function klAfterReplacement(
  orig: HfReferenceModel,
  inputIds: readonly number[],
  layer: number,
  t: number,
  vector: ArrayLike<number>,
  unmodifiedLogits?: Row
): number {
  const p =
    unmodifiedLogits ??
    at(orig.forward({ inputIds, logitRows: [t] }).logits, 0, 'klAfterReplacement: logits')
  const q = at(
    orig.forward({ inputIds, replaceAfter: { layer, position: t, vector }, logitRows: [t] }).logits,
    0,
    'klAfterReplacement: replaced logits'
  )
  const logP = logSoftmax(p)
  const logQ = logSoftmax(q)
  const probs = softmax(p)
  let kl = 0
  for (let v = 0; v < probs.length; v++) if (probs[v]! > 0) kl += probs[v]! * (logP[v]! - logQ[v]!)
  return kl
}

export function meanSquaredError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2
  return sum / a.length
}

function meanSquare(a: ArrayLike<number>): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += a[i]! * a[i]!
  return sum / a.length
}

/** Indices of the k largest values, best first; ties → lower index. */
export function topIds(values: Row, k: number): number[] {
  return Array.from(values.keys())
    .sort((a, b) => values[b]! - values[a]! || a - b)
    .slice(0, k)
}

/** `patch_all_layers`: true → all layers, false → 0, an int n → n (seed-system.md §1.5.5). */
export function patchLayerCount(patchAllLayers: boolean | number, layers: number): number {
  if (patchAllLayers === true) return layers
  if (patchAllLayers === false) return 0
  if (!Number.isInteger(patchAllLayers) || patchAllLayers < 0 || patchAllLayers > layers) {
    throw new Error(`lens: patch_all_layers ${patchAllLayers} is outside 0..${layers}`)
  }
  return patchAllLayers
}

function affine(p: Affine, x: ArrayLike<number>): Row {
  const out = new Float64Array(p.weight.length)
  for (let o = 0; o < p.weight.length; o++) {
    const row = p.weight[o]!
    if (row.length !== x.length)
      throw new Error(`lens: projection row ${o} has ${row.length} values, expected ${x.length}`)
    let sum = at(p.bias, o, 'lens: projection bias')
    for (let i = 0; i < x.length; i++) sum += row[i]! * x[i]!
    out[o] = sum
  }
  return out
}

function checkLens(base: HfReferenceModel, orig: HfReferenceModel, lens: SeedLens): void {
  const L = lens.layer
  if (!Number.isInteger(L) || L < 0 || L >= orig.config.layers) {
    throw new Error(`lens: layer ${L} is outside 0..${orig.config.layers - 1}`)
  }
  if (orig.config.hiddenSize !== base.config.hiddenSize) {
    throw new Error(
      `lens: orig width ${orig.config.hiddenSize} differs from the base's ${base.config.hiddenSize}`
    )
  }
  if (!Number.isInteger(lens.explanationTokens) || lens.explanationTokens < 1) {
    throw new Error(
      `lens: explanationTokens must be a positive integer, got ${lens.explanationTokens}`
    )
  }
  const n = patchLayerCount(lens.decoder.patchAllLayers, base.config.layers)
  const needed = lens.decoder.perLayerProjections
    ? Math.max(n + (lens.decoder.newDecoder ? 1 : 0), 1)
    : 1
  if (lens.decoder.projections.length < needed) {
    throw new Error(
      `lens: ${needed} decoder projections needed, ${lens.decoder.projections.length} given`
    )
  }
}
