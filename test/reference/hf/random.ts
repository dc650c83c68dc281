/**
 * Random-weight Hugging Face checkpoints for tests: a config.json object as the Hub / `save_pretrained`
 * writes it and the tensors with the exact names and shapes `save_pretrained` of the causal-LM class
 * writes (or, for GPT-2, the original Hub file's layout). Seeded and small, so a test can write them
 * as safetensors, import them, and compare with `hfReference` on the same numbers.
 *
 * Shapes follow PyTorch: `nn.Linear` weights are (out, in), GPT-2's `Conv1D` weights are (in, out),
 * embeddings (vocab, d). Nothing here is shared with the reference's config resolution, so a wrong
 * default on either side shows up as a mismatch instead of cancelling out.
 */
import { createPrng, roundToBfloat16, roundToFloat16, type Prng } from './prng'
import type {
  HfConfigJson,
  HfFamily,
  HfTensor,
  HfTensors,
  LayerType,
  RopeScalingJson
} from './types'

export interface HfDims {
  hiddenSize: number
  layers: number
  heads: number
  /** Key/value heads (GQA); default = heads (GPT-2 has no GQA). */
  kvHeads?: number
  /** Attention head width; default hiddenSize / heads. Written to config.json where the family has it. */
  headDim?: number
  /** MLP width; default 4·d for GPT-2 (written as `n_inner: null`), 3·d otherwise. */
  intermediateSize?: number
  vocabSize: number
  /** Learned positions (GPT-2) / `max_position_embeddings`; default 128. */
  maxPositions?: number
}

export interface RandomHfModelOptions {
  /** PRNG seed; the same seed, family, dims and options give the same checkpoint. Default 1. */
  seed?: number
  /** `tie_word_embeddings`; default as the family's published models: true for GPT-2, Gemma, false otherwise. */
  tieWordEmbeddings?: boolean
  /** llama/mistral: write `head_dim` into config.json (always written for qwen3 and Gemma). Default: only when it differs from d/heads. */
  writeHeadDim?: boolean
  /** `rope_theta` (global layers for Gemma-3). Default 10000 (Gemma-3: 1e6). */
  ropeTheta?: number
  /** `rope_scaling` for llama/mistral/qwen2/qwen3, and Gemma-3's global layers. Default null. */
  ropeScaling?: RopeScalingJson | null
  /**
   * `sliding_window`. mistral: applied on every layer (default 6, so short test texts feel it; null
   * turns it off); qwen2/qwen3: only with `useSlidingWindow`, on layers ≥ `maxWindowLayers`
   * (default 6); gemma2/gemma3: the window of the sliding layers (default 5).
   */
  slidingWindow?: number | null
  /** qwen2/qwen3 `use_sliding_window`; default false. */
  useSlidingWindow?: boolean
  /** qwen2/qwen3 `max_window_layers`; default 1 (layers 1.. slide when `useSlidingWindow`). */
  maxWindowLayers?: number
  /** llama `attention_bias` (q/k/v/o biases), qwen3 `attention_bias`. Default false. */
  attentionBias?: boolean
  /** llama `mlp_bias`. Default false. */
  mlpBias?: boolean
  /** `rms_norm_eps` / GPT-2 `layer_norm_epsilon`. Default 1e-6 (GPT-2 1e-5, llama/mistral 1e-5 as published). */
  normEps?: number
  /** GPT-2 key layout: `prefixed` = `save_pretrained` of GPT2LMHeadModel (`transformer.…`); `original` = the Hub file (`h.0.…` plus `attn.bias` mask buffers). Default prefixed. */
  gpt2Layout?: 'prefixed' | 'original'
  /** GPT-2 `scale_attn_by_inverse_layer_idx`. Default false. */
  gpt2ScaleByInverseLayerIdx?: boolean
  /** Multimodal Gemma-3 key layout: `language_model.model.…` (files up to transformers 4.51) or `model.language_model.…` (4.52+). Default the former. */
  gemma3Layout?: 'language_model.model' | 'model.language_model'
  /** Multimodal Gemma-3: write `text_config` with only the fields that differ from Gemma3TextConfig's defaults, as the published configs do. Default true. */
  gemma3SparseTextConfig?: boolean
  /** gemma2 `attn_logit_softcapping` (default 50), gemma3 (default null). */
  attnLogitSoftcapping?: number | null
  /** gemma2 `final_logit_softcapping` (default 30), gemma3 (default null). */
  finalLogitSoftcapping?: number | null
  /** Gemma `query_pre_attn_scalar`; default headDim. */
  queryPreAttnScalar?: number
  /** gemma3 `rope_local_base_freq` (sliding layers' rotary base); default 10000. */
  ropeLocalBaseFreq?: number
  /** gemma2/gemma3: write these `layer_types` (otherwise gemma2 writes none, gemma3 writes `sliding_window_pattern`). */
  layerTypes?: LayerType[]
  /** gemma3 `sliding_window_pattern` when `layerTypes` is not given; default 2 (so tiny models have both kinds; published models use 6). */
  slidingWindowPattern?: number
  /** Standard deviation multiplier of the random weights; default 1. */
  weightScale?: number
  /** Round every weight to a bfloat16 value, so an F32 and a BF16 file of this checkpoint hold the same numbers. Default false. */
  bf16Exact?: boolean
  /** The same for IEEE half precision (F16 files). Default false. */
  f16Exact?: boolean
  bosTokenId?: number
  eosTokenId?: number | number[]
  padTokenId?: number | null
}

