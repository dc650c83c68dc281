/**
 * Small random checkpoints in Hugging Face layout for every supported family: a config.json object
 * and tensors by their HF names (as save_pretrained writes them), so tests exercise the config
 * reader, the weight plan and the graph together. Names and shapes follow the modeling code's
 * modules (GPT2Block, LlamaDecoderLayer, Gemma2DecoderLayer, …), written out here on their own.
 */
import { Rng } from '../../src/main/engine/random'

export interface HfTensor {
  shape: number[]
  data: Float32Array
}

export interface HfCheckpoint {
  config: Record<string, unknown>
  tensors: Map<string, HfTensor>
}

export type Family = 'gpt2' | 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma2' | 'gemma3_text'

/** Tiny dims shared by the fixtures: head_dim ≠ d / heads and kv < heads where the family allows. */
export const TINY = { d: 32, layers: 3, heads: 4, kvHeads: 2, headDim: 12, ffn: 40, vocab: 61 }

function tensor(rng: Rng, shape: number[], std: number, mean = 0): HfTensor {
  const n = shape.reduce((a, b) => a * b, 1)
  const data = new Float32Array(n)
  for (let i = 0; i < n; i++) data[i] = mean + rng.normal() * std
  return { shape, data }
}

/** A config for `family` with TINY dims; `extra` overrides or adds keys. */
export function tinyConfig(
  family: Family,
  extra: Record<string, unknown> = {}
): Record<string, unknown> {
  const t = TINY
  if (family === 'gpt2') {
    return {
      model_type: 'gpt2',
      n_embd: t.d,
      n_layer: t.layers,
      n_head: t.heads,
      n_positions: 64,
      vocab_size: t.vocab,
      n_inner: t.ffn,
      ...extra
    }
  }
  const base: Record<string, unknown> = {
    model_type: family,
    hidden_size: t.d,
    num_hidden_layers: t.layers,
    num_attention_heads: t.heads,
    num_key_value_heads: t.kvHeads,
    head_dim: t.headDim,
    intermediate_size: t.ffn,
    vocab_size: t.vocab,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    rope_theta: 10000
  }
  return { ...base, ...extra }
}

/**
 * Random weights for `config` (a family's config.json), under `prefix` (`model.`, ``, `transformer.`,
 * `language_model.model.` …). `lmHead`: where an untied head is stored; tied heads store none
 * unless `storeTiedHead`.
 */
