/**
 * Tests of the float64 Hugging Face reference itself: against a separately written PyTorch
 * implementation (committed outputs everywhere, live where Debian's python3-torch exists), and
 * invariants that a wrong block, mask, rotation or weight lookup would break.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { at, entry } from './checked'
import { hfReference, type Row } from './model'
import {
  float16Bits,
  float16BitsToNumber,
  roundToBfloat16,
  roundToFloat16,
  toBfloat16Bits,
  toFloat16Bits
} from './prng'
import { randomHfModel, type HfDims, type RandomHfModelOptions } from './random'
import { HF_FAMILIES, type HfFamily, type HfTensors } from './types'
import type { ExpectedFile } from './torch/expected'
import { TORCH_FIXTURES, buildFixture, fixtureCases } from './torch/fixtures'
import {
  runTorchReferenceBatch,
  torchUnavailableReason,
  type TorchCase
} from './torch/torchReference'

/** |a − b| ≤ tol · (1 + |b|) elementwise; returns the worst ratio for the message. */
function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string
): void {
  expect(actual.length, `${what}: length`).toBe(expected.length)
  let worst = 0
  let worstIndex = -1
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!))
    if (!(err <= worst)) {
      worst = err
      worstIndex = i
    }
  }
  expect(worst, `${what}: worst relative error at index ${worstIndex}`).toBeLessThanOrEqual(tol)
}

function runCase(
  model: ReturnType<typeof hfReference>,
  c: TorchCase
): ReturnType<ReturnType<typeof hfReference>['forward']> {
  return model.forward({
    inputIds: c.input_ids,
    inputsEmbeds: c.inputs_embeds,
    positions: c.positions,
    patch: (layer, hidden) => {
      for (const p of c.patches ?? [])
        if (p.layer === layer) hidden[p.row] = Float64Array.from(p.vector)
    },
    replaceAfter: c.replace
  })
}

const DIMS: Record<HfFamily, HfDims> = {
  gpt2: { hiddenSize: 16, layers: 2, heads: 4, vocabSize: 40 },
  llama: { hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2, vocabSize: 40 },
  mistral: { hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2, vocabSize: 40 },
  qwen2: { hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2, vocabSize: 40 },
  qwen3: { hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2, headDim: 6, vocabSize: 40 },
  gemma2: { hiddenSize: 16, layers: 3, heads: 4, kvHeads: 2, vocabSize: 40 },
  gemma3_text: { hiddenSize: 16, layers: 3, heads: 4, kvHeads: 2, vocabSize: 40 },
  gemma3: { hiddenSize: 16, layers: 3, heads: 4, kvHeads: 2, vocabSize: 40 }
}

const IDS = [3, 17, 5, 29, 11, 8, 36, 2, 21, 14]