export interface RandomHfModel {
  family: HfFamily
  /** config.json as an object (write it with `JSON.stringify`). */
  config: HfConfigJson
  /** Every tensor of the checkpoint, in the order `save_pretrained` would list them. */
  tensors: HfTensors
}

const TRANSFORMERS_VERSION = '4.51.3'

/** Builds a seeded random checkpoint of `family` with the given widths. Throws on impossible dims. */
export function randomHfModel(
  family: HfFamily,
  dims: HfDims,
  opts: RandomHfModelOptions = {}
): RandomHfModel {
  checkDims(family, dims)
  const prng = createPrng(opts.seed ?? 1)
  if (opts.bf16Exact && opts.f16Exact) {
    throw new Error(`randomHfModel(${family}): choose one of bf16Exact and f16Exact`)
  }
  const round = opts.bf16Exact ? roundToBfloat16 : opts.f16Exact ? roundToFloat16 : undefined
  const builder = new TensorBuilder(prng, opts.weightScale ?? 1, round)
  switch (family) {
    case 'gpt2':
      return { family, ...gpt2(dims, opts, builder) }
    case 'llama':
    case 'mistral':
    case 'qwen2':
    case 'qwen3':
      return { family, ...llamaLike(family, dims, opts, builder) }
    case 'gemma2':
    case 'gemma3_text':
    case 'gemma3':
      return { family, ...gemma(family, dims, opts, builder) }
  }
}

function checkDims(family: HfFamily, dims: HfDims): void {
  const positive = (name: string, value: number | undefined): void => {
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
      throw new Error(
        `randomHfModel(${family}): dims.${name} must be a positive integer, got ${value}`
      )
    }
  }
  positive('hiddenSize', dims.hiddenSize)
  positive('layers', dims.layers)
  positive('heads', dims.heads)
  positive('kvHeads', dims.kvHeads)
  positive('headDim', dims.headDim)
  positive('intermediateSize', dims.intermediateSize)
  positive('vocabSize', dims.vocabSize)
  positive('maxPositions', dims.maxPositions)
  const kv = dims.kvHeads ?? dims.heads
  if (dims.heads % kv !== 0) {
    throw new Error(
      `randomHfModel(${family}): heads (${dims.heads}) must be a multiple of kvHeads (${kv})`
    )
  }
  if (dims.headDim === undefined && dims.hiddenSize % dims.heads !== 0) {
    throw new Error(
      `randomHfModel(${family}): hiddenSize must be a multiple of heads without headDim`
    )
  }
  if (family === 'gpt2' && (dims.kvHeads !== undefined || dims.headDim !== undefined)) {
    throw new Error('randomHfModel(gpt2): GPT-2 has neither kvHeads nor headDim')
  }
  if ((dims.headDim ?? dims.hiddenSize / dims.heads) % 2 !== 0) {
    throw new Error(`randomHfModel(${family}): the head width must be even (rotary halves)`)
  }
}

