/**
 * A Hugging Face `config.json` → ArchSpec. Every field is read as the family's configuration class
 * defaults it (configuration_<family>.py), both in the older layout (top-level `rope_theta`,
 * `rope_scaling`) and the newer one (`rope_parameters`, per layer type for Gemma-3). Anything the
 * graph would not compute exactly as the modeling code does is refused with an error that names the
 * field, the value found and what is supported — never approximated.
 */
import type {
  Activation,
  ArchFamily,
  ArchSpec,
  LayerAttention,
  Rope,
  RopeScaling
} from '../../engine'
import { checkArchSpec } from '../../engine'
import { CheckpointError } from '../errors'

/** The `model_type` values accepted, and the family each maps to. */
export const SUPPORTED_MODEL_TYPES: Readonly<Record<string, Exclude<ArchFamily, 'prenorm-gpt'>>> = {
  gpt2: 'gpt2',
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  gemma2: 'gemma2',
  gemma3_text: 'gemma3',
  gemma3: 'gemma3'
}

export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'llama3'] as const

/** Known model types with mixture-of-experts blocks, named in the refusal. */
const MOE_TYPES = new Set([
  'gpt_oss',
  'mixtral',
  'qwen2_moe',
  'qwen3_moe',
  'deepseek_v2',
  'deepseek_v3',
  'dbrx',
  'olmoe',
  'jamba',
  'granitemoe',
  'phimoe'
])

const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  gelu: 'gelu_erf',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  silu: 'silu',
  swish: 'silu',
  relu: 'relu'
}

type Json = Record<string, unknown>

class Reader {
  constructor(
    readonly obj: Json,
    readonly file: string,
    /** Dotted prefix of `obj` inside the file ('' or 'text_config'). */
    readonly at: string
  ) {}

  path(key: string): string {
    return this.at ? `${this.at}.${key}` : key
  }

  fail(key: string, message: string): never {
    throw configError(this.file, this.path(key), message)
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null
  }

  raw(key: string): unknown {
    return this.obj[key]
  }

  int(key: string, fallback: number, min = 1): number {
    const v = this.obj[key]
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      this.fail(key, `must be an integer ≥ ${min}, got ${JSON.stringify(v)}`)
    }
    return v
  }

  num(key: string, fallback: number): number {
    const v = this.obj[key]
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.fail(key, `must be a number, got ${JSON.stringify(v)}`)
    }
    return v
  }

  /** A sliding window: a positive integer, or null when the key is explicitly null. */
  window(key: string, fallback: number | null): number | null {
    if (!(key in this.obj)) return fallback
    return this.obj[key] === null ? null : this.int(key, 0)
  }

  /** A number, or null when the key is explicitly null; `fallback` when absent. */
  numOrNull(key: string, fallback: number | null): number | null {
    if (!(key in this.obj)) return fallback
    const v = this.obj[key]
    if (v === null) return null
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.fail(key, `must be a number or null, got ${JSON.stringify(v)}`)
    }
    return v
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.obj[key]
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(v)}`)
    return v
  }

  str(key: string, fallback: string): string {
    const v = this.obj[key]
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${JSON.stringify(v)}`)
    return v
  }

  /** An object-valued key as its own reader (null when absent). */
  sub(key: string): Reader | null {
    const v = this.obj[key]
    if (v === undefined || v === null) return null
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.fail(key, `must be an object, got ${JSON.stringify(v)}`)
    }
    return new Reader(v as Json, this.file, this.path(key))
  }
}

/**
 * A config.json the graph cannot compute exactly: a checkpoint error (the CLI exits 3), naming the
 * file and the dotted field.
 */
function configError(file: string, field: string, message: string): CheckpointError {
  return new CheckpointError('unsupported_model', `${file}: ${field}: ${message}`, { file, field })
}