describe('hfReference against the separately written PyTorch reference', () => {
  const expected = JSON.parse(
    readFileSync(join(__dirname, 'torch', 'expected.json'), 'utf8')
  ) as ExpectedFile

  it('covers every fixture in the committed outputs', () => {
    expect(Object.keys(expected.fixtures).sort()).toEqual(TORCH_FIXTURES.map((f) => f.name).sort())
  })

  for (const fixture of TORCH_FIXTURES) {
    it(`matches the committed PyTorch outputs: ${fixture.name}`, () => {
      const { config, tensors } = buildFixture(fixture)
      const model = hfReference(config, tensors)
      fixtureCases(fixture).forEach((c, i) => {
        const want = at(entry(expected.fixtures, fixture.name, 'expected.json'), i, fixture.name)
        const got = runCase(model, c)
        const last = got.logits.length - 1
        got.blockOutputs.forEach((layer, l) =>
          expectClose(
            at(layer, last, `case ${i} block ${l}`),
            at(want.lastRowBlockOutputs, l, `case ${i} expected blocks`),
            1e-9,
            `case ${i} block ${l}`
          )
        )
        expectClose(
          at(got.logits, last, `case ${i} logits`),
          want.lastRowLogits,
          1e-9,
          `case ${i} logits`
        )
        expectClose(
          at(got.logitsNoSoftcap, last, `case ${i} raw logits`),
          want.lastRowLogitsNoSoftcap ?? want.lastRowLogits,
          1e-9,
          `case ${i} logits without softcap`
        )
        if (c.greedy) expect(model.greedy(c.input_ids ?? [], c.greedy).tokens).toEqual(want.greedy)
      })
    })
  }

  const reason = torchUnavailableReason()
  if (reason !== null) console.log(`skipped: live PyTorch cross-check: ${reason}`)
  it.skipIf(reason !== null)(
    'matches a live PyTorch run on every row, layer and logit',
    () => {
      const runs = TORCH_FIXTURES.map((fixture) => ({
        ...buildFixture(fixture),
        cases: fixtureCases(fixture)
      }))
      const outputs = runTorchReferenceBatch(runs)
      runs.forEach(({ config, tensors, cases }, f) => {
        const model = hfReference(config, tensors)
        const torch = at(outputs, f, 'torch outputs')
        cases.forEach((c, i) => {
          const got = runCase(model, c)
          const what = `${at(TORCH_FIXTURES, f, 'fixtures').name} case ${i}`
          const want = at(torch, i, what)
          got.blockOutputs.forEach((layer, l) =>
            layer.forEach((row, s) =>
              expectClose(
                row,
                at(at(want.block_outputs, l, `${what} blocks`), s, `${what} block ${l}`),
                1e-11,
                `${what} block ${l} row ${s}`
              )
            )
          )
          got.logits.forEach((row, s) =>
            expectClose(row, at(want.logits, s, `${what} logits`), 1e-11, `${what} logits ${s}`)
          )
          got.logitsNoSoftcap.forEach((row, s) =>
            expectClose(
              row,
              at(want.logits_no_softcap, s, `${what} raw logits`),
              1e-11,
              `${what} raw logits ${s}`
            )
          )
        })
      })
    },
    300_000
  )
})

