/**
 * config.json → ArchSpec, table-tested: each family's configuration-class defaults (an otherwise
 * empty config), the older and newer rope layouts, sliding-window rules, published configs, and
 * the refusals (each names the field, what was found and what is supported).
 */
import { describe, expect, it } from 'vitest'
import { archFromHfConfig, readHfArchitecture } from './config'

const spec = (config: unknown) => archFromHfConfig(config, 'config.json')
const windows = (config: unknown) => spec(config).attention.perLayer.map((l) => l.window)

describe('archFromHfConfig: defaults of each configuration class', () => {
  it('llama: LlamaConfig defaults', () => {
    const s = spec({ model_type: 'llama' })
    expect(s).toMatchObject({
      family: 'llama',
      hiddenSize: 4096,
      layers: 32,
      heads: 32,
      kvHeads: 32,
      headDim: 128,
      ffnSize: 11008,
      vocabSize: 32000,
      maxPositions: 2048,
      norm: { kind: 'rmsnorm', eps: 1e-6 },
      positions: { kind: 'rotary', global: { theta: 10000, scaling: null }, local: null },
      attention: { qkvBias: false, outBias: false, qkNorm: false, logitSoftcap: null },
      mlp: { kind: 'gated', activation: 'silu', bias: false },
      sandwichNorms: false,
      embeddingScale: 1,
      finalLogitSoftcap: null,
      tiedEmbeddings: false
    })
    expect(s.attention.perLayer[0]).toEqual({
      window: null,
      rope: 'global',
      scale: 1 / Math.sqrt(128)
    })
  })

  it('mistral: kv 8, every layer in a 4096 window unless sliding_window is null', () => {
    expect(spec({ model_type: 'mistral' })).toMatchObject({
      kvHeads: 8,
      ffnSize: 14336,
      maxPositions: 131072
    })
    expect(new Set(windows({ model_type: 'mistral' }))).toEqual(new Set([4096]))
    expect(new Set(windows({ model_type: 'mistral', sliding_window: null }))).toEqual(
      new Set([null])
    )
  })

  it('qwen2: q/k/v biases without o bias; windows only with use_sliding_window, from max_window_layers', () => {
    const s = spec({ model_type: 'qwen2' })
    expect(s).toMatchObject({ vocabSize: 151936, kvHeads: 32, maxPositions: 32768, ffnSize: 22016 })
    expect(s.attention).toMatchObject({ qkvBias: true, outBias: false })
    expect(new Set(windows({ model_type: 'qwen2', sliding_window: 8 }))).toEqual(new Set([null]))
    const w = windows({
      model_type: 'qwen2',
      num_hidden_layers: 4,
      use_sliding_window: true,
      max_window_layers: 2
    })
    expect(w).toEqual([null, null, 4096, 4096])
    const typed = windows({
      model_type: 'qwen2',
      num_hidden_layers: 3,
      use_sliding_window: true,
      sliding_window: 16,
      layer_types: ['sliding_attention', 'full_attention', 'sliding_attention']
    })
    expect(typed).toEqual([16, null, 16])
  })

  it('qwen3: head_dim 128 by default, q/k norms, attention_bias on all four', () => {
    const s = spec({
      model_type: 'qwen3',
      hidden_size: 1024,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      attention_bias: true
    })
    expect(s).toMatchObject({
      headDim: 128,
      attention: { qkNorm: true, qkvBias: true, outBias: true }
    })
  })

  it('gemma2: softcaps 50/30, alternating 4096 windows from layer 0, √d in float32, tied', () => {
    const s = spec({ model_type: 'gemma2' })
    expect(s).toMatchObject({
      hiddenSize: 2304,
      layers: 26,
      heads: 8,
      kvHeads: 4,
      headDim: 256,
      vocabSize: 256000,
      maxPositions: 8192,
      norm: { kind: 'gemma-rmsnorm', eps: 1e-6 },
      attention: { logitSoftcap: 50, qkNorm: false },
      mlp: { kind: 'gated', activation: 'gelu_tanh' },
      sandwichNorms: true,
      finalLogitSoftcap: 30,
      tiedEmbeddings: true,
      embeddingScale: 48
    })
    expect(windows({ model_type: 'gemma2' }).slice(0, 4)).toEqual([4096, null, 4096, null])
    expect(s.attention.perLayer[0]!.scale).toBe(1 / 16)
    // √3584 is not a float32: the graph holds the float32 the model multiplies by.
    expect(spec({ model_type: 'gemma2', hidden_size: 3584 }).embeddingScale).toBe(
      Math.fround(Math.sqrt(3584))
    )
  })

  it('gemma3_text: one full layer in six, local rope 10k on sliding layers, global 1M, no softcaps', () => {
    const s = spec({ model_type: 'gemma3_text', attn_logit_softcapping: 50 })
    expect(s).toMatchObject({
      vocabSize: 262208,
      maxPositions: 131072,
      attention: { qkNorm: true, logitSoftcap: null },
      finalLogitSoftcap: null,
      positions: {
        kind: 'rotary',
        global: { theta: 1_000_000, scaling: null },
        local: { theta: 10_000, scaling: null }
      }
    })
    expect(s.attention.perLayer.slice(0, 7).map((l) => [l.window, l.rope])).toEqual([
      [4096, 'local'],
      [4096, 'local'],
      [4096, 'local'],
      [4096, 'local'],
      [4096, 'local'],
      [null, 'global'],
      [4096, 'local']
    ])
  })

  it('gpt2: GPT2Config defaults, tied, gelu_new, learned positions', () => {
    expect(spec({ model_type: 'gpt2' })).toMatchObject({
      hiddenSize: 768,
      layers: 12,
      heads: 12,
      kvHeads: 12,
      headDim: 64,
      ffnSize: 3072,
      vocabSize: 50257,
      maxPositions: 1024,
      norm: { kind: 'layernorm', eps: 1e-5 },
      positions: { kind: 'learned' },
      attention: { qkvBias: true, outBias: true },
      mlp: { kind: 'plain', activation: 'gelu_tanh', bias: true },
      tiedEmbeddings: true
    })
  })

  it('gemma3 (multimodal): the text_config with Gemma3TextConfig defaults', () => {
    const arch = readHfArchitecture(
      { model_type: 'gemma3', text_config: { hidden_size: 2560 } },
      'config.json'
    )
    expect(arch.multimodal).toBe(true)
    expect(arch.spec).toMatchObject({ family: 'gemma3', hiddenSize: 2560, tiedEmbeddings: true })
  })
})