class TensorBuilder {
  readonly tensors: HfTensors = new Map()
  constructor(
    private readonly prng: Prng,
    private readonly scale: number,
    private readonly round: ((value: number) => number) | undefined
  ) {}

  /** A tensor of `mean + std·N(0,1)` values. */
  add(name: string, shape: number[], std: number, mean = 0): void {
    const size = shape.reduce((a, b) => a * b, 1)
    const data = new Float32Array(size)
    for (let i = 0; i < size; i++) {
      const value = mean + std * this.scale * this.prng.normal()
      data[i] = this.round ? this.round(value) : value
    }
    this.set(name, { shape, data })
  }

  /** A weight matrix with fan-in `fanIn`, scaled so activations stay O(1). */
  matrix(name: string, shape: number[], fanIn: number): void {
    this.add(name, shape, 1 / Math.sqrt(fanIn))
  }

  set(name: string, tensor: HfTensor): void {
    if (this.tensors.has(name)) throw new Error(`randomHfModel: duplicate tensor ${name}`)
    this.tensors.set(name, tensor)
  }
}

// ---------------------------------------------------------------------------------------------
// GPT-2

function gpt2(
  dims: HfDims,
  opts: RandomHfModelOptions,
  b: TensorBuilder
): { config: HfConfigJson; tensors: HfTensors } {
  const d = dims.hiddenSize
  const inner = dims.intermediateSize ?? 4 * d
  const positions = dims.maxPositions ?? 128
  const tied = opts.tieWordEmbeddings ?? true
  const layout = opts.gpt2Layout ?? 'prefixed'
  const config: HfConfigJson = {
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: 0.1,
    bos_token_id: opts.bosTokenId ?? dims.vocabSize - 1,
    embd_pdrop: 0.1,
    eos_token_id: opts.eosTokenId ?? dims.vocabSize - 1,
    initializer_range: 0.02,
    layer_norm_epsilon: opts.normEps ?? 1e-5,
    model_type: 'gpt2',
    n_ctx: positions,
    n_embd: d,
    n_head: dims.heads,
    n_inner: dims.intermediateSize === undefined ? null : inner,
    n_layer: dims.layers,
    n_positions: positions,
    reorder_and_upcast_attn: false,
    resid_pdrop: 0.1,
    scale_attn_by_inverse_layer_idx: opts.gpt2ScaleByInverseLayerIdx ?? false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    tie_word_embeddings: tied,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: dims.vocabSize
  }
  const p = layout === 'prefixed' ? 'transformer.' : ''
  b.add(`${p}wte.weight`, [dims.vocabSize, d], 0.2)
  b.add(`${p}wpe.weight`, [positions, d], 0.1)
  for (let l = 0; l < dims.layers; l++) {
    const h = `${p}h.${l}.`
    b.add(`${h}ln_1.weight`, [d], 0.2, 1)
    b.add(`${h}ln_1.bias`, [d], 0.1)
    if (layout === 'original') b.set(`${h}attn.bias`, causalMaskBuffer(positions))
    // Conv1D stores (in, out): y = x @ W + b.
    b.matrix(`${h}attn.c_attn.weight`, [d, 3 * d], d)
    b.add(`${h}attn.c_attn.bias`, [3 * d], 0.1)
    // Output projections ×3: the blocks outweigh the token's own (tied) embedding in the residual.
    b.add(`${h}attn.c_proj.weight`, [d, d], 3 / Math.sqrt(d))
    b.add(`${h}attn.c_proj.bias`, [d], 0.1)
    b.add(`${h}ln_2.weight`, [d], 0.2, 1)
    b.add(`${h}ln_2.bias`, [d], 0.1)
    b.matrix(`${h}mlp.c_fc.weight`, [d, inner], d)
    b.add(`${h}mlp.c_fc.bias`, [inner], 0.1)
    b.add(`${h}mlp.c_proj.weight`, [inner, d], 3 / Math.sqrt(inner))
    b.add(`${h}mlp.c_proj.bias`, [d], 0.1)
  }
  b.add(`${p}ln_f.weight`, [d], 0.2, 1)
  b.add(`${p}ln_f.bias`, [d], 0.1)
  if (!tied) b.add('lm_head.weight', [dims.vocabSize, d], 0.5)
  return { config, tensors: b.tensors }
}