describe('hfReference invariants', () => {
  for (const family of HF_FAMILIES) {
    it(`${family}: final norm + lm_head (+ softcap) of the last block's output gives the logits`, () => {
      const { config, tensors } = randomHfModel(family, DIMS[family], {
        seed: 3,
        finalLogitSoftcapping: family.startsWith('gemma') ? 4 : undefined
      })
      const model = hfReference(config, tensors)
      const out = model.forward({ inputIds: IDS })
      const L = model.config.layers
      expect(out.hiddenStates).toHaveLength(L + 1)
      expect(out.hiddenStates[0]).toEqual(out.inputs)
      for (let s = 0; s < IDS.length; s++) {
        const normed = model.finalNorm(at(at(out.blockOutputs, L - 1, 'blocks'), s, 'last block'))
        expectClose(
          at(at(out.hiddenStates, L, 'hidden states'), s, 'final hidden'),
          normed,
          1e-13,
          `final norm row ${s}`
        )
        const raw = model.unembed(normed)
        expectClose(at(out.logitsNoSoftcap, s, 'raw logits'), raw, 1e-13, `raw logits row ${s}`)
        expectClose(at(out.logits, s, 'logits'), model.softcap(raw), 1e-13, `logits row ${s}`)
      }
      if (family.startsWith('gemma')) {
        // The softcap keeps every logit inside (−4, 4) and changes them.
        expect(Math.max(...out.logits.flatMap((row) => [...row].map(Math.abs)))).toBeLessThan(4)
        expect(out.logits[0]).not.toEqual(out.logitsNoSoftcap[0])
      }
    })

    it(`${family}: appending tokens never changes earlier rows (causal)`, () => {
      const { config, tensors } = randomHfModel(family, DIMS[family], { seed: 4 })
      const model = hfReference(config, tensors)
      const short = model.forward({ inputIds: IDS.slice(0, 6) })
      const long = model.forward({ inputIds: IDS })
      for (let l = 0; l < model.config.layers; l++) {
        for (let s = 0; s < 6; s++)
          expectClose(
            at(at(long.blockOutputs, l, 'long blocks'), s, `long block ${l}`),
            at(at(short.blockOutputs, l, 'short blocks'), s, `short block ${l}`),
            1e-14,
            `layer ${l} row ${s}`
          )
      }
      // …while a later row does depend on an earlier token (one inside every sliding window).
      const changed = model.forward({ inputIds: IDS.map((id, s) => (s === 3 ? id + 1 : id)) })
      expect(at(changed.blockOutputs, 0, 'changed blocks')[5]).not.toEqual(
        at(long.blockOutputs, 0, 'long blocks')[5]
      )
    })

    it(`${family}: replacing a residual with itself changes nothing; with another vector it changes later rows only`, () => {
      const { config, tensors } = randomHfModel(family, DIMS[family], { seed: 5 })
      const model = hfReference(config, tensors)
      const base = model.forward({ inputIds: IDS })
      const same = model.forward({
        inputIds: IDS,
        replaceAfter: {
          layer: 0,
          position: 4,
          vector: at(at(base.blockOutputs, 0, 'blocks'), 4, 'block 0')
        }
      })
      expect(same.logits).toEqual(base.logits)
      const other = model.forward({
        inputIds: IDS,
        replaceAfter: {
          layer: 0,
          position: 4,
          vector: at(at(base.blockOutputs, 0, 'blocks'), 7, 'block 0')
        }
      })
      for (let s = 0; s < 4; s++) expect(other.logits[s]).toEqual(base.logits[s])
      expect(other.logits[4]).not.toEqual(base.logits[4])
      expect(other.logits[6]).not.toEqual(base.logits[6])
    })
  }

  for (const family of ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma2', 'gemma3_text'] as const) {
    it(`${family}: shifting every rotary position by a constant leaves the outputs unchanged (relative angles)`, () => {
      const { config, tensors } = randomHfModel(family, DIMS[family], { seed: 6 })
      const model = hfReference(config, tensors)
      const a = model.forward({ inputIds: IDS })
      const b = model.forward({ inputIds: IDS, positions: IDS.map((_, s) => s + 37) })
      a.logits.forEach((row, s) =>
        expectClose(at(b.logits, s, 'shifted logits'), row, 1e-10, `row ${s}`)
      )
      // A non-uniform shift changes them.
      const c = model.forward({ inputIds: IDS, positions: IDS.map((_, s) => 2 * s) })
      expect(c.logits[5]).not.toEqual(a.logits[5])
    })
  }

  it('a sliding window at least as long as the text equals full attention; a short one differs', () => {
    for (const [family, opts] of [
      ['mistral', {}],
      ['qwen2', { useSlidingWindow: true, maxWindowLayers: 0 }],
      ['gemma2', {}],
      ['gemma3_text', {}]
    ] as [HfFamily, RandomHfModelOptions][]) {
      const build = (slidingWindow: number | null): Row[] => {
        const { config, tensors } = randomHfModel(family, DIMS[family], {
          seed: 7,
          ...opts,
          slidingWindow
        })
        return hfReference(config, tensors).forward({ inputIds: IDS }).logits
      }
      const full = family === 'gemma2' || family === 'gemma3_text' ? build(10_000) : build(null)
      expect(build(IDS.length), family).toEqual(full)
      expect(build(IDS.length - 1)[IDS.length - 1], family).not.toEqual(full[IDS.length - 1])
      // Rows within the window are unaffected.
      expect(build(3).slice(0, 3), family).toEqual(full.slice(0, 3))
    }
  })

  it('the window is exclusive: a key 0 ≤ q − k < window is visible (window 1 = attend to self only)', () => {
    const { config, tensors } = randomHfModel(
      'mistral',
      { ...DIMS.mistral, layers: 1 },
      { seed: 8, slidingWindow: 1 }
    )
    const model = hfReference(config, tensors)
    // With only itself visible, a row's output depends on its own token alone.
    const a = model.forward({ inputIds: [1, 2, 3] })
    const b = model.forward({ inputIds: [5, 7, 3] })
    expect(at(b.blockOutputs, 0, 'b blocks')[2]).toEqual(at(a.blockOutputs, 0, 'a blocks')[2])
  })

  it('GQA with kvHeads < heads equals multi-head attention with each key/value head repeated', () => {
    for (const family of ['llama', 'qwen3', 'gemma3_text'] as const) {
      const dims = { ...DIMS[family], heads: 4, kvHeads: 2 }
      const gqa = randomHfModel(family, dims, { seed: 9 })
      const mha = randomHfModel(family, { ...dims, kvHeads: 4 }, { seed: 9 })
      const hd = dims.headDim ?? dims.hiddenSize / dims.heads
      const d = dims.hiddenSize
      // Copy every shared tensor, and expand k/v (kv, hd, d) → (heads, hd, d) by repeating heads.
      for (const [name, tensor] of gqa.tensors) {
        if (/\.(k_proj|v_proj)\.weight$/.test(name)) {
          const data = new Float32Array(4 * hd * d)
          for (let h = 0; h < 4; h++)
            data.set(
              tensor.data.subarray(Math.floor(h / 2) * hd * d, (Math.floor(h / 2) + 1) * hd * d),
              h * hd * d
            )
          mha.tensors.set(name, { shape: [4 * hd, d], data })
        } else mha.tensors.set(name, tensor)
      }
      const a = hfReference(gqa.config, gqa.tensors).forward({ inputIds: IDS })
      const b = hfReference(mha.config, mha.tensors).forward({ inputIds: IDS })
      a.logits.forEach((row, s) =>
        expectClose(at(b.logits, s, 'MHA logits'), row, 1e-13, `${family} row ${s}`)
      )
    }
  })

  it('linear rope scaling with factor 1 equals default rope; factor 2 equals halving every position', () => {
    const build = (
      ropeScaling: RandomHfModelOptions['ropeScaling']
    ): ReturnType<typeof hfReference> => {
      const { config, tensors } = randomHfModel('llama', DIMS.llama, { seed: 10, ropeScaling })
      return hfReference(config, tensors)
    }
    const plain = build(null).forward({ inputIds: IDS }).logits
    expect(build({ rope_type: 'linear', factor: 1 }).forward({ inputIds: IDS }).logits).toEqual(
      plain
    )
    const doubled = build({ rope_type: 'linear', factor: 2 })
    const viaFactor = doubled.forward({ inputIds: IDS }).logits
    const viaPositions = build(null).forward({
      inputIds: IDS,
      positions: IDS.map((_, s) => s / 2)
    }).logits
    viaFactor.forEach((row, s) =>
      expectClose(row, at(viaPositions, s, 'halved-position logits'), 1e-12, `row ${s}`)
    )
    expect(viaFactor[5]).not.toEqual(plain[5])
  })

  it('llama3 rope scaling keeps high frequencies, divides low ones by factor and interpolates between', () => {
    const { config, tensors } = randomHfModel(
      'llama',
      { ...DIMS.llama, headDim: 8, heads: 2, kvHeads: 1 },
      {
        seed: 11,
        ropeTheta: 100,
        ropeScaling: {
          rope_type: 'llama3',
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 2,
          original_max_position_embeddings: 20
        }
      }
    )
    const inv = hfReference(config, tensors).config.rope[0]?.invFreq as Float64Array
    const base = [0, 1, 2, 3].map((i) => 1 / 100 ** ((2 * i) / 8))
    // wavelengths 2π/base: 6.28 (< 20/2: kept), 19.9 (between 10 and 20: smoothed), 62.8 and 198.7 (> 20/1: ÷ 8)
    expect(inv[0]).toBeCloseTo(base[0]!, 15)
    const smooth = (20 / ((2 * Math.PI) / base[1]!) - 1) / (2 - 1)
    expect(inv[1]).toBeCloseTo((1 - smooth) * (base[1]! / 8) + smooth * base[1]!, 15)
    expect(inv[2]).toBeCloseTo(base[2]! / 8, 15)
    expect(inv[3]).toBeCloseTo(base[3]! / 8, 15)
  })

  it('an untied lm_head holding a copy of the embeddings equals the tied model', () => {
    for (const family of ['gpt2', 'qwen2', 'gemma2'] as const) {
      const tied = randomHfModel(family, DIMS[family], { seed: 12, tieWordEmbeddings: true })
      const embedName = [...tied.tensors.keys()].find((n) =>
        /(wte|embed_tokens)\.weight$/.test(n)
      ) as string
      const config = { ...tied.config, tie_word_embeddings: false }
      const tensors: HfTensors = new Map(tied.tensors)
      tensors.set(
        'lm_head.weight',
        tied.tensors.get(embedName) as { shape: number[]; data: Float32Array }
      )
      const a = hfReference(tied.config, tied.tensors).forward({ inputIds: IDS }).logits
      const b = hfReference(config, tensors).forward({ inputIds: IDS }).logits
      expect(b, family).toEqual(a)
    }
  })

  it('Gemma embeds with √d rounded to float32 (HF builds the normaliser in the float32 checkpoint dtype)', () => {
    const { config, tensors } = randomHfModel(
      'gemma2',
      { ...DIMS.gemma2, hiddenSize: 24 },
      { seed: 13 }
    )
    const model = hfReference(config, tensors)
    const scale = Math.fround(Math.sqrt(24))
    expect(scale).not.toBe(Math.sqrt(24))
    const table = model.tableRow(7)
    expect(model.embedRow(7)).toEqual(table.map((x) => x * scale))
    expect(model.forward({ inputIds: [7] }).inputs[0]).toEqual(model.embedRow(7))
    // inputsEmbeds are taken as already scaled.
    const viaEmbeds = model.forward({ inputsEmbeds: [model.embedRow(7), model.embedRow(3)] })
    expect(viaEmbeds.logits).toEqual(model.forward({ inputIds: [7, 3] }).logits)
  })

  it('GPT-2 adds learned positions to inputsEmbeds, so ids and table rows give the same outputs', () => {
    const { config, tensors } = randomHfModel('gpt2', DIMS.gpt2, { seed: 14 })
    const model = hfReference(config, tensors)
    const a = model.forward({ inputIds: [4, 9, 1] })
    const b = model.forward({ inputsEmbeds: [4, 9, 1].map((id) => model.tableRow(id)) })
    expect(b.logits).toEqual(a.logits)
    expect(() => model.forward({ inputIds: [1], positions: [10_000] })).toThrow(/learned positions/)
  })

  it('the multimodal Gemma-3 text model (both key layouts, sparse text_config) equals gemma3_text with the same weights', () => {
    const opts: RandomHfModelOptions = {
      seed: 15,
      slidingWindow: 3,
      slidingWindowPattern: 3,
      ropeScaling: { rope_type: 'linear', factor: 8 }
    }
    const text = randomHfModel('gemma3_text', DIMS.gemma3_text, opts)
    const want = hfReference(text.config, text.tensors).forward({ inputIds: IDS }).logits
    for (const layout of ['language_model.model', 'model.language_model'] as const) {
      const mm = randomHfModel('gemma3', DIMS.gemma3, { ...opts, gemma3Layout: layout })
      // Same seed and order: the text tensors are the same numbers under other names.
      for (const [name, tensor] of text.tensors) {
        expect(mm.tensors.get(name.replace(/^model\./, `${layout}.`))?.data, name).toEqual(
          tensor.data
        )
      }
      const textConfig = mm.config.text_config as Record<string, unknown>
      expect(textConfig.rope_local_base_freq, 'sparse: defaults omitted').toBeUndefined()
      expect(textConfig.sliding_window_pattern).toBe(3)
      expect(hfReference(mm.config, mm.tensors).forward({ inputIds: IDS }).logits, layout).toEqual(
        want
      )
    }
  })

  it('Gemma-3 uses rope_local_base_freq on sliding layers and rope_theta + rope_scaling on global ones', () => {
    const { config, tensors } = randomHfModel('gemma3_text', DIMS.gemma3_text, {
      seed: 16,
      layerTypes: ['sliding_attention', 'full_attention', 'sliding_attention'],
      ropeTheta: 5000,
      ropeLocalBaseFreq: 50,
      ropeScaling: { rope_type: 'linear', factor: 2 }
    })
    const c = hfReference(config, tensors).config
    expect(c.rope[0]?.invFreq[1]).toBeCloseTo(1 / 50 ** (2 / 4), 15)
    expect(c.rope[1]?.invFreq[1]).toBeCloseTo(1 / 5000 ** (2 / 4) / 2, 15)
    expect(c.rope[2]).toBe(c.rope[0])
    expect(c.layerTypes).toEqual(['sliding_attention', 'full_attention', 'sliding_attention'])
  })

  it('derives layer types as the HF configs do', () => {
    const types = (family: HfFamily, opts: RandomHfModelOptions, layers = 6): string[] => {
      const { config, tensors } = randomHfModel(
        family,
        { ...DIMS[family], layers },
        { seed: 17, ...opts }
      )
      return hfReference(config, tensors).config.layerTypes.map((t) =>
        t === 'sliding_attention' ? 'S' : 'F'
      )
    }
    expect(types('gemma2', {}).join('')).toBe('SFSFSF')
    expect(types('gemma3_text', { slidingWindowPattern: 3 }).join('')).toBe('SSFSSF')
    expect(types('gemma3', { slidingWindowPattern: 6 }).join('')).toBe('SSSSSF')
    expect(types('qwen2', { useSlidingWindow: true, maxWindowLayers: 4 }).join('')).toBe('FFFFSS')
    expect(types('qwen3', { useSlidingWindow: false, maxWindowLayers: 4 }).join('')).toBe('FFFFFF')
    expect(types('mistral', {}).join('')).toBe('SSSSSS')
    expect(types('mistral', { slidingWindow: null }).join('')).toBe('FFFFFF')
  })

  it('refuses what it does not implement and names missing or misshapen tensors', () => {
    const { config, tensors } = randomHfModel('llama', DIMS.llama, { seed: 18 })
    expect(() => hfReference({ ...config, model_type: 'gpt_oss' }, tensors)).toThrow(
      /model_type "gpt_oss" is not supported/
    )
    expect(() =>
      hfReference({ ...config, rope_scaling: { rope_type: 'yarn', factor: 4 } }, tensors)
    ).toThrow(/yarn/)
    const missing: HfTensors = new Map(tensors)
    missing.delete('model.layers.1.mlp.up_proj.weight')
    expect(() => hfReference(config, missing)).toThrow(
      /missing tensor model\.layers\.1\.mlp\.up_proj\.weight/
    )
    const wrong: HfTensors = new Map(tensors)
    wrong.set('model.norm.weight', { shape: [15], data: new Float32Array(15) })
    expect(() => hfReference(config, wrong)).toThrow(/model\.norm\.weight has shape \[15\]/)
  })
})

