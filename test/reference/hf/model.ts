/**
 * A float64 reimplementation of the Hugging Face causal LMs the Workbench imports, written from the
 * modeling code (docs/reference-hf.md maps every function to its HF counterpart). Plain loops over
 * Float64Array rows: obviously correct over fast, for tests with tiny widths.
 *
 * Weights stay the Float32Array values of the checkpoint; every product and sum is float64. The
 * only float32 rounding emulated is Gemma's embedding normaliser (√d rounded to float32, as HF
 * builds it in the checkpoint dtype and the engine runs float32).
 */
import { resolveHfConfig, type ResolvedConfig } from './config'
import { at } from './checked'
import type { HfConfigJson, HfTensor, HfTensors } from './types'

export type Row = Float64Array

export interface ForwardOptions {
  /** Token ids; exactly one of `inputIds` / `inputsEmbeds`. */
  inputIds?: readonly number[]
  /**
   * Input rows in the scaled embedding space (what docs/bundle-format.md calls residual-input
   * space): Gemma's √d already applied, GPT-2's learned position rows NOT included (the model adds
   * `wpe[position]`, as HF does for `inputs_embeds`).
   */
  inputsEmbeds?: readonly ArrayLike<number>[]
  /** Position ids for rotary angles / learned positions; default 0..S−1. Masks follow row order. */
  positions?: readonly number[]
  /** Called before block `layer` with the residual rows about to enter it; may overwrite rows in place. */
  patch?: (layer: number, hidden: Row[]) => void
  /** Replace the residual after block `layer` at row `position` with `vector` (the KL intervention). */
  replaceAfter?: { layer: number; position: number; vector: ArrayLike<number> }
  /** Rows to unembed (default all). */
  logitRows?: readonly number[]
  /** Stop after this block (the remaining blocks, the final norm and logits are skipped). */
  lastLayer?: number
}

export interface ForwardResult {
  /** The residual entering block 0 (scaled embeddings + learned positions), before any patch. */
  inputs: Row[]
  /** `blockOutputs[l][s]`: residual after block l at row s (after `replaceAfter` where it applies). */
  blockOutputs: Row[][]
  /**
   * HF `output_hidden_states` numbering: `[inputs, out_0, …, out_{L−2}, final_norm(out_{L−1})]`
   * (L + 1 entries; HF replaces the last block's output by the normed one). Empty with `lastLayer`.
   */
  hiddenStates: Row[][]
  /** final_norm(out_{L−1}) per row (HF `last_hidden_state`). */
  finalHidden: Row[]
  /** The rows that were unembedded, in the order of `logits`. */
  logitRows: number[]
  /** lm_head(final_norm(h)) without final-logit softcapping. */
  logitsNoSoftcap: Row[]
  /** What the model predicts: with `final_logit_softcapping` when the config has it (Gemma-2). */
  logits: Row[]
}

export interface GreedyResult {
  /** The new tokens (a stop id, when drawn, is the last). */
  tokens: number[]
  /** Per step: best logit minus second best (a small margin means float32 may choose differently). */
  margins: number[]
}

interface LayerWeights {
  norm1: NormWeights
  norm2: NormWeights
  postAttnNorm?: NormWeights
  postFfNorm?: NormWeights
  // Attention: Linear (out, in) weights, or for GPT-2 the fused Conv1D (in, 3d).
  q?: Linear
  k?: Linear
  v?: Linear
  qkv?: Conv1D
  o: Linear | Conv1D
  qNorm?: NormWeights
  kNorm?: NormWeights
  // MLP
  gate?: Linear
  up?: Linear
  down?: Linear
  fc?: Conv1D
  proj?: Conv1D
}

interface NormWeights {
  weight: Float32Array
  bias?: Float32Array
}

/** nn.Linear: y = x Wᵀ + b, W stored (out, in). */
interface Linear {
  kind: 'linear'
  weight: Float32Array
  bias?: Float32Array
  inDim: number
  outDim: number
}