/** Parses one rope description ({rope_type|type, factor, ...}); `theta` from wherever it lives. */
function ropeScalingOf(r: Reader | null): RopeScaling | null {
  if (!r) return null
  const type = r.has('rope_type') ? r.str('rope_type', 'default') : r.str('type', 'default')
  const typeKey = r.has('rope_type') ? 'rope_type' : 'type'
  switch (type) {
    case 'default':
      return null
    case 'linear':
      return { type: 'linear', factor: positive(r, 'factor') }
    case 'llama3': {
      const low = positive(r, 'low_freq_factor')
      const high = positive(r, 'high_freq_factor')
      if (!(high > low))
        r.fail('high_freq_factor', `must exceed low_freq_factor ${low}, got ${high}`)
      return {
        type: 'llama3',
        factor: positive(r, 'factor'),
        lowFreqFactor: low,
        highFreqFactor: high,
        originalMaxPositions: r.int('original_max_position_embeddings', 0)
      }
    }
  }
  return r.fail(
    typeKey,
    `rope type ${JSON.stringify(type)} is not supported (supported: ${SUPPORTED_ROPE_TYPES.join(', ')})`
  )
}

function positive(r: Reader, key: string): number {
  if (!r.has(key)) r.fail(key, 'is required for this rope type')
  const v = r.num(key, 0)
  if (!(v > 0)) r.fail(key, `must be > 0, got ${v}`)
  return v
}

/**
 * The rope of a single-rope family: `rope_parameters` (newer layout, holds rope_theta) or the
 * top-level `rope_theta` + `rope_scaling`.
 */
function singleRope(c: Reader, defaultTheta: number): Rope {
  const params = c.sub('rope_parameters')
  if (params && !params.has('full_attention') && !params.has('sliding_attention')) {
    return {
      theta: params.has('rope_theta')
        ? params.num('rope_theta', 0)
        : c.num('rope_theta', defaultTheta),
      scaling: ropeScalingOf(params)
    }
  }
  if (params) c.fail('rope_parameters', 'per-layer-type rope parameters are only read for Gemma-3')
  return { theta: c.num('rope_theta', defaultTheta), scaling: ropeScalingOf(c.sub('rope_scaling')) }
}

function checkTheta(c: Reader, rope: Rope, field: string): Rope {
  if (!(rope.theta > 0)) c.fail(field, `rope theta must be > 0, got ${rope.theta}`)
  return rope
}

function activationOf(c: Reader, key: string, fallback: string): Activation {
  const name = c.str(key, fallback)
  const act = ACTIVATIONS[name]
  if (!act) {
    c.fail(
      key,
      `activation ${JSON.stringify(name)} is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`
    )
  }
  return act
}

/** layer_types as given, checked; or null when absent. */
function layerTypesOf(
  c: Reader,
  layers: number
): ('sliding_attention' | 'full_attention')[] | null {
  const v = c.raw('layer_types')
  if (v === undefined || v === null) return null
  if (!Array.isArray(v) || v.length !== layers) {
    c.fail('layer_types', `must list one type per layer (${layers}), got ${JSON.stringify(v)}`)
  }
  return v.map((t, i) => {
    if (t !== 'sliding_attention' && t !== 'full_attention') {
      c.fail(
        `layer_types.${i}`,
        `${JSON.stringify(t)} is not supported (supported: sliding_attention, full_attention)`
      )
    }
    return t
  })
}

function refuseCommon(c: Reader): void {
  if (c.has('quantization_config')) {
    const q = c.sub('quantization_config')
    const method = q?.has('quant_method')
      ? ` (quant_method ${JSON.stringify(q.raw('quant_method'))})`
      : ''
    c.fail(
      'quantization_config',
      `quantised checkpoints are not supported${method}; import the unquantised float32, float16 or bfloat16 weights`
    )
  }
  for (const key of ['num_local_experts', 'num_experts', 'n_routed_experts']) {
    if (c.has(key)) {
      c.fail(key, 'mixture-of-experts models are not supported (supported: dense decoders)')
    }
  }
  const partial = c.num('partial_rotary_factor', 1)
  if (partial !== 1) {
    c.fail(
      'partial_rotary_factor',
      `partial rotary embeddings are not supported (got ${partial}; supported: 1)`
    )
  }
  if (c.bool('use_bidirectional_attention', false)) {
    c.fail(
      'use_bidirectional_attention',
      'bidirectional attention is not supported (supported: causal decoders)'
    )
  }
}

interface Common {
  d: number
  layers: number
  heads: number
  kvHeads: number
  headDim: number
  ffn: number
  vocab: number
  maxPositions: number
}