describe('archFromHfConfig: rope layouts', () => {
  it('reads rope_scaling (older) and rope_parameters (newer) alike', () => {
    const llama3 = {
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192
    }
    const older = spec({
      model_type: 'llama',
      rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', ...llama3 }
    })
    const newer = spec({
      model_type: 'llama',
      rope_parameters: { rope_type: 'llama3', rope_theta: 500000, ...llama3 }
    })
    expect(older.positions).toEqual(newer.positions)
    expect(older.positions).toMatchObject({
      global: {
        theta: 500000,
        scaling: {
          type: 'llama3',
          factor: 8,
          lowFreqFactor: 1,
          highFreqFactor: 4,
          originalMaxPositions: 8192
        }
      }
    })
    // The legacy key `type` names the rope type too.
    expect(
      spec({ model_type: 'llama', rope_scaling: { type: 'linear', factor: 2 } }).positions
    ).toMatchObject({
      global: { scaling: { type: 'linear', factor: 2 } }
    })
  })

  it('gemma3: rope_scaling applies to global layers only; rope_parameters per layer type', () => {
    const older = spec({
      model_type: 'gemma3_text',
      rope_theta: 1_000_000,
      rope_local_base_freq: 10_000,
      rope_scaling: { rope_type: 'linear', factor: 8 }
    })
    const newer = spec({
      model_type: 'gemma3_text',
      rope_parameters: {
        full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1_000_000 },
        sliding_attention: { rope_type: 'default', rope_theta: 10_000 }
      }
    })
    for (const s of [older, newer]) {
      expect(s.positions).toEqual({
        kind: 'rotary',
        global: { theta: 1_000_000, scaling: { type: 'linear', factor: 8 } },
        local: { theta: 10_000, scaling: null }
      })
    }
  })
})