/** GPT-2 Conv1D: y = x W + b, W stored (in, out). */
interface Conv1D {
  kind: 'conv1d'
  weight: Float32Array
  bias: Float32Array
  inDim: number
  outDim: number
}

export interface HfReferenceModel {
  readonly config: ResolvedConfig
  forward(options: ForwardOptions): ForwardResult
  /**
   * Greedy continuation with the model's own logits (final softcap included; argmax, ties → lowest
   * id); with `replaceAfter`, every step runs with that residual replaced (an intervention).
   */
  greedy(
    ids: readonly number[],
    maxNewTokens: number,
    stopIds?: readonly number[],
    replaceAfter?: ForwardOptions['replaceAfter']
  ): GreedyResult
  /** Token-embedding row × the model's scale (Gemma √d), i.e. scaled embedding space. */
  embedRow(id: number): Row
  /** The raw embedding-table row (no scale). */
  tableRow(id: number): Row
  /** The model's final norm (ln_f / norm) of one residual vector. */
  finalNorm(vector: ArrayLike<number>): Row
  /** lm_head of one vector (no norm, no softcap). */
  unembed(vector: ArrayLike<number>): Row
  /** The model's final-logit softcap applied to logits (identity when the config has none). */
  softcap(logits: Row): Row
}

/** Builds the reference model from a config.json object and the checkpoint's tensors. */
export function hfReference(config: HfConfigJson, tensors: HfTensors): HfReferenceModel {
  return new Reference(resolveHfConfig(config), tensors)
}

class Reference implements HfReferenceModel {
  readonly #embed: Float32Array
  readonly #positionsTable?: Float32Array
  readonly #layers: LayerWeights[]
  readonly #finalNorm: NormWeights
  readonly #lmHead: Float32Array

  constructor(
    readonly config: ResolvedConfig,
    tensors: HfTensors
  ) {
    const c = config
    const names = new TensorNames(tensors, c)
    const d = c.hiddenSize
    this.#embed = names.get(names.embedName(), [c.vocabSize, d])
    if (c.learnedPositions)
      this.#positionsTable = names.get(names.text('wpe.weight'), [c.maxPositions, d])
    this.#layers = []
    for (let l = 0; l < c.layers; l++) this.#layers.push(this.#loadLayer(names, l))
    this.#finalNorm =
      c.norm === 'layernorm'
        ? {
            weight: names.get(names.text('ln_f.weight'), [d]),
            bias: names.get(names.text('ln_f.bias'), [d])
          }
        : { weight: names.get(names.text('norm.weight'), [d]) }
    this.#lmHead = c.tieWordEmbeddings
      ? this.#embed
      : names.get(names.lmHeadName(), [c.vocabSize, d])
  }