function dims(c: Reader, defaults: Omit<Common, 'headDim'> & { headDim: number | null }): Common {
  const d = c.int('hidden_size', defaults.d)
  const heads = c.int('num_attention_heads', defaults.heads)
  // An absent key takes the class default; an explicit null means "as many as the query heads".
  const kvDefault =
    defaults.kvHeads > 0 && c.raw('num_key_value_heads') !== null ? defaults.kvHeads : heads
  const kvHeads = c.int('num_key_value_heads', kvDefault)
  const headDim = c.int('head_dim', defaults.headDim ?? Math.floor(d / heads))
  if (heads % kvHeads !== 0) {
    c.fail('num_key_value_heads', `${kvHeads} must divide num_attention_heads ${heads}`)
  }
  return {
    d,
    layers: c.int('num_hidden_layers', defaults.layers),
    heads,
    kvHeads,
    headDim,
    ffn: c.int('intermediate_size', defaults.ffn),
    vocab: c.int('vocab_size', defaults.vocab),
    maxPositions: c.int('max_position_embeddings', defaults.maxPositions)
  }
}

function uniformLayers(
  n: number,
  scale: number,
  window: (l: number) => number | null,
  rope: (l: number) => 'global' | 'local' = () => 'global'
): LayerAttention[] {
  return Array.from({ length: n }, (_, l) => ({ window: window(l), rope: rope(l), scale }))
}

function gpt2(c: Reader): ArchSpec {
  if (c.bool('add_cross_attention', false)) {
    c.fail(
      'add_cross_attention',
      'cross-attention blocks are not supported (supported: decoder-only GPT-2)'
    )
  }
  const d = c.int('n_embd', 768)
  const heads = c.int('n_head', 12)
  if (d % heads !== 0) c.fail('n_head', `must divide n_embd ${d}, got ${heads}`)
  const layers = c.int('n_layer', 12)
  const headDim = d / heads
  const byDepth = c.bool('scale_attn_by_inverse_layer_idx', false)
  const base = c.bool('scale_attn_weights', true) ? 1 / Math.sqrt(headDim) : 1
  return {
    family: 'gpt2',
    hiddenSize: d,
    layers,
    heads,
    kvHeads: heads,
    headDim,
    ffnSize: c.int('n_inner', 4 * d),
    vocabSize: c.int('vocab_size', 50257),
    maxPositions: c.int('n_positions', 1024),
    norm: { kind: 'layernorm', eps: c.num('layer_norm_epsilon', 1e-5) },
    positions: { kind: 'learned' },
    attention: {
      qkvBias: true,
      outBias: true,
      qkNorm: false,
      logitSoftcap: null,
      perLayer: Array.from({ length: layers }, (_, l) => ({
        window: null,
        rope: 'global' as const,
        scale: byDepth ? base / (l + 1) : base
      }))
    },
    mlp: {
      kind: 'plain',
      activation: activationOf(c, 'activation_function', 'gelu_new'),
      bias: true
    },
    sandwichNorms: false,
    embeddingScale: 1,
    finalLogitSoftcap: null,
    tiedEmbeddings: c.bool('tie_word_embeddings', true)
  }
}