describe('archFromHfConfig: published configs', () => {
  it('Qwen3-0.6B', () => {
    const s = spec({
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      hidden_size: 1024,
      intermediate_size: 3072,
      num_hidden_layers: 28,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 128,
      max_position_embeddings: 40960,
      rope_theta: 1000000,
      rope_scaling: null,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      use_sliding_window: false,
      sliding_window: null,
      max_window_layers: 28,
      vocab_size: 151936,
      torch_dtype: 'bfloat16'
    })
    expect(s).toMatchObject({
      hiddenSize: 1024,
      heads: 16,
      kvHeads: 8,
      headDim: 128,
      tiedEmbeddings: true
    })
    expect(new Set(s.attention.perLayer.map((l) => l.window))).toEqual(new Set([null]))
  })

  it('Gemma-3-270m style: layer_types listed, kv 1', () => {
    const types = Array.from({ length: 18 }, (_, i) =>
      (i + 1) % 6 ? 'sliding_attention' : 'full_attention'
    )
    const s = spec({
      model_type: 'gemma3_text',
      hidden_size: 640,
      intermediate_size: 2048,
      num_hidden_layers: 18,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      head_dim: 256,
      sliding_window: 512,
      layer_types: types,
      rope_theta: 1000000,
      rope_local_base_freq: 10000,
      query_pre_attn_scalar: 256,
      vocab_size: 262144,
      max_position_embeddings: 32768
    })
    expect(s.attention.perLayer.filter((l) => l.window === 512)).toHaveLength(15)
    expect(s).toMatchObject({ kvHeads: 1, embeddingScale: Math.fround(Math.sqrt(640)) })
  })
})

describe('archFromHfConfig: refusals name the field and what is supported', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not an object', [], /config\.json: \(root\): must be a JSON object/],
    ['no model_type', {}, /model_type: is missing \(supported: gpt2, llama/],
    [
      'unknown model_type',
      { model_type: 'phi3' },
      /model_type: "phi3" is not supported \(supported: gpt2, llama, mistral, qwen2, qwen3, gemma2, gemma3_text, gemma3\)/
    ],
    ['gpt-oss', { model_type: 'gpt_oss' }, /"gpt_oss" is a mixture-of-experts model/],
    [
      'experts key',
      { model_type: 'llama', num_local_experts: 8 },
      /num_local_experts: mixture-of-experts/
    ],
    [
      'quantised',
      { model_type: 'llama', quantization_config: { quant_method: 'gptq', bits: 4 } },
      /quantization_config: quantised checkpoints are not supported \(quant_method "gptq"\)/
    ],
    [
      'yarn rope',
      { model_type: 'qwen2', rope_scaling: { type: 'yarn', factor: 4 } },
      /rope_scaling\.type: rope type "yarn" is not supported \(supported: default, linear, llama3\)/
    ],
    [
      'dynamic rope (newer layout)',
      {
        model_type: 'llama',
        rope_parameters: { rope_type: 'dynamic', rope_theta: 1e4, factor: 2 }
      },
      /rope_parameters\.rope_type: rope type "dynamic" is not supported/
    ],
    [
      'llama3 rope without its factors',
      { model_type: 'llama', rope_scaling: { rope_type: 'llama3', factor: 8 } },
      /rope_scaling\.low_freq_factor: is required/
    ],
    [
      'partial rotary',
      { model_type: 'llama', partial_rotary_factor: 0.5 },
      /partial_rotary_factor: partial rotary/
    ],
    [
      'bidirectional',
      { model_type: 'gemma3_text', use_bidirectional_attention: true },
      /use_bidirectional_attention/
    ],
    [
      'activation',
      { model_type: 'llama', hidden_act: 'gelu_10' },
      /hidden_act: activation "gelu_10" is not supported \(supported: gelu, gelu_new/
    ],
    [
      'kv heads',
      { model_type: 'llama', num_attention_heads: 12, num_key_value_heads: 5 },
      /num_key_value_heads: 5 must divide num_attention_heads 12/
    ],
    [
      'bad number',
      { model_type: 'llama', hidden_size: '4096' },
      /hidden_size: must be an integer ≥ 1, got "4096"/
    ],
    [
      'layer types',
      { model_type: 'qwen3', num_hidden_layers: 2, layer_types: ['full_attention'] },
      /layer_types: must list one type per layer \(2\)/
    ],
    [
      'gpt2 cross attention',
      { model_type: 'gpt2', add_cross_attention: true },
      /add_cross_attention/
    ],
    [
      'gemma3 text type',
      { model_type: 'gemma3', text_config: { model_type: 'gemma2' } },
      /text_config\.model_type: "gemma2" is not supported inside a gemma3 checkpoint/
    ]
  ]
  it.each(cases)('%s', (_name, config, message) => {
    expect(() => spec(config)).toThrow(message)
  })

  it('errors carry the file and field', () => {
    try {
      spec({ model_type: 'llama', rope_scaling: { rope_type: 'yarn', factor: 2 } })
      expect.unreachable()
    } catch (err) {
      expect(err).toMatchObject({
        code: 'bundle_invalid',
        problem: 'unsupported_model',
        file: 'config.json',
        field: 'rope_scaling.rope_type'
      })
    }
  })
})