  #loadLayer(names: TensorNames, l: number): LayerWeights {
    const c = this.config
    const d = c.hiddenSize
    if (c.family === 'gpt2') {
      const p = names.text(`h.${l}.`)
      const conv = (name: string, inDim: number, outDim: number): Conv1D => ({
        kind: 'conv1d',
        weight: names.get(`${p}${name}.weight`, [inDim, outDim]),
        bias: names.get(`${p}${name}.bias`, [outDim]),
        inDim,
        outDim
      })
      const ln = (name: string): NormWeights => ({
        weight: names.get(`${p}${name}.weight`, [d]),
        bias: names.get(`${p}${name}.bias`, [d])
      })
      return {
        norm1: ln('ln_1'),
        norm2: ln('ln_2'),
        qkv: conv('attn.c_attn', d, 3 * d),
        o: conv('attn.c_proj', d, d),
        fc: conv('mlp.c_fc', d, c.intermediateSize),
        proj: conv('mlp.c_proj', c.intermediateSize, d)
      }
    }
    const p = names.text(`layers.${l}.`)
    const linear = (name: string, inDim: number, outDim: number, bias: boolean): Linear => ({
      kind: 'linear',
      weight: names.get(`${p}${name}.weight`, [outDim, inDim]),
      bias: bias ? names.get(`${p}${name}.bias`, [outDim]) : undefined,
      inDim,
      outDim
    })
    const norm = (name: string, width = d): NormWeights => ({
      weight: names.get(`${p}${name}.weight`, [width])
    })
    const hq = c.heads * c.headDim
    const hkv = c.kvHeads * c.headDim
    const layer: LayerWeights = {
      norm1: norm('input_layernorm'),
      // Llama-style: post_attention_layernorm is the pre-MLP norm; Gemma: pre_feedforward_layernorm.
      norm2: c.sandwichNorms ? norm('pre_feedforward_layernorm') : norm('post_attention_layernorm'),
      q: linear('self_attn.q_proj', d, hq, c.qkvBias),
      k: linear('self_attn.k_proj', d, hkv, c.qkvBias),
      v: linear('self_attn.v_proj', d, hkv, c.qkvBias),
      o: linear('self_attn.o_proj', hq, d, c.oBias),
      gate: linear('mlp.gate_proj', d, c.intermediateSize, c.mlpBias),
      up: linear('mlp.up_proj', d, c.intermediateSize, c.mlpBias),
      down: linear('mlp.down_proj', c.intermediateSize, d, c.mlpBias)
    }
    if (c.sandwichNorms) {
      layer.postAttnNorm = norm('post_attention_layernorm')
      layer.postFfNorm = norm('post_feedforward_layernorm')
    }
    if (c.qkNorm) {
      layer.qNorm = norm('self_attn.q_norm', c.headDim)
      layer.kNorm = norm('self_attn.k_norm', c.headDim)
    }
    return layer
  }

  tableRow(id: number): Row {
    const c = this.config
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
      throw new Error(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`)
    }
    const d = c.hiddenSize
    return Float64Array.from(this.#embed.subarray(id * d, (id + 1) * d))
  }

  embedRow(id: number): Row {
    const row = this.tableRow(id)
    const scale = this.config.embedScale
    if (scale !== 1) for (let i = 0; i < row.length; i++) row[i] = row[i]! * scale
    return row
  }

  finalNorm(vector: ArrayLike<number>): Row {
    return this.#norm(Float64Array.from(vector), this.#finalNorm, this.config.norm)
  }

  unembed(vector: ArrayLike<number>): Row {
    const { vocabSize, hiddenSize: d } = this.config
    const out = new Float64Array(vocabSize)
    for (let v = 0; v < vocabSize; v++) {
      let sum = 0
      const base = v * d
      for (let i = 0; i < d; i++) sum += this.#lmHead[base + i]! * vector[i]!
      out[v] = sum
    }
    return out
  }

  softcap(logits: Row): Row {
    const cap = this.config.finalSoftcap
    if (cap === null) return logits
    // Gemma2ForCausalLM.forward: logits / cap → tanh → × cap.
    return logits.map((x) => Math.tanh(x / cap) * cap)
  }

  forward(options: ForwardOptions): ForwardResult {
    const c = this.config
    const d = c.hiddenSize
    if ((options.inputIds === undefined) === (options.inputsEmbeds === undefined)) {
      throw new Error('forward: give exactly one of inputIds and inputsEmbeds')
    }
    let hidden: Row[] =
      options.inputIds !== undefined
        ? options.inputIds.map((id) => this.embedRow(id))
        : (options.inputsEmbeds as readonly ArrayLike<number>[]).map((row, s) => {
            if (row.length !== d)
              throw new Error(`forward: inputsEmbeds[${s}] has ${row.length} values, expected ${d}`)
            return Float64Array.from(row)
          })
    const S = hidden.length
    if (S === 0) throw new Error('forward: empty input')
    const positions = options.positions ?? Array.from({ length: S }, (_, s) => s)
    if (positions.length !== S)
      throw new Error(`forward: ${positions.length} positions for ${S} rows`)
    if (this.#positionsTable) {
      // GPT2Model.forward: hidden = inputs_embeds + wpe(position_ids).
      for (let s = 0; s < S; s++) {
        const p = positions[s]!
        if (!Number.isInteger(p) || p < 0 || p >= c.maxPositions) {
          throw new Error(
            `forward: position ${p} is outside GPT-2's ${c.maxPositions} learned positions`
          )
        }
        const row = hidden[s]!
        for (let i = 0; i < d; i++) row[i] = row[i]! + this.#positionsTable[p * d + i]!
      }
    }
    const inputs = hidden.map((row) => Float64Array.from(row))
    const lastLayer = options.lastLayer ?? c.layers - 1
    if (!Number.isInteger(lastLayer) || lastLayer < -1 || lastLayer >= c.layers) {
      throw new Error(`forward: lastLayer ${lastLayer} is outside -1..${c.layers - 1}`)
    }
    const replace = options.replaceAfter
    if (replace) {
      if (replace.position < 0 || replace.position >= S)
        throw new Error('forward: replaceAfter.position out of range')
      if (replace.vector.length !== d)
        throw new Error('forward: replaceAfter.vector has the wrong width')
    }

    const blockOutputs: Row[][] = []
    for (let l = 0; l <= lastLayer; l++) {
      options.patch?.(l, hidden)
      hidden = this.#block(l, hidden, positions)
      if (replace && replace.layer === l)
        hidden[replace.position] = Float64Array.from(replace.vector)
      blockOutputs.push(hidden.map((row) => Float64Array.from(row)))
    }
    if (lastLayer < c.layers - 1) {
      return {
        inputs,
        blockOutputs,
        hiddenStates: [],
        finalHidden: [],
        logitRows: [],
        logitsNoSoftcap: [],
        logits: []
      }
    }
    const finalHidden = hidden.map((row) => this.#norm(row, this.#finalNorm, c.norm))
    const hiddenStates = [inputs, ...blockOutputs.slice(0, c.layers - 1), finalHidden]
    const logitRows = [...(options.logitRows ?? Array.from({ length: S }, (_, s) => s))]
    const logitsNoSoftcap = logitRows.map((s) => {
      if (s < 0 || s >= S) throw new Error(`forward: logit row ${s} is outside 0..${S - 1}`)
      return this.unembed(finalHidden[s]!)
    })
    const logits = logitsNoSoftcap.map((row) => this.softcap(Float64Array.from(row)))
    return { inputs, blockOutputs, hiddenStates, finalHidden, logitRows, logitsNoSoftcap, logits }
  }

  greedy(
    ids: readonly number[],
    maxNewTokens: number,
    stopIds: readonly number[] = [],
    replaceAfter?: ForwardOptions['replaceAfter']
  ): GreedyResult {
    const sequence = [...ids]
    const tokens: number[] = []
    const margins: number[] = []
    for (let step = 0; step < maxNewTokens; step++) {
      const { logits } = this.forward({
        inputIds: sequence,
        logitRows: [sequence.length - 1],
        replaceAfter
      })
      const { best, margin } = argmaxWithMargin(at(logits, 0, 'greedy: logits'))
      tokens.push(best)
      margins.push(margin)
      sequence.push(best)
      if (stopIds.includes(best)) break
    }
    return { tokens, margins }
  }

  // -------------------------------------------------------------------------------------------

  /** One decoder block over all rows (causal; sliding layers see keys with 0 ≤ q − k < window). */
  #block(l: number, hidden: Row[], positions: readonly number[]): Row[] {
    const c = this.config
    const w = at(this.#layers, l, 'block: layers')
    const S = hidden.length
    const attnIn = hidden.map((row) => this.#norm(row, w.norm1, c.norm))
    let attnOut = this.#attention(l, attnIn, positions)
    if (w.postAttnNorm)
      attnOut = attnOut.map((row) => this.#norm(row, w.postAttnNorm as NormWeights, c.norm))
    const mid = hidden.map((row, s) => add(row, attnOut[s]!))
    const mlpIn = mid.map((row) => this.#norm(row, w.norm2, c.norm))
    let mlpOut = mlpIn.map((row) => this.#mlp(w, row))
    if (w.postFfNorm)
      mlpOut = mlpOut.map((row) => this.#norm(row, w.postFfNorm as NormWeights, c.norm))
    const out: Row[] = []
    for (let s = 0; s < S; s++) out.push(add(mid[s]!, mlpOut[s]!))
    return out
  }

  #attention(l: number, x: Row[], positions: readonly number[]): Row[] {
    const c = this.config
    const w = at(this.#layers, l, 'attention: layers')
    const S = x.length
    const hd = c.headDim
    const q: Row[] = []
    const k: Row[] = []
    const v: Row[] = []
    for (let s = 0; s < S; s++) {
      const xs = x[s]!
      if (w.qkv) {
        // GPT2Attention: c_attn(x).split(d) → query, key, value; heads are contiguous hd chunks.
        const fused = apply(w.qkv, xs)
        const d = c.hiddenSize
        q.push(fused.slice(0, d))
        k.push(fused.slice(d, 2 * d))
        v.push(fused.slice(2 * d, 3 * d))
      } else {
        q.push(apply(w.q as Linear, xs))
        k.push(apply(w.k as Linear, xs))
        v.push(apply(w.v as Linear, xs))
      }
    }
    if (w.qNorm && w.kNorm) {
      // Qwen3Attention / Gemma3Attention: q_norm / k_norm over head_dim, before the rotation.
      for (let s = 0; s < S; s++) {
        q[s] = this.#perHeadNorm(q[s]!, c.heads, w.qNorm)
        k[s] = this.#perHeadNorm(k[s]!, c.kvHeads, w.kNorm)
      }
    }
    const rope = c.rope[l]
    if (rope) {
      for (let s = 0; s < S; s++) {
        rotate(q[s]!, c.heads, hd, positions[s]!, rope.invFreq, rope.attentionScaling)
        rotate(k[s]!, c.kvHeads, hd, positions[s]!, rope.invFreq, rope.attentionScaling)
      }
    }
    const sliding = c.layerTypes[l] === 'sliding_attention' && c.slidingWindow !== null
    const window = c.slidingWindow ?? Infinity
    const scale = at(c.attentionScale, l, 'attention: attentionScale')
    const cap = c.attnSoftcap
    const group = c.heads / c.kvHeads
    const out: Row[] = []
    for (let s = 0; s < S; s++) {
      const qs = q[s]!
      const merged = new Float64Array(c.heads * hd)
      for (let h = 0; h < c.heads; h++) {
        // repeat_kv: query head h reads key/value head ⌊h / group⌋.
        const kvh = Math.floor(h / group)
        const keys: number[] = []
        const scores: number[] = []
        for (let t = 0; t <= s; t++) {
          if (sliding && s - t >= window) continue
          const kt = k[t]!
          let dot = 0
          for (let i = 0; i < hd; i++) dot += qs[h * hd + i]! * kt[kvh * hd + i]!
          let score = dot * scale
          if (cap !== null) score = Math.tanh(score / cap) * cap
          keys.push(t)
          scores.push(score)
        }
        const probs = softmax(scores)
        for (let j = 0; j < keys.length; j++) {
          const p = probs[j]!
          const vt = v[keys[j]!]!
          for (let i = 0; i < hd; i++)
            merged[h * hd + i] = merged[h * hd + i]! + p * vt[kvh * hd + i]!
        }
      }
      out.push(apply(w.o, merged))
    }
    return out
  }

  #perHeadNorm(row: Row, heads: number, weights: NormWeights): Row {
    const hd = this.config.headDim
    const kind = this.config.norm // gemma_rmsnorm for Gemma-3, rmsnorm for Qwen3
    const out = new Float64Array(row.length)
    for (let h = 0; h < heads; h++)
      out.set(this.#norm(row.subarray(h * hd, (h + 1) * hd), weights, kind), h * hd)
    return out
  }

  #mlp(w: LayerWeights, x: Row): Row {
    const act = ACTIVATIONS[this.config.activation]
    if (w.fc && w.proj) {
      // GPT2MLP: c_proj(act(c_fc(x))).
      return apply(w.proj, apply(w.fc, x).map(act))
    }
    // LlamaMLP / Gemma2MLP: down_proj(act(gate_proj(x)) * up_proj(x)).
    const gate = apply(w.gate as Linear, x)
    const up = apply(w.up as Linear, x)
    const inner = new Float64Array(gate.length)
    for (let i = 0; i < gate.length; i++) inner[i] = act(gate[i]!) * up[i]!
    return apply(w.down as Linear, inner)
  }

  #norm(x: ArrayLike<number>, w: NormWeights, kind: ResolvedConfig['norm']): Row {
    const n = x.length
    const eps = this.config.normEps
    const out = new Float64Array(n)
    if (kind === 'layernorm') {
      // nn.LayerNorm: (x − mean) / sqrt(var + eps) · w + b, biased variance.
      let mean = 0
      for (let i = 0; i < n; i++) mean += x[i]!
      mean /= n
      let variance = 0
      for (let i = 0; i < n; i++) variance += (x[i]! - mean) ** 2
      variance /= n
      const inv = 1 / Math.sqrt(variance + eps)
      for (let i = 0; i < n; i++)
        out[i] = (x[i]! - mean) * inv * w.weight[i]! + (w.bias ? w.bias[i]! : 0)
      return out
    }
    // LlamaRMSNorm: x · rsqrt(mean(x²) + eps) · w; Gemma2RMSNorm/Gemma3RMSNorm: … · (1 + w).
    let meanSquare = 0
    for (let i = 0; i < n; i++) meanSquare += x[i]! * x[i]!
    meanSquare /= n
    const inv = 1 / Math.sqrt(meanSquare + eps)
    const offset = kind === 'gemma_rmsnorm' ? 1 : 0
    for (let i = 0; i < n; i++) out[i] = x[i]! * inv * (offset + w.weight[i]!)
    return out
  }
}

/** Applies rotary embeddings in place (rotate-half convention: pairs (i, i + hd/2)). */
function rotate(
  row: Row,
  heads: number,
  hd: number,
  position: number,
  invFreq: Float64Array,
  attentionScaling: number
): void {
  const half = hd / 2
  for (let i = 0; i < half; i++) {
    // emb = cat(freqs, freqs): dims i and i + half share the angle position · inv_freq[i].
    const angle = position * invFreq[i]!
    const cos = Math.cos(angle) * attentionScaling
    const sin = Math.sin(angle) * attentionScaling
    for (let h = 0; h < heads; h++) {
      const a = row[h * hd + i]!
      const b = row[h * hd + half + i]!
      // q·cos + rotate_half(q)·sin, rotate_half(q) = cat(−q₂, q₁)
      row[h * hd + i] = a * cos - b * sin
      row[h * hd + half + i] = b * cos + a * sin
    }
  }
}

function apply(layer: Linear | Conv1D, x: ArrayLike<number>): Row {
  const { inDim, outDim, weight, bias } = layer
  if (x.length !== inDim) throw new Error(`internal: ${x.length} inputs for a ${inDim}-wide layer`)
  const out = new Float64Array(outDim)
  if (layer.kind === 'linear') {
    for (let o = 0; o < outDim; o++) {
      let sum = bias ? bias[o]! : 0
      const base = o * inDim
      for (let i = 0; i < inDim; i++) sum += weight[base + i]! * x[i]!
      out[o] = sum
    }
  } else {
    for (let o = 0; o < outDim; o++) out[o] = (bias as Float32Array)[o]!
    for (let i = 0; i < inDim; i++) {
      const xi = x[i]!
      const base = i * outDim
      for (let o = 0; o < outDim; o++) out[o] = out[o]! + xi * weight[base + o]!
    }
  }
  return out
}

function add(a: Row, b: Row): Row {
  const out = new Float64Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!
  return out
}

export function softmax(values: readonly number[] | Row): Float64Array {
  let max = -Infinity
  for (const value of values) if (value > max) max = value
  const out = new Float64Array(values.length)
  let sum = 0
  for (let i = 0; i < values.length; i++) {
    const e = Math.exp(values[i]! - max)
    out[i] = e
    sum += e
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum
  return out
}

export function logSoftmax(values: Row): Float64Array {
  let max = -Infinity
  for (const value of values) if (value > max) max = value
  let sum = 0
  for (const value of values) sum += Math.exp(value - max)
  const logSum = max + Math.log(sum)
  return values.map((value) => value - logSum)
}

/** argmax (first index among equals, like torch.argmax) and the gap to the runner-up. */
export function argmaxWithMargin(values: Row): { best: number; margin: number } {
  let best = 0
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i
  let second = -Infinity
  for (let i = 0; i < values.length; i++) if (i !== best && values[i]! > second) second = values[i]!
  return { best, margin: values[best]! - second }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)

/** ACT2FN: gelu_new (NewGELUActivation) and gelu_pytorch_tanh are the same tanh formula; silu = x·σ(x). */
const ACTIVATIONS: Record<ResolvedConfig['activation'], (x: number) => number> = {
  gelu_new: geluTanh,
  gelu_pytorch_tanh: geluTanh,
  silu: (x) => x / (1 + Math.exp(-x))
}

function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
}

/**
 * Finds tensors under the prefix of the file's layout: `transformer.`/none (GPT-2),
 * `model.` (…ForCausalLM), `language_model.model.` / `model.language_model.` (multimodal Gemma-3).
 */
class TensorNames {
  readonly #prefix: string
  constructor(
    private readonly tensors: HfTensors,
    private readonly c: ResolvedConfig
  ) {
    const candidates =
      c.family === 'gpt2'
        ? ['transformer.', '']
        : c.family === 'gemma3'
          ? ['language_model.model.', 'model.language_model.']
          : ['model.']
    const embed = c.family === 'gpt2' ? 'wte.weight' : 'embed_tokens.weight'
    const found = candidates.find((prefix) => tensors.has(prefix + embed))
    if (found === undefined) {
      throw new Error(
        `checkpoint: no token embedding (looked for ${candidates.map((p) => p + embed).join(', ')})`
      )
    }
    this.#prefix = found
  }

  text(name: string): string {
    return this.#prefix + name
  }

  embedName(): string {
    return this.text(this.c.family === 'gpt2' ? 'wte.weight' : 'embed_tokens.weight')
  }

  lmHeadName(): string {
    const names = ['lm_head.weight', 'language_model.lm_head.weight']
    const found = names.find((name) => this.tensors.has(name))
    if (found === undefined)
      throw new Error('checkpoint: tie_word_embeddings is false but there is no lm_head.weight')
    return found
  }

  get(name: string, shape: number[]): Float32Array {
    const tensor: HfTensor | undefined = this.tensors.get(name)
    if (!tensor) throw new Error(`checkpoint: missing tensor ${name}`)
    if (tensor.shape.length !== shape.length || tensor.shape.some((n, i) => n !== shape[i])) {
      throw new Error(
        `checkpoint: tensor ${name} has shape [${tensor.shape}], config implies [${shape}]`
      )
    }
    return tensor.data
  }
}
