/**
 * Reads a config.json object the way the Hugging Face configuration classes do (their defaults,
 * their derived fields) and turns it into the handful of numbers the float64 reference needs.
 * Each rule names the HF code it follows; docs/reference-hf.md lists them.
 */
import type { HfConfigJson, HfFamily, LayerType } from './types'

export type NormKind = 'layernorm' | 'rmsnorm' | 'gemma_rmsnorm'
export type Activation = 'gelu_new' | 'gelu_pytorch_tanh' | 'silu'

/** Rotary table of one layer: inv_freq per pair and the cos/sin post-scaling (1 for the supported kinds). */
export interface RopeTable {
  invFreq: Float64Array
  attentionScaling: number
}

export interface ResolvedConfig {
  /** model_type of the checkpoint (`gemma3` = multimodal; its text model is what runs). */
  family: HfFamily
  hiddenSize: number
  layers: number
  heads: number
  kvHeads: number
  headDim: number
  intermediateSize: number
  vocabSize: number
  maxPositions: number
  norm: NormKind
  normEps: number
  activation: Activation
  tieWordEmbeddings: boolean
  /** Multiplier of q·k (before softcap and mask), per layer. */
  attentionScale: number[]
  attnSoftcap: number | null
  finalSoftcap: number | null
  qkvBias: boolean
  oBias: boolean
  mlpBias: boolean
  /** qwen3 / gemma3: RMSNorm over each head's q and k before the rotation. */
  qkNorm: boolean
  /** Gemma: post-attention, pre- and post-feed-forward norms around the sublayers. */
  sandwichNorms: boolean
  layerTypes: LayerType[]
  /** Window of the sliding layers (a key is visible iff 0 ≤ q − k < window). */
  slidingWindow: number | null
  /** Per layer; null for GPT-2 (learned positions). */
  rope: (RopeTable | null)[]
  /** Token-embedding multiplier: √d rounded to float32 for Gemma (see docs/reference-hf.md), 1 otherwise. */
  embedScale: number
  /** GPT-2 learned absolute positions. */
  learnedPositions: boolean
}

/** Throws a clear error for a field of the wrong kind. */
function num(config: HfConfigJson, key: string, fallback?: number): number {
  const value = config[key]
  if (value === undefined || value === null) {
    if (fallback === undefined) throw new Error(`config.json: missing number field "${key}"`)
    return fallback
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`config.json: field "${key}" must be a number, got ${JSON.stringify(value)}`)
  }
  return value
}

function optNum(config: HfConfigJson, key: string, fallback: number | null): number | null {
  const value = config[key]
  if (value === undefined) return fallback
  if (value === null) return null
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(
      `config.json: field "${key}" must be a number or null, got ${JSON.stringify(value)}`
    )
  }
  return value
}

function bool(config: HfConfigJson, key: string, fallback: boolean): boolean {
  const value = config[key]
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'boolean') {
    throw new Error(`config.json: field "${key}" must be a boolean, got ${JSON.stringify(value)}`)
  }
  return value
}

/** Per family: the configuration class's defaults for the fields the modeling code reads. */
const DEFAULTS: Record<Exclude<HfFamily, 'gemma3'>, HfConfigJson> = {
  // GPT2Config.__init__
  gpt2: {
    vocab_size: 50257,
    n_positions: 1024,
    n_embd: 768,
    n_layer: 12,
    n_head: 12,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    tie_word_embeddings: true
  },
  // LlamaConfig.__init__
  llama: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: null,
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    head_dim: null
  },
  // MistralConfig.__init__
  mistral: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 14336,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: null,
    hidden_act: 'silu',
    max_position_embeddings: 4096 * 32,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    sliding_window: 4096
  },
  // Qwen2Config
  qwen2: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    hidden_act: 'silu',
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    rope_scaling: null,
    use_sliding_window: false,
    sliding_window: 4096,
    max_window_layers: 28
  },
  // Qwen3Config
  qwen3: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    head_dim: 128,
    hidden_act: 'silu',
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    rope_theta: 10000.0,
    rope_scaling: null,
    attention_bias: false,
    use_sliding_window: false,
    sliding_window: 4096,
    max_window_layers: 28
  },
  // Gemma2Config
  gemma2: {
    vocab_size: 256000,
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    rope_theta: 10000.0,
    attention_bias: false,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    final_logit_softcapping: 30.0,
    attn_logit_softcapping: 50.0
  },
  // Gemma3TextConfig
  gemma3_text: {
    vocab_size: 262208,
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    rope_theta: 1000000.0,
    attention_bias: false,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
    rope_scaling: null,
    rope_local_base_freq: 10000.0,
    sliding_window_pattern: 6
  }
}

const SUPPORTED = 'gpt2, llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gemma3'