export function randomCheckpoint(
  config: Record<string, unknown>,
  opts: { seed: number; prefix?: string; lmHead?: string; storeTiedHead?: boolean }
): HfCheckpoint {
  const rng = new Rng(opts.seed)
  const tensors = new Map<string, HfTensor>()
  const c = config as Record<string, number & boolean & string>
  const type = c.model_type as string
  const text = (type === 'gemma3' ? c.text_config : c) as Record<string, number & boolean>
  const put = (name: string, t: HfTensor): void => {
    tensors.set(name, t)
  }
  if (type === 'gpt2') {
    const p = opts.prefix ?? 'transformer.'
    const d = c.n_embd
    const f = c.n_inner ?? 4 * d
    put(`${p}wte.weight`, tensor(rng, [c.vocab_size, d], 0.5))
    put(`${p}wpe.weight`, tensor(rng, [c.n_positions, d], 0.2))
    for (let l = 0; l < c.n_layer; l++) {
      const h = `${p}h.${l}.`
      put(`${h}ln_1.weight`, tensor(rng, [d], 0.1, 1))
      put(`${h}ln_1.bias`, tensor(rng, [d], 0.1))
      put(`${h}attn.c_attn.weight`, tensor(rng, [d, 3 * d], 0.25))
      put(`${h}attn.c_attn.bias`, tensor(rng, [3 * d], 0.1))
      put(`${h}attn.c_proj.weight`, tensor(rng, [d, d], 0.15))
      put(`${h}attn.c_proj.bias`, tensor(rng, [d], 0.05))
      put(`${h}ln_2.weight`, tensor(rng, [d], 0.1, 1))
      put(`${h}ln_2.bias`, tensor(rng, [d], 0.1))
      put(`${h}mlp.c_fc.weight`, tensor(rng, [d, f], 0.2))
      put(`${h}mlp.c_fc.bias`, tensor(rng, [f], 0.1))
      put(`${h}mlp.c_proj.weight`, tensor(rng, [f, d], 0.15))
      put(`${h}mlp.c_proj.bias`, tensor(rng, [d], 0.05))
      if (opts.prefix === '') {
        // The original GPT-2 file carries the causal-mask buffers.
        put(`${h}attn.bias`, { shape: [1, 1, 4, 4], data: new Float32Array(16).fill(1) })
      }
    }
    put(`${p}ln_f.weight`, tensor(rng, [d], 0.1, 1))
    put(`${p}ln_f.bias`, tensor(rng, [d], 0.1))
    const tied = c.tie_word_embeddings ?? true
    if (!tied || opts.storeTiedHead)
      put(opts.lmHead ?? 'lm_head.weight', tensor(rng, [c.vocab_size, d], 0.5))
    return { config, tensors }
  }
  const gemma = type.startsWith('gemma')
  const p = opts.prefix ?? 'model.'
  const d = text.hidden_size
  const heads = text.num_attention_heads
  const kv = text.num_key_value_heads ?? heads
  const dh = text.head_dim ?? d / heads
  const f = text.intermediate_size
  const V = text.vocab_size
  // Gemma norms store w of (1 + w); the others store the gain itself.
  const normW = (n: number): HfTensor => (gemma ? tensor(rng, [n], 0.2) : tensor(rng, [n], 0.2, 1))
  put(`${p}embed_tokens.weight`, tensor(rng, [V, d], gemma ? 0.2 : 0.8))
  const qkvBias = type === 'qwen2' || text.attention_bias === true
  const oBias = type !== 'qwen2' && text.attention_bias === true
  const mlpBias = type === 'llama' && text.mlp_bias === true
  for (let l = 0; l < text.num_hidden_layers; l++) {
    const h = `${p}layers.${l}.`
    put(`${h}input_layernorm.weight`, normW(d))
    put(`${h}self_attn.q_proj.weight`, tensor(rng, [heads * dh, d], 0.3))
    put(`${h}self_attn.k_proj.weight`, tensor(rng, [kv * dh, d], 0.3))
    put(`${h}self_attn.v_proj.weight`, tensor(rng, [kv * dh, d], 0.3))
    if (qkvBias) {
      put(`${h}self_attn.q_proj.bias`, tensor(rng, [heads * dh], 0.2))
      put(`${h}self_attn.k_proj.bias`, tensor(rng, [kv * dh], 0.2))
      put(`${h}self_attn.v_proj.bias`, tensor(rng, [kv * dh], 0.2))
    }
    put(`${h}self_attn.o_proj.weight`, tensor(rng, [d, heads * dh], 0.15))
    if (oBias) put(`${h}self_attn.o_proj.bias`, tensor(rng, [d], 0.1))
    if (type === 'qwen3' || type === 'gemma3_text' || type === 'gemma3') {
      put(`${h}self_attn.q_norm.weight`, normW(dh))
      put(`${h}self_attn.k_norm.weight`, normW(dh))
    }
    put(`${h}post_attention_layernorm.weight`, normW(d))
    if (gemma) {
      put(`${h}pre_feedforward_layernorm.weight`, normW(d))
      put(`${h}post_feedforward_layernorm.weight`, normW(d))
    }
    put(`${h}mlp.gate_proj.weight`, tensor(rng, [f, d], 0.3))
    put(`${h}mlp.up_proj.weight`, tensor(rng, [f, d], 0.3))
    put(`${h}mlp.down_proj.weight`, tensor(rng, [d, f], 0.2))
    if (mlpBias) {
      put(`${h}mlp.gate_proj.bias`, tensor(rng, [f], 0.1))
      put(`${h}mlp.up_proj.bias`, tensor(rng, [f], 0.1))
      put(`${h}mlp.down_proj.bias`, tensor(rng, [d], 0.1))
    }
  }
  put(`${p}norm.weight`, normW(d))
  const tiedDefault = gemma
  const tied = (text.tie_word_embeddings ?? c.tie_word_embeddings ?? tiedDefault) as boolean
  if (!tied || opts.storeTiedHead) put(opts.lmHead ?? 'lm_head.weight', tensor(rng, [V, d], 0.8))
  if (type === 'gemma3') {
    // A vision tower the importer must ignore.
    put('vision_tower.vision_model.embeddings.patch_embedding.weight', tensor(rng, [4, 3, 2, 2], 1))
    put('multi_modal_projector.mm_input_projection_weight', tensor(rng, [4, d], 1))
  }
  return { config, tensors }
}