/** Llama, Mistral, Qwen2, Qwen3: RMSNorm, rotary, SwiGLU, GQA. */
function llamaLike(c: Reader, family: 'llama' | 'mistral' | 'qwen2' | 'qwen3'): ArchSpec {
  const defaults = {
    llama: {
      d: 4096,
      layers: 32,
      heads: 32,
      kvHeads: 0,
      headDim: null,
      ffn: 11008,
      vocab: 32000,
      maxPositions: 2048
    },
    mistral: {
      d: 4096,
      layers: 32,
      heads: 32,
      kvHeads: 8,
      headDim: null,
      ffn: 14336,
      vocab: 32000,
      maxPositions: 131072
    },
    qwen2: {
      d: 4096,
      layers: 32,
      heads: 32,
      kvHeads: 32,
      headDim: null,
      ffn: 22016,
      vocab: 151936,
      maxPositions: 32768
    },
    qwen3: {
      d: 4096,
      layers: 32,
      heads: 32,
      kvHeads: 32,
      headDim: 128,
      ffn: 22016,
      vocab: 151936,
      maxPositions: 32768
    }
  }[family]
  const m = dims(c, defaults)
  const rope = checkTheta(c, singleRope(c, 10000), 'rope_theta')
  let windows: (number | null)[]
  if (family === 'mistral') {
    // MistralModel masks every layer with the window when config.sliding_window is set.
    windows = Array<number | null>(m.layers).fill(c.window('sliding_window', 4096))
  } else if (family === 'qwen2' || family === 'qwen3') {
    // Qwen2Config/Qwen3Config: sliding_window only when use_sliding_window; layer_types default to
    // sliding for layers ≥ max_window_layers.
    const win = c.bool('use_sliding_window', false) ? c.window('sliding_window', 4096) : null
    const maxWindowLayers = c.int('max_window_layers', 28, 0)
    const types =
      layerTypesOf(c, m.layers) ??
      Array.from({ length: m.layers }, (_, i) =>
        win !== null && i >= maxWindowLayers ? 'sliding_attention' : 'full_attention'
      )
    windows = types.map((t) => (t === 'sliding_attention' ? win : null))
  } else {
    windows = Array<number | null>(m.layers).fill(null)
  }
  const attentionBias = family === 'qwen2' ? true : c.bool('attention_bias', false)
  const mlpBias = family === 'llama' ? c.bool('mlp_bias', false) : false
  return {
    family,
    hiddenSize: m.d,
    layers: m.layers,
    heads: m.heads,
    kvHeads: m.kvHeads,
    headDim: m.headDim,
    ffnSize: m.ffn,
    vocabSize: m.vocab,
    maxPositions: m.maxPositions,
    norm: { kind: 'rmsnorm', eps: c.num('rms_norm_eps', 1e-6) },
    positions: { kind: 'rotary', global: rope, local: null },
    attention: {
      // Qwen2: biases on q, k, v only; Llama/Qwen3 attention_bias covers q, k, v and o.
      qkvBias: attentionBias,
      outBias: family === 'qwen2' ? false : attentionBias,
      qkNorm: family === 'qwen3',
      logitSoftcap: null,
      perLayer: uniformLayers(m.layers, 1 / Math.sqrt(m.headDim), (l) => windows[l]!)
    },
    mlp: { kind: 'gated', activation: activationOf(c, 'hidden_act', 'silu'), bias: mlpBias },
    sandwichNorms: false,
    embeddingScale: 1,
    finalLogitSoftcap: null,
    tiedEmbeddings: c.bool('tie_word_embeddings', false)
  }
}