/** The config the text model is built from (multimodal Gemma-3: `text_config`, defaults filled). */
export function textConfigOf(config: HfConfigJson): {
  family: HfFamily
  text: HfConfigJson
  textType: Exclude<HfFamily, 'gemma3'>
} {
  const modelType = config.model_type
  if (typeof modelType !== 'string') throw new Error('config.json: missing "model_type"')
  if (modelType === 'gemma3') {
    const sub = config.text_config
    if (sub !== undefined && (typeof sub !== 'object' || sub === null || Array.isArray(sub))) {
      throw new Error('config.json: "text_config" must be an object')
    }
    // Gemma3Config: text_config=None → Gemma3TextConfig(); a dict → Gemma3TextConfig(**dict).
    const textJson = (sub ?? {}) as HfConfigJson
    const text: HfConfigJson = { ...DEFAULTS.gemma3_text, ...textJson }
    // The multimodal class ties lm_head through the top-level config (PretrainedConfig default true).
    text.tie_word_embeddings = bool(config, 'tie_word_embeddings', true)
    return { family: 'gemma3', text, textType: 'gemma3_text' }
  }
  if (!(modelType in DEFAULTS)) {
    throw new Error(
      `config.json: model_type "${modelType}" is not supported (supported: ${SUPPORTED})`
    )
  }
  const textType = modelType as Exclude<HfFamily, 'gemma3'>
  return { family: textType, text: { ...DEFAULTS[textType], ...config }, textType }
}

export function resolveHfConfig(config: HfConfigJson): ResolvedConfig {
  const { family, text, textType } = textConfigOf(config)
  if (textType === 'gpt2') return resolveGpt2(text)
  return resolveRotary(family, textType, text)
}

function resolveGpt2(c: HfConfigJson): ResolvedConfig {
  const d = num(c, 'n_embd')
  const heads = num(c, 'n_head')
  const layers = num(c, 'n_layer')
  if (d % heads !== 0) throw new Error('config.json: n_embd must be a multiple of n_head')
  const activation = c.activation_function
  if (activation !== 'gelu_new' && activation !== 'gelu_pytorch_tanh') {
    throw new Error(
      `config.json: activation_function "${String(activation)}" is not supported by the reference (gelu_new, gelu_pytorch_tanh)`
    )
  }
  const headDim = d / heads
  const scaleWeights = bool(c, 'scale_attn_weights', true)
  const byLayer = bool(c, 'scale_attn_by_inverse_layer_idx', false)
  // GPT2Attention._attn: w / sqrt(head_dim) when scale_attn_weights, then / (layer_idx + 1).
  const attentionScale = Array.from(
    { length: layers },
    (_, l) => (scaleWeights ? 1 / Math.sqrt(headDim) : 1) / (byLayer ? l + 1 : 1)
  )
  return {
    family: 'gpt2',
    hiddenSize: d,
    layers,
    heads,
    kvHeads: heads,
    headDim,
    // GPT2Block: inner_dim = n_inner if not None else 4 * hidden_size
    intermediateSize: optNum(c, 'n_inner', null) ?? 4 * d,
    vocabSize: num(c, 'vocab_size'),
    maxPositions: num(c, 'n_positions'),
    norm: 'layernorm',
    normEps: num(c, 'layer_norm_epsilon'),
    activation,
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', true),
    attentionScale,
    attnSoftcap: null,
    finalSoftcap: null,
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    qkNorm: false,
    sandwichNorms: false,
    layerTypes: Array.from({ length: layers }, () => 'full_attention'),
    slidingWindow: null,
    rope: Array.from({ length: layers }, () => null),
    embedScale: 1,
    learnedPositions: true
  }
}