describe('randomHfModel', () => {
  it('is deterministic per seed and writes the HF names, shapes and config fields', () => {
    const a = randomHfModel('qwen2', DIMS.qwen2, { seed: 1 })
    const b = randomHfModel('qwen2', DIMS.qwen2, { seed: 1 })
    const c = randomHfModel('qwen2', DIMS.qwen2, { seed: 2 })
    expect(b.tensors.get('model.embed_tokens.weight')?.data).toEqual(
      a.tensors.get('model.embed_tokens.weight')?.data
    )
    expect(c.tensors.get('model.embed_tokens.weight')?.data).not.toEqual(
      a.tensors.get('model.embed_tokens.weight')?.data
    )
    expect(a.config).toMatchObject({
      model_type: 'qwen2',
      architectures: ['Qwen2ForCausalLM'],
      num_key_value_heads: 2,
      tie_word_embeddings: false
    })
    expect(a.tensors.get('model.layers.0.self_attn.k_proj.bias')?.shape).toEqual([8])
    expect(a.tensors.has('model.layers.0.self_attn.o_proj.bias')).toBe(false)
    expect(a.tensors.get('lm_head.weight')?.shape).toEqual([40, 16])
  })

  it('GPT-2: Conv1D (in, out) weights; attn.bias buffers only in the original layout; no lm_head when tied', () => {
    const saved = randomHfModel('gpt2', DIMS.gpt2, { seed: 1 })
    expect(saved.tensors.get('transformer.h.0.attn.c_attn.weight')?.shape).toEqual([16, 48])
    expect(saved.tensors.get('transformer.h.1.mlp.c_proj.weight')?.shape).toEqual([64, 16])
    expect([...saved.tensors.keys()].some((n) => /\.attn\.bias$/.test(n))).toBe(false)
    expect(saved.tensors.has('lm_head.weight')).toBe(false)
    const original = randomHfModel('gpt2', DIMS.gpt2, { seed: 1, gpt2Layout: 'original' })
    expect(original.tensors.get('h.0.attn.bias')?.shape).toEqual([1, 1, 128, 128])
    expect(original.tensors.has('transformer.wte.weight')).toBe(false)
    // The mask buffers are ignored: the same weights give the same model.
    const a = hfReference(saved.config, saved.tensors).forward({ inputIds: IDS }).logits
    expect(
      hfReference(original.config, original.tensors).forward({ inputIds: IDS }).logits
    ).toEqual(a)
  })

  it('bf16Exact weights survive a bfloat16 round trip', () => {
    const { tensors } = randomHfModel('gemma2', DIMS.gemma2, { seed: 1, bf16Exact: true })
    for (const [name, tensor] of tensors) {
      for (const x of tensor.data)
        if (roundToBfloat16(x) !== x) throw new Error(`${name}: ${x} is not a bfloat16 value`)
    }
    expect(roundToBfloat16(1 + 2 ** -9)).toBe(1) // ties to even
    expect(roundToBfloat16(1 + 3 * 2 ** -9)).toBe(1 + 2 ** -7)
  })

  it('f16Exact weights survive a half-precision round trip; the F16/BF16 encoders round to nearest even', () => {
    const { tensors } = randomHfModel('qwen3', DIMS.qwen3, { seed: 1, f16Exact: true })
    for (const [name, tensor] of tensors) {
      for (const x of tensor.data)
        if (roundToFloat16(x) !== x) throw new Error(`${name}: ${x} is not a float16 value`)
    }
    // Checked against numpy's float16 and torch's bfloat16 casts on 20,000 values when written.
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65520, 0x7c00], // rounds up to Inf
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to even
      [3 * 2 ** -25, 0x0002],
      [-0, 0x8000],
      [1 + 2 ** -11, 0x3c00], // halfway: even
      [1 + 3 * 2 ** -11, 0x3c02]
    ]
    for (const [value, bits] of cases) expect(float16Bits(value), String(value)).toBe(bits)
    for (let bits = 0; bits < 0x10000; bits++) {
      const x = float16BitsToNumber(bits)
      if (!Number.isNaN(x) && float16Bits(x) !== bits) throw new Error(`round trip of ${bits}`)
    }
    expect(Array.from(toFloat16Bits(Float32Array.from([1, -2])))).toEqual([0x3c00, 0xc000])
    expect(Array.from(toBfloat16Bits(Float32Array.from([1, -2, 1 + 2 ** -8])))).toEqual([
      0x3f80, 0xc000, 0x3f80
    ])
    expect(() => randomHfModel('llama', DIMS.llama, { bf16Exact: true, f16Exact: true })).toThrow(
      /one of/
    )
  })

  it('writes a real vocabulary size (262,144) with the published special image ids', () => {
    const { config, tensors } = randomHfModel(
      'gemma3',
      { hiddenSize: 8, layers: 1, heads: 2, vocabSize: 262144 },
      { seed: 2 }
    )
    expect(config).toMatchObject({
      image_token_index: 262144,
      boi_token_index: 255999,
      eos_token_id: [1, 106]
    })
    expect(tensors.get('language_model.model.embed_tokens.weight')?.shape).toEqual([262144, 8])
    const model = hfReference(config, tensors)
    const { logits } = model.forward({ inputIds: [2, 236761, 262143], logitRows: [2] })
    expect(logits[0]).toHaveLength(262144)
    expect(at(logits, 0, 'logits').every(Number.isFinite)).toBe(true)
  })

  it('refuses impossible dims with the field named', () => {
    expect(() => randomHfModel('llama', { ...DIMS.llama, kvHeads: 3 })).toThrow(
      /multiple of kvHeads/
    )
    expect(() => randomHfModel('gpt2', { ...DIMS.gpt2, kvHeads: 2 })).toThrow(/GPT-2 has neither/)
    expect(() => randomHfModel('qwen2', { ...DIMS.qwen2, headDim: 6 })).toThrow(/qwen2/)
    expect(() => randomHfModel('llama', { ...DIMS.llama, vocabSize: 0 })).toThrow(/vocabSize/)
  })
})
