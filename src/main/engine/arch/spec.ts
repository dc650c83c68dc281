/**
 * ArchSpec: the normalised description of a decoder-only transformer that the base-graph builder
 * consumes. Every architecture the Workbench runs is one of these: the demo and synthetic bundles'
 * pre-norm GPT, and the Hugging Face families (GPT-2, Llama, Mistral, Qwen2, Qwen3, Gemma-2,
 * Gemma-3) as src/main/import/hf/config.ts reads them from a checkpoint's config.json. The numerics
 * each field selects are those of the Hugging Face modeling code run in float32 (docs/bundle-format.md,
 * "Architectures").
 */

/** Which modeling code the spec reproduces; the graph only looks at the fields below. */
export type ArchFamily =
  'prenorm-gpt' | 'gpt2' | 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma2' | 'gemma3'

export const ARCH_FAMILIES: readonly ArchFamily[] = [
  'prenorm-gpt',
  'gpt2',
  'llama',
  'mistral',
  'qwen2',
  'qwen3',
  'gemma2',
  'gemma3'
]

/**
 * - `layernorm`: (x − mean)/√(var + eps)·w + b (nn.LayerNorm).
 * - `rmsnorm`: x/√(mean(x²) + eps)·w (LlamaRMSNorm, computed in float32).
 * - `gemma-rmsnorm`: x/√(mean(x²) + eps)·(1 + w) (Gemma2RMSNorm / Gemma3RMSNorm, float32); the
 *   weight stored in the graph is already 1 + w, rounded to float32 as HF's `1.0 + w.float()` is.
 */
export type NormKind = 'layernorm' | 'rmsnorm' | 'gemma-rmsnorm'

/** Rotary frequency scaling (modeling_rope_utils.py); others are refused at import. */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3'
      factor: number
      lowFreqFactor: number
      highFreqFactor: number
      originalMaxPositions: number
    }

export interface Rope {
  /** Base period (`rope_theta`, or `rope_local_base_freq` for Gemma-3's sliding layers). */
  theta: number
  scaling: RopeScaling | null
}

/**
 * `learned`: a (maxPositions, d) table added to every input row (GPT-2). `rotary`: q and k rotated
 * in the rotate-half convention (HF `apply_rotary_pos_emb`) by their absolute position; `local`
 * is the rope of sliding-window layers where it differs from the global one (Gemma-3).
 */
export type Positions = { kind: 'learned' } | { kind: 'rotary'; global: Rope; local: Rope | null }

export interface LayerAttention {
  /**
   * Sliding window w: a query at position i sees keys j with i − w < j ≤ i (HF masking_utils
   * `sliding_window_overlay`: kv_idx > q_idx − w). null: every earlier key.
   */
  window: number | null
  /** Which rope this layer rotates with ('local' only when `positions.local` is set). */
  rope: 'global' | 'local'
  /** Multiplier on q·k (head_dim^−½, query_pre_attn_scalar^−½, GPT-2's 1/(layer+1) included). */
  scale: number
}

export type Activation = 'gelu_erf' | 'gelu_tanh' | 'silu' | 'relu'

export interface ArchSpec {
  family: ArchFamily
  hiddenSize: number
  layers: number
  heads: number
  /** Key/value heads (grouped-query attention when < heads; heads % kvHeads === 0). */
  kvHeads: number
  /** Per-head width; may differ from hiddenSize / heads (Gemma, Qwen3). */
  headDim: number
  ffnSize: number
  vocabSize: number
  maxPositions: number
  norm: { kind: NormKind; eps: number }
  positions: Positions
  attention: {
    /** Biases on q, k, v (GPT-2, Qwen2, Llama's attention_bias). */
    qkvBias: boolean
    /** Bias on the output projection. */
    outBias: boolean
    /** Per-head norm (of `norm.kind`, width headDim) on q and k before the rotation (Qwen3, Gemma-3). */
    qkNorm: boolean
    /** Gemma-2: scores = cap·tanh(scores/cap) before the mask. */
    logitSoftcap: number | null
    /** One entry per layer. */
    perLayer: LayerAttention[]
  }
  mlp: {
    /** `plain`: down(act(up(x))); `gated`: down(act(gate(x))·up(x)) (SwiGLU, GeGLU). */
    kind: 'plain' | 'gated'
    activation: Activation
    bias: boolean
  }
  /**
   * Gemma's four norms per block: x + post_attn(attn(input(x))), then x + post_ffw(mlp(pre_ffw(x))).
   * Otherwise pre-norm: x + attn(norm1(x)), x + mlp(norm2(x)).
   */
  sandwichNorms: boolean
  /**
   * Multiplier on token-embedding rows, as the float32 value the model uses: √d for Gemma
   * (HF builds it as a float32 tensor from the Python double hiddenSize**0.5, so the graph holds
   * Math.fround(√d); a bfloat16 run would round further, e.g. √3072 → 55.5, which we do not emulate),
   * 1 elsewhere. Soft prompts and prefix rows arrive already multiplied (docs/bundle-format.md).
   */
  embeddingScale: number
  /** Final-logit softcapping of the model's own predictions (Gemma-2): cap·tanh(logits/cap). */
  finalLogitSoftcap: number | null
  /** lm_head shares the token-embedding table (stored once; unembedded with Gemm transB). */
  tiedEmbeddings: boolean
}