function resolveRotary(
  family: HfFamily,
  textType: Exclude<HfFamily, 'gemma3' | 'gpt2'>,
  c: HfConfigJson
): ResolvedConfig {
  const d = num(c, 'hidden_size')
  const heads = num(c, 'num_attention_heads')
  const layers = num(c, 'num_hidden_layers')
  // Llama/Qwen2/Qwen3: num_key_value_heads None → num_attention_heads.
  const kvHeads = optNum(c, 'num_key_value_heads', null) ?? heads
  if (heads % kvHeads !== 0) {
    throw new Error('config.json: num_attention_heads must be a multiple of num_key_value_heads')
  }
  const gemma = textType === 'gemma2' || textType === 'gemma3_text'
  // LlamaAttention: getattr(config, "head_dim", None) or hidden_size // num_attention_heads.
  // Qwen2Attention has no head_dim field: hidden_size // num_attention_heads.
  const headDim =
    textType === 'qwen2'
      ? Math.floor(d / heads)
      : (optNum(c, 'head_dim', null) ?? Math.floor(d / heads))
  const activationKey = gemma ? 'hidden_activation' : 'hidden_act'
  const activation = c[activationKey]
  if (activation !== 'silu' && activation !== 'gelu_pytorch_tanh' && activation !== 'gelu_new') {
    throw new Error(
      `config.json: ${activationKey} "${String(activation)}" is not supported by the reference (silu, gelu_pytorch_tanh, gelu_new)`
    )
  }

  const layerTypes = resolveLayerTypes(textType, c, layers)
  const slidingWindow = resolveSlidingWindow(textType, c)
  if (slidingWindow === null) layerTypes.fill('full_attention')

  // Attention scaling: Gemma query_pre_attn_scalar ** -0.5, everyone else head_dim ** -0.5.
  const scale = gemma ? num(c, 'query_pre_attn_scalar') ** -0.5 : headDim ** -0.5
  const attentionBias = bool(c, 'attention_bias', false)
  return {
    family,
    hiddenSize: d,
    layers,
    heads,
    kvHeads,
    headDim,
    intermediateSize: num(c, 'intermediate_size'),
    vocabSize: num(c, 'vocab_size'),
    maxPositions: num(c, 'max_position_embeddings'),
    norm: gemma ? 'gemma_rmsnorm' : 'rmsnorm',
    normEps: num(c, 'rms_norm_eps'),
    activation,
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', false),
    attentionScale: Array.from({ length: layers }, () => scale),
    attnSoftcap: gemma ? optNum(c, 'attn_logit_softcapping', null) : null,
    finalSoftcap: gemma ? optNum(c, 'final_logit_softcapping', null) : null,
    // Qwen2Attention: q/k/v bias=True, o_proj bias=False; Llama/Qwen3/Gemma: attention_bias.
    qkvBias: textType === 'qwen2' ? true : attentionBias,
    oBias: textType === 'qwen2' ? false : attentionBias,
    mlpBias: textType === 'llama' ? bool(c, 'mlp_bias', false) : false,
    qkNorm: textType === 'qwen3' || textType === 'gemma3_text',
    sandwichNorms: gemma,
    layerTypes,
    slidingWindow,
    rope: resolveRope(textType, c, layerTypes, headDim),
    // Gemma2Model.forward: hidden * torch.tensor(hidden_size**0.5, dtype=hidden.dtype);
    // Gemma3TextScaledWordEmbedding: embed_scale.to(weight.dtype). In float32 both are fround(√d).
    embedScale: gemma ? Math.fround(Math.sqrt(d)) : 1,
    learnedPositions: false
  }
}