function gemma(c: Reader, family: 'gemma2' | 'gemma3', tiedFallback: boolean): ArchSpec {
  const m = dims(c, {
    d: 2304,
    layers: 26,
    heads: 8,
    kvHeads: 4,
    headDim: 256,
    ffn: 9216,
    vocab: family === 'gemma2' ? 256000 : 262208,
    maxPositions: family === 'gemma2' ? 8192 : 131072
  })
  const win = c.window('sliding_window', 4096)
  // Gemma-2 alternates sliding and full from layer 0; Gemma-3 has one full layer in every
  // `sliding_window_pattern` (default 6), both unless layer_types lists them.
  const pattern = family === 'gemma2' ? 2 : c.int('sliding_window_pattern', 6)
  const types =
    layerTypesOf(c, m.layers) ??
    Array.from({ length: m.layers }, (_, i) =>
      (i + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention'
    )
  let global: Rope
  let local: Rope | null = null
  const params = c.sub('rope_parameters')
  if (family === 'gemma3') {
    const full = params?.sub('full_attention')
    const sliding = params?.sub('sliding_attention')
    if (params && !full && !sliding && params.has('rope_type')) {
      c.fail(
        'rope_parameters',
        'Gemma-3 reads rope_parameters per layer type (full_attention, sliding_attention)'
      )
    }
    global = full
      ? {
          theta: full.num('rope_theta', c.num('rope_theta', 1_000_000)),
          scaling: ropeScalingOf(full)
        }
      : { theta: c.num('rope_theta', 1_000_000), scaling: ropeScalingOf(c.sub('rope_scaling')) }
    // The local rope is the default type at rope_local_base_freq unless rope_parameters says otherwise.
    local = sliding
      ? {
          theta: sliding.num('rope_theta', c.num('rope_local_base_freq', 10_000)),
          scaling: ropeScalingOf(sliding)
        }
      : { theta: c.num('rope_local_base_freq', 10_000), scaling: null }
    checkTheta(c, local, 'rope_local_base_freq')
  } else {
    global = singleRope(c, 10000)
  }
  checkTheta(c, global, 'rope_theta')
  const scale = 1 / Math.sqrt(c.num('query_pre_attn_scalar', 256))
  const attentionBias = c.bool('attention_bias', false)
  return {
    family,
    hiddenSize: m.d,
    layers: m.layers,
    heads: m.heads,
    kvHeads: m.kvHeads,
    headDim: m.headDim,
    ffnSize: m.ffn,
    vocabSize: m.vocab,
    maxPositions: m.maxPositions,
    norm: { kind: 'gemma-rmsnorm', eps: c.num('rms_norm_eps', 1e-6) },
    positions: { kind: 'rotary', global, local },
    attention: {
      qkvBias: attentionBias,
      outBias: attentionBias,
      qkNorm: family === 'gemma3',
      // Gemma3Attention never passes a softcap to its attention function, whatever the config says.
      logitSoftcap: family === 'gemma2' ? c.numOrNull('attn_logit_softcapping', 50) : null,
      perLayer: uniformLayers(
        m.layers,
        scale,
        (l) => (types[l] === 'sliding_attention' ? win : null),
        (l) => (family === 'gemma3' && types[l] === 'sliding_attention' ? 'local' : 'global')
      )
    },
    mlp: {
      kind: 'gated',
      activation: activationOf(c, 'hidden_activation', 'gelu_pytorch_tanh'),
      bias: false
    },
    sandwichNorms: true,
    // √d as the float32 tensor HF multiplies by (Gemma2Model's normalizer; Gemma-3's
    // Gemma3TextScaledWordEmbedding). We emulate a float32 run, not bfloat16's rounding of it.
    embeddingScale: Math.fround(Math.sqrt(m.d)),
    finalLogitSoftcap: c.numOrNull('final_logit_softcapping', family === 'gemma2' ? 30 : null),
    tiedEmbeddings: c.bool('tie_word_embeddings', tiedFallback)
  }
}

/** What archFromHfConfig read besides the spec: which key layout the weights will have. */
export interface HfArchitecture {
  spec: ArchSpec
  /** `model_type` as found (gemma3 = the multimodal checkpoint, whose text model is used). */
  modelType: string
  /** The multimodal Gemma-3 wrapper: weights under language_model; vision tower ignored. */
  multimodal: boolean
}

/** Reads a parsed `config.json` (named `file` in errors) into the graph's ArchSpec. */
export function archFromHfConfig(config: unknown, file: string): ArchSpec {
  return readHfArchitecture(config, file).spec
}

export function readHfArchitecture(config: unknown, file: string): HfArchitecture {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw configError(file, '(root)', 'must be a JSON object')
  }
  const root = new Reader(config as Json, file, '')
  const modelType = root.str('model_type', '')
  const supported = Object.keys(SUPPORTED_MODEL_TYPES).join(', ')
  if (!modelType) root.fail('model_type', `is missing (supported: ${supported})`)
  if (MOE_TYPES.has(modelType)) {
    root.fail(
      'model_type',
      `${JSON.stringify(modelType)} is a mixture-of-experts model, which is not supported (supported: ${supported})`
    )
  }
  const family = SUPPORTED_MODEL_TYPES[modelType]
  if (!family)
    return root.fail(
      'model_type',
      `${JSON.stringify(modelType)} is not supported (supported: ${supported})`
    )
  refuseCommon(root)
  let spec: ArchSpec
  let multimodal = false
  if (modelType === 'gemma3') {
    multimodal = true
    const text = root.sub('text_config') ?? new Reader({}, file, 'text_config')
    const textType = text.str('model_type', 'gemma3_text')
    if (textType !== 'gemma3_text') {
      text.fail(
        'model_type',
        `${JSON.stringify(textType)} is not supported inside a gemma3 checkpoint (supported: gemma3_text)`
      )
    }
    refuseCommon(text)
    spec = gemma(text, 'gemma3', root.bool('tie_word_embeddings', true))
  } else if (family === 'gpt2') {
    spec = gpt2(root)
  } else if (family === 'gemma2' || family === 'gemma3') {
    spec = gemma(root, family, true)
  } else {
    spec = llamaLike(root, family)
  }
  try {
    checkArchSpec(spec)
  } catch (err) {
    throw configError(file, '(architecture)', (err as Error).message)
  }
  return { spec, modelType, multimodal }
}