/** The original GPT-2 file's `attn.bias` buffer: a (1, 1, n, n) lower-triangular float mask. */
function causalMaskBuffer(n: number): HfTensor {
  const data = new Float32Array(n * n)
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) data[i * n + j] = 1
  return { shape: [1, 1, n, n], data }
}

// ---------------------------------------------------------------------------------------------
// Llama, Mistral, Qwen2 (Qwen2.5), Qwen3

const CAUSAL_LM_ARCHITECTURE: Record<'llama' | 'mistral' | 'qwen2' | 'qwen3', string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM'
}

function llamaLike(
  family: 'llama' | 'mistral' | 'qwen2' | 'qwen3',
  dims: HfDims,
  opts: RandomHfModelOptions,
  b: TensorBuilder
): { config: HfConfigJson; tensors: HfTensors } {
  const d = dims.hiddenSize
  const heads = dims.heads
  const kvHeads = dims.kvHeads ?? heads
  const headDim = dims.headDim ?? d / heads
  const inner = dims.intermediateSize ?? 3 * d
  const tied = opts.tieWordEmbeddings ?? false
  const vocab = dims.vocabSize
  const common: HfConfigJson = {
    architectures: [CAUSAL_LM_ARCHITECTURE[family]],
    attention_dropout: 0.0,
    bos_token_id: opts.bosTokenId ?? 1,
    eos_token_id: opts.eosTokenId ?? 2,
    hidden_act: 'silu',
    hidden_size: d,
    initializer_range: 0.02,
    intermediate_size: inner,
    max_position_embeddings: dims.maxPositions ?? 128,
    model_type: family,
    num_attention_heads: heads,
    num_hidden_layers: dims.layers,
    num_key_value_heads: kvHeads,
    rms_norm_eps: opts.normEps ?? (family === 'llama' || family === 'mistral' ? 1e-5 : 1e-6),
    rope_scaling: opts.ropeScaling ?? null,
    rope_theta: opts.ropeTheta ?? 10000.0,
    tie_word_embeddings: tied,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: vocab
  }
  const writeHeadDim = opts.writeHeadDim ?? headDim !== d / heads
  const config: HfConfigJson = { ...common }
  switch (family) {
    case 'llama':
      Object.assign(config, {
        attention_bias: opts.attentionBias ?? false,
        mlp_bias: opts.mlpBias ?? false,
        pretraining_tp: 1
      })
      if (writeHeadDim) config.head_dim = headDim
      break
    case 'mistral':
      config.sliding_window = opts.slidingWindow === undefined ? 6 : opts.slidingWindow
      if (writeHeadDim) config.head_dim = headDim
      break
    case 'qwen2':
    case 'qwen3':
      Object.assign(config, {
        max_window_layers: opts.maxWindowLayers ?? 1,
        sliding_window: opts.slidingWindow === undefined ? 6 : opts.slidingWindow,
        use_sliding_window: opts.useSlidingWindow ?? false
      })
      if (family === 'qwen3') {
        config.head_dim = headDim
        config.attention_bias = opts.attentionBias ?? false
      } else {
        config.use_mrope = false
        if (writeHeadDim) {
          throw new Error('randomHfModel(qwen2): Qwen2 has no head_dim field (d / heads is used)')
        }
      }
      break
  }
  if (opts.padTokenId !== undefined) config.pad_token_id = opts.padTokenId
  sortKeys(config)

  if (family === 'qwen2' && headDim !== d / heads) {
    throw new Error('randomHfModel(qwen2): headDim must be d / heads')
  }
  const qkvBias = family === 'qwen2' || (opts.attentionBias ?? false)
  const oBias = family !== 'qwen2' && (opts.attentionBias ?? false)
  const mlpBias = family === 'llama' && (opts.mlpBias ?? false)

  b.add('model.embed_tokens.weight', [vocab, d], 1)
  for (let l = 0; l < dims.layers; l++) {
    const p = `model.layers.${l}.`
    b.add(`${p}input_layernorm.weight`, [d], 0.2, 1)
    b.matrix(`${p}self_attn.q_proj.weight`, [heads * headDim, d], d)
    if (qkvBias) b.add(`${p}self_attn.q_proj.bias`, [heads * headDim], 0.1)
    b.matrix(`${p}self_attn.k_proj.weight`, [kvHeads * headDim, d], d)
    if (qkvBias) b.add(`${p}self_attn.k_proj.bias`, [kvHeads * headDim], 0.1)
    b.matrix(`${p}self_attn.v_proj.weight`, [kvHeads * headDim, d], d)
    if (qkvBias) b.add(`${p}self_attn.v_proj.bias`, [kvHeads * headDim], 0.1)
    b.matrix(`${p}self_attn.o_proj.weight`, [d, heads * headDim], heads * headDim)
    if (oBias) b.add(`${p}self_attn.o_proj.bias`, [d], 0.1)
    if (family === 'qwen3') {
      b.add(`${p}self_attn.q_norm.weight`, [headDim], 0.2, 1)
      b.add(`${p}self_attn.k_norm.weight`, [headDim], 0.2, 1)
    }
    b.add(`${p}post_attention_layernorm.weight`, [d], 0.2, 1)
    b.matrix(`${p}mlp.gate_proj.weight`, [inner, d], d)
    if (mlpBias) b.add(`${p}mlp.gate_proj.bias`, [inner], 0.1)
    b.matrix(`${p}mlp.up_proj.weight`, [inner, d], d)
    if (mlpBias) b.add(`${p}mlp.up_proj.bias`, [inner], 0.1)
    b.matrix(`${p}mlp.down_proj.weight`, [d, inner], inner)
    if (mlpBias) b.add(`${p}mlp.down_proj.bias`, [d], 0.1)
  }
  b.add('model.norm.weight', [d], 0.2, 1)
  if (!tied) b.add('lm_head.weight', [vocab, d], 4 / Math.sqrt(d))
  return { config, tensors: b.tensors }
}