function resolveLayerTypes(
  textType: Exclude<HfFamily, 'gemma3' | 'gpt2'>,
  c: HfConfigJson,
  layers: number
): LayerType[] {
  const given = c.layer_types
  if (given !== undefined && given !== null) {
    if (!Array.isArray(given) || given.length !== layers) {
      throw new Error(`config.json: "layer_types" must list ${layers} entries`)
    }
    return given.map((entry, i) => {
      if (entry !== 'full_attention' && entry !== 'sliding_attention') {
        throw new Error(`config.json: layer_types[${i}] "${String(entry)}" is not supported`)
      }
      return entry
    })
  }
  return Array.from({ length: layers }, (_, i): LayerType => {
    switch (textType) {
      case 'gemma2':
        // Gemma2Config: "sliding_attention" if bool((i + 1) % 2) (layer 0 slides).
        return (i + 1) % 2 !== 0 ? 'sliding_attention' : 'full_attention'
      case 'gemma3_text': {
        // Gemma3TextConfig: sliding iff bool((i + 1) % sliding_window_pattern).
        const pattern = num(c, 'sliding_window_pattern', num(c, '_sliding_window_pattern', 6))
        return (i + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention'
      }
      case 'qwen2':
      case 'qwen3':
        // Qwen2Config: sliding iff sliding_window is not None and i >= max_window_layers.
        return i >= num(c, 'max_window_layers') ? 'sliding_attention' : 'full_attention'
      case 'mistral':
        // MistralAttention passes config.sliding_window to every layer.
        return 'sliding_attention'
      case 'llama':
        return 'full_attention'
    }
  })
}

function resolveSlidingWindow(
  textType: Exclude<HfFamily, 'gemma3' | 'gpt2'>,
  c: HfConfigJson
): number | null {
  switch (textType) {
    case 'llama':
      return null
    case 'qwen2':
    case 'qwen3':
      // Qwen2Config: sliding_window if use_sliding_window else None.
      return bool(c, 'use_sliding_window', false) ? optNum(c, 'sliding_window', null) : null
    default:
      return optNum(c, 'sliding_window', null)
  }
}

interface RopeSpec {
  theta: number
  scaling: Record<string, unknown> | null
}

function resolveRope(
  textType: Exclude<HfFamily, 'gemma3' | 'gpt2'>,
  c: HfConfigJson,
  layerTypes: LayerType[],
  headDim: number
): RopeTable[] {
  const partial = num(c, 'partial_rotary_factor', 1)
  if (partial !== 1) throw new Error('config.json: partial_rotary_factor ≠ 1 is not supported')
  const specs = ropeSpecs(textType, c)
  const tables = new Map<LayerType, RopeTable>()
  for (const kind of ['full_attention', 'sliding_attention'] as const) {
    tables.set(kind, ropeTable(specs[kind], headDim))
  }
  return layerTypes.map((kind) => tables.get(kind) as RopeTable)
}

/** rope_theta / rope_scaling per attention kind (transformers ≥ 5 `rope_parameters` accepted too). */
function ropeSpecs(
  textType: Exclude<HfFamily, 'gemma3' | 'gpt2'>,
  c: HfConfigJson
): Record<LayerType, RopeSpec> {
  const params = c.rope_parameters
  if (params !== undefined && params !== null && typeof params === 'object') {
    const p = params as Record<string, unknown>
    const one = (entry: unknown): RopeSpec => {
      const e = entry as Record<string, unknown>
      const theta = e.rope_theta
      if (typeof theta !== 'number')
        throw new Error('config.json: rope_parameters without rope_theta')
      return { theta, scaling: e }
    }
    if ('full_attention' in p || 'sliding_attention' in p) {
      const full = one(p.full_attention ?? p.sliding_attention)
      return {
        full_attention: full,
        sliding_attention: one(p.sliding_attention ?? p.full_attention)
      }
    }
    const flat = one(p)
    return { full_attention: flat, sliding_attention: flat }
  }
  const scaling = c.rope_scaling
  if (
    scaling !== undefined &&
    scaling !== null &&
    (typeof scaling !== 'object' || Array.isArray(scaling))
  ) {
    throw new Error('config.json: "rope_scaling" must be an object or null')
  }
  const global: RopeSpec = {
    theta: num(c, 'rope_theta'),
    scaling: (scaling ?? null) as Record<string, unknown> | null
  }
  if (textType === 'gemma3_text') {
    // Gemma3: local (sliding) layers use rope_local_base_freq with default RoPE; global layers
    // use rope_theta and rope_scaling.
    return {
      full_attention: global,
      sliding_attention: { theta: num(c, 'rope_local_base_freq'), scaling: null }
    }
  }
  if (textType === 'gemma2' && global.scaling !== null) {
    throw new Error('config.json: Gemma-2 has no rope_scaling')
  }
  return { full_attention: global, sliding_attention: global }
}

/**
 * modeling_rope_utils: `_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`,
 * `_compute_llama3_parameters`. Computed in float64 (HF computes inv_freq in float32).
 */
function ropeTable(spec: RopeSpec, headDim: number): RopeTable {
  const half = headDim / 2
  const invFreq = new Float64Array(half)
  // inv_freq = 1 / base ** (arange(0, dim, 2) / dim)
  for (let i = 0; i < half; i++) invFreq[i] = 1 / spec.theta ** ((2 * i) / headDim)
  const scaling = spec.scaling
  const type = scaling === null ? 'default' : String(scaling.rope_type ?? scaling.type ?? 'default')
  const factorOf = (): number => {
    const factor = scaling?.factor
    if (typeof factor !== 'number' || !(factor > 0)) {
      throw new Error(`config.json: rope_scaling "${type}" needs a positive "factor"`)
    }
    return factor
  }
  switch (type) {
    case 'default':
      break
    case 'linear': {
      const factor = factorOf()
      for (let i = 0; i < half; i++) invFreq[i] = invFreq[i]! / factor
      break
    }
    case 'llama3': {
      const s = scaling as Record<string, unknown>
      const factor = factorOf()
      const low = s.low_freq_factor
      const high = s.high_freq_factor
      const old = s.original_max_position_embeddings
      if (typeof low !== 'number' || typeof high !== 'number' || typeof old !== 'number') {
        throw new Error(
          'config.json: rope_scaling "llama3" needs low_freq_factor, high_freq_factor, original_max_position_embeddings'
        )
      }
      const lowWavelen = old / low
      const highWavelen = old / high
      for (let i = 0; i < half; i++) {
        const unscaled = invFreq[i]!
        const wavelen = (2 * Math.PI) / unscaled
        if (wavelen > lowWavelen) invFreq[i] = unscaled / factor
        else if (wavelen >= highWavelen) {
          // Medium band: interpolate between the scaled and the unscaled frequency.
          const smooth = (old / wavelen - low) / (high - low)
          invFreq[i] = (1 - smooth) * (unscaled / factor) + smooth * unscaled
        }
      }
      break
    }
    default:
      throw new Error(
        `config.json: rope_scaling type "${type}" is not supported by the reference (default, linear, llama3)`
      )
  }
  return { invFreq, attentionScaling: 1 }
}