/** The graph's dtype; float32 everywhere today (float16 is planned for GPUs). */
export type GraphDtype = 'float32'

export function rotary(spec: ArchSpec): Extract<Positions, { kind: 'rotary' }> | null {
  return spec.positions.kind === 'rotary' ? spec.positions : null
}

/** The distinct sliding windows of a spec (null = full causal), in first-use order. */
export function windowsOf(spec: ArchSpec): (number | null)[] {
  const out: (number | null)[] = []
  for (const l of spec.attention.perLayer) if (!out.includes(l.window)) out.push(l.window)
  return out
}

/** The spec of the demo and synthetic bundles' pre-norm GPT (docs/bundle-format.md). */
export function preNormGptSpec(dims: {
  hiddenSize: number
  layers: number
  heads: number
  vocabSize: number
  ffnSize: number
  maxPositions: number
  embeddingScale: number
}): ArchSpec {
  const headDim = dims.hiddenSize / dims.heads
  return {
    family: 'prenorm-gpt',
    hiddenSize: dims.hiddenSize,
    layers: dims.layers,
    heads: dims.heads,
    kvHeads: dims.heads,
    headDim,
    ffnSize: dims.ffnSize,
    vocabSize: dims.vocabSize,
    maxPositions: dims.maxPositions,
    norm: { kind: 'layernorm', eps: 1e-5 },
    positions: { kind: 'learned' },
    attention: {
      qkvBias: true,
      outBias: true,
      qkNorm: false,
      logitSoftcap: null,
      perLayer: Array.from({ length: dims.layers }, () => ({
        window: null,
        rope: 'global' as const,
        scale: 1 / Math.sqrt(headDim)
      }))
    },
    mlp: { kind: 'plain', activation: 'gelu_erf', bias: true },
    sandwichNorms: false,
    embeddingScale: dims.embeddingScale,
    finalLogitSoftcap: null,
    tiedEmbeddings: false
  }
}

/** Invariants the graph builder relies on; throws naming the field. */
export function checkArchSpec(spec: ArchSpec): void {
  const fail = (field: string, msg: string): never => {
    throw new Error(`architecture (${spec.family}): ${field} ${msg}`)
  }
  const posInt = (field: string, v: number): void => {
    if (!Number.isInteger(v) || v <= 0) fail(field, `must be a positive integer, got ${v}`)
  }
  posInt('hiddenSize', spec.hiddenSize)
  posInt('layers', spec.layers)
  posInt('heads', spec.heads)
  posInt('kvHeads', spec.kvHeads)
  posInt('headDim', spec.headDim)
  posInt('ffnSize', spec.ffnSize)
  posInt('vocabSize', spec.vocabSize)
  posInt('maxPositions', spec.maxPositions)
  if (spec.heads % spec.kvHeads !== 0) {
    fail('kvHeads', `${spec.kvHeads} must divide heads ${spec.heads}`)
  }
  if (!(spec.norm.eps >= 0)) fail('norm.eps', `must be ≥ 0, got ${spec.norm.eps}`)
  if (spec.attention.perLayer.length !== spec.layers) {
    fail(
      'attention.perLayer',
      `has ${spec.attention.perLayer.length} entries for ${spec.layers} layers`
    )
  }
  const rope = rotary(spec)
  if (rope && spec.headDim % 2 !== 0) fail('headDim', `must be even for rotary positions`)
  spec.attention.perLayer.forEach((l, i) => {
    if (l.window !== null) posInt(`attention.perLayer[${i}].window`, l.window)
    if (l.rope === 'local' && !rope?.local) {
      fail(`attention.perLayer[${i}].rope`, 'is "local" but the spec has no local rope')
    }
    if (!(l.scale > 0)) fail(`attention.perLayer[${i}].scale`, `must be > 0, got ${l.scale}`)
  })
  if (spec.family === 'prenorm-gpt' || spec.family === 'gpt2') {
    if (spec.heads * spec.headDim !== spec.hiddenSize) {
      fail('headDim', `× heads must equal hiddenSize for ${spec.family}`)
    }
  }
  for (const cap of [spec.attention.logitSoftcap, spec.finalLogitSoftcap]) {
    if (cap !== null && !(cap > 0)) fail('softcap', `must be > 0 or null, got ${cap}`)
  }
  if (!(spec.embeddingScale > 0)) fail('embeddingScale', `must be > 0, got ${spec.embeddingScale}`)
}