// ---------------------------------------------------------------------------------------------
// Gemma-2, Gemma-3 (text), Gemma-3 (multimodal: text model + a dummy SigLIP tower)

/** Gemma3TextConfig's defaults (configuration_gemma3.py), for the sparse multimodal text_config. */
const GEMMA3_TEXT_DEFAULTS: HfConfigJson = {
  vocab_size: 262208,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  max_position_embeddings: 131072,
  initializer_range: 0.02,
  rms_norm_eps: 1e-6,
  use_cache: true,
  pad_token_id: 0,
  eos_token_id: 1,
  bos_token_id: 2,
  tie_word_embeddings: true,
  rope_theta: 1000000.0,
  attention_bias: false,
  attention_dropout: 0.0,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  final_logit_softcapping: null,
  attn_logit_softcapping: null,
  cache_implementation: 'hybrid',
  rope_scaling: null,
  rope_local_base_freq: 10000.0,
  sliding_window_pattern: 6
}

function gemma(
  family: 'gemma2' | 'gemma3_text' | 'gemma3',
  dims: HfDims,
  opts: RandomHfModelOptions,
  b: TensorBuilder
): { config: HfConfigJson; tensors: HfTensors } {
  const d = dims.hiddenSize
  const heads = dims.heads
  const kvHeads = dims.kvHeads ?? heads
  const headDim = dims.headDim ?? d / heads
  const inner = dims.intermediateSize ?? 3 * d
  const vocab = dims.vocabSize
  const tied = opts.tieWordEmbeddings ?? true
  const gemma3 = family !== 'gemma2'
  if (opts.layerTypes !== undefined && opts.layerTypes.length !== dims.layers) {
    throw new Error(`randomHfModel(${family}): layerTypes needs ${dims.layers} entries`)
  }
  if (!gemma3 && opts.ropeScaling) {
    throw new Error('randomHfModel(gemma2): Gemma-2 has no rope_scaling')
  }

  const text: HfConfigJson = {
    architectures: [gemma3 ? 'Gemma3ForCausalLM' : 'Gemma2ForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    attn_logit_softcapping:
      opts.attnLogitSoftcapping === undefined ? (gemma3 ? null : 50.0) : opts.attnLogitSoftcapping,
    bos_token_id: opts.bosTokenId ?? 2,
    cache_implementation: 'hybrid',
    eos_token_id: opts.eosTokenId ?? 1,
    final_logit_softcapping:
      opts.finalLogitSoftcapping === undefined
        ? gemma3
          ? null
          : 30.0
        : opts.finalLogitSoftcapping,
    head_dim: headDim,
    hidden_activation: 'gelu_pytorch_tanh',
    hidden_size: d,
    initializer_range: 0.02,
    intermediate_size: inner,
    max_position_embeddings: dims.maxPositions ?? 128,
    model_type: gemma3 ? 'gemma3_text' : 'gemma2',
    num_attention_heads: heads,
    num_hidden_layers: dims.layers,
    num_key_value_heads: kvHeads,
    pad_token_id: opts.padTokenId === undefined ? 0 : opts.padTokenId,
    query_pre_attn_scalar: opts.queryPreAttnScalar ?? headDim,
    rms_norm_eps: opts.normEps ?? 1e-6,
    rope_theta: opts.ropeTheta ?? (gemma3 ? 1000000.0 : 10000.0),
    sliding_window: opts.slidingWindow === undefined ? 5 : opts.slidingWindow,
    tie_word_embeddings: tied,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: vocab
  }
  if (!gemma3) {
    // The published Gemma-2 configs carry both spellings of the activation.
    text.hidden_act = 'gelu_pytorch_tanh'
  } else {
    text.rope_local_base_freq = opts.ropeLocalBaseFreq ?? 10000.0
    text.rope_scaling = opts.ropeScaling ?? null
  }
  if (opts.layerTypes !== undefined) text.layer_types = [...opts.layerTypes]
  else if (gemma3) text.sliding_window_pattern = opts.slidingWindowPattern ?? 2
  sortKeys(text)

  // Text-model tensors under the prefix of the file's layout.
  let prefix = 'model.'
  let lmHead = 'lm_head.weight'
  if (family === 'gemma3') {
    const layout = opts.gemma3Layout ?? 'language_model.model'
    prefix = `${layout}.`
    lmHead = layout === 'language_model.model' ? 'language_model.lm_head.weight' : 'lm_head.weight'
  }
  // Published Gemma tables are small (the model multiplies by √d): scaled rows come out O(1).
  b.add(`${prefix}embed_tokens.weight`, [vocab, d], 1 / Math.sqrt(d))
  for (let l = 0; l < dims.layers; l++) {
    const p = `${prefix}layers.${l}.`
    // Gemma's RMSNorm multiplies by (1 + w): weights are centred on 0.
    b.add(`${p}input_layernorm.weight`, [d], 0.2)
    b.matrix(`${p}self_attn.q_proj.weight`, [heads * headDim, d], d)
    b.matrix(`${p}self_attn.k_proj.weight`, [kvHeads * headDim, d], d)
    b.matrix(`${p}self_attn.v_proj.weight`, [kvHeads * headDim, d], d)
    b.matrix(`${p}self_attn.o_proj.weight`, [d, heads * headDim], heads * headDim)
    if (gemma3) {
      b.add(`${p}self_attn.q_norm.weight`, [headDim], 0.2)
      b.add(`${p}self_attn.k_norm.weight`, [headDim], 0.2)
    }
    // Post-sublayer norms set the blocks' share of the residual: (1 + w) ≈ 5 keeps a tied
    // unembedding from simply predicting the input token again.
    b.add(`${p}post_attention_layernorm.weight`, [d], 0.2, 4)
    b.add(`${p}pre_feedforward_layernorm.weight`, [d], 0.2)
    b.add(`${p}post_feedforward_layernorm.weight`, [d], 0.2, 4)
    b.matrix(`${p}mlp.gate_proj.weight`, [inner, d], d)
    b.matrix(`${p}mlp.up_proj.weight`, [inner, d], d)
    b.matrix(`${p}mlp.down_proj.weight`, [d, inner], inner)
  }
  b.add(`${prefix}norm.weight`, [d], 0.2)
  if (!tied) b.add(lmHead, [vocab, d], 1)

  if (family !== 'gemma3') return { config: text, tensors: b.tensors }
  return { config: gemma3Multimodal(text, opts, b, vocab), tensors: b.tensors }
}

/** Wraps a Gemma-3 text config into the multimodal config and adds a tiny SigLIP tower + projector. */
function gemma3Multimodal(
  text: HfConfigJson,
  opts: RandomHfModelOptions,
  b: TensorBuilder,
  vocab: number
): HfConfigJson {
  const vision = {
    hidden_size: 16,
    image_size: 16,
    intermediate_size: 32,
    layer_norm_eps: 1e-6,
    model_type: 'siglip_vision_model',
    num_attention_heads: 2,
    num_channels: 3,
    num_hidden_layers: 1,
    patch_size: 4,
    vision_use_head: false
  }
  const textConfig: HfConfigJson = { ...text }
  delete textConfig.architectures
  delete textConfig.torch_dtype
  delete textConfig.transformers_version
  if (opts.gemma3SparseTextConfig ?? true) {
    for (const [key, value] of Object.entries(GEMMA3_TEXT_DEFAULTS)) {
      if (JSON.stringify(textConfig[key]) === JSON.stringify(value)) delete textConfig[key]
    }
    textConfig.model_type = 'gemma3_text'
  }
  sortKeys(textConfig)
  // Special image tokens: the published ids when the vocabulary is real, the last ids otherwise.
  const realVocab = vocab >= 262144
  const config: HfConfigJson = {
    architectures: ['Gemma3ForConditionalGeneration'],
    boi_token_index: realVocab ? 255999 : vocab - 3,
    eoi_token_index: realVocab ? 256000 : vocab - 2,
    eos_token_id: opts.eosTokenId ?? (realVocab ? [1, 106] : 1),
    image_token_index: realVocab ? 262144 : vocab - 1,
    initializer_range: 0.02,
    mm_tokens_per_image: 4,
    model_type: 'gemma3',
    text_config: textConfig,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    vision_config: vision
  }
  if (text.tie_word_embeddings === false) config.tie_word_embeddings = false

  const layout = opts.gemma3Layout ?? 'language_model.model'
  const top = layout === 'language_model.model' ? '' : 'model.'
  const v = `${top}vision_tower.vision_model.`
  const h = vision.hidden_size
  const patches = (vision.image_size / vision.patch_size) ** 2
  b.add(`${v}embeddings.patch_embedding.weight`, [h, 3, vision.patch_size, vision.patch_size], 0.1)
  b.add(`${v}embeddings.patch_embedding.bias`, [h], 0.1)
  b.add(`${v}embeddings.position_embedding.weight`, [patches, h], 0.1)
  for (let l = 0; l < vision.num_hidden_layers; l++) {
    const p = `${v}encoder.layers.${l}.`
    b.add(`${p}layer_norm1.weight`, [h], 0.1, 1)
    b.add(`${p}layer_norm1.bias`, [h], 0.1)
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      b.matrix(`${p}self_attn.${proj}.weight`, [h, h], h)
      b.add(`${p}self_attn.${proj}.bias`, [h], 0.1)
    }
    b.add(`${p}layer_norm2.weight`, [h], 0.1, 1)
    b.add(`${p}layer_norm2.bias`, [h], 0.1)
    b.matrix(`${p}mlp.fc1.weight`, [vision.intermediate_size, h], h)
    b.add(`${p}mlp.fc1.bias`, [vision.intermediate_size], 0.1)
    b.matrix(`${p}mlp.fc2.weight`, [h, vision.intermediate_size], vision.intermediate_size)
    b.add(`${p}mlp.fc2.bias`, [h], 0.1)
  }
  b.add(`${v}post_layernorm.weight`, [h], 0.1, 1)
  b.add(`${v}post_layernorm.bias`, [h], 0.1)
  const textHidden = text.hidden_size as number
  b.add(`${top}multi_modal_projector.mm_input_projection_weight`, [h, textHidden], 0.1)
  b.add(`${top}multi_modal_projector.mm_soft_emb_norm.weight`, [h], 0.1)
  return config
}

/** config.json files list their keys sorted (`json.dumps(..., sort_keys=True)`). */
function sortKeys(config: HfConfigJson): void {
  const entries = Object.entries(config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  for (const key of Object.keys(config)) delete config[key]
  for (const [key, value] of entries) config[key] = value
}
