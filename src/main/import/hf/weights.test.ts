/**
 * The weight plan: which checkpoint tensors make each graph initializer, the transforms, and the
 * errors for missing, unexpected and mis-shaped tensors (each names the tensor).
 */
import { describe, expect, it } from 'vitest'
import { randomHfModel, type HfDims } from '../../../../test/reference/hf/random'
import type { HfConfigJson, HfTensors } from '../../../../test/reference/hf/types'
import { readHfArchitecture } from './config'
import { materializeWeight, planHfWeights, transpose, type PlannedWeight } from './weights'

const DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, headDim: 12, vocabSize: 61 }

function plan(
  c: { config: HfConfigJson; tensors: HfTensors },
  drop: string[] = [],
  extra: [string, number[]][] = []
) {
  const arch = readHfArchitecture(c.config, 'config.json')
  const tensors = [...c.tensors]
    .filter(([n]) => !drop.includes(n))
    .map(([name, t]) => ({ name, shape: t.shape }))
  for (const [name, shape] of extra) tensors.push({ name, shape })
  return planHfWeights(arch.spec, arch.multimodal, tensors, 'model.safetensors')
}

describe('planHfWeights', () => {
  it('llama: joins q/k/v and gate/up, transposes nn.Linear weights, stores no head when tied', () => {
    const c = randomHfModel('llama', DIMS, { seed: 1, tieWordEmbeddings: true })
    const p = plan(c)
    const byName = new Map(p.weights.map((w) => [w.name, w]))
    expect(byName.get('l0.qkv')).toMatchObject({
      dims: [32, (4 + 2 * 2) * 12],
      transform: 'concat-transposed',
      sources: [
        { tensor: 'model.layers.0.self_attn.q_proj.weight', shape: [48, 32] },
        { tensor: 'model.layers.0.self_attn.k_proj.weight', shape: [24, 32] },
        { tensor: 'model.layers.0.self_attn.v_proj.weight', shape: [24, 32] }
      ]
    })
    expect(byName.get('l1.out')).toMatchObject({ dims: [48, 32], transform: 'transpose' })
    expect(byName.get('l2.ln2Gain')!.sources[0]!.tensor).toBe(
      'model.layers.2.post_attention_layernorm.weight'
    )
    expect(byName.has('unembed')).toBe(false)
    expect(p.ignored).toEqual([])
  })

  it('gemma: four norms per block, each weight as 1 + w', () => {
    const p = plan(randomHfModel('gemma2', DIMS, { seed: 2 }))
    const norms = p.weights.filter((w) => w.name.startsWith('l0.') && w.transform === 'gemma-gain')
    expect(norms.map((w) => [w.name, w.sources[0]!.tensor])).toEqual([
      ['l0.ln1Gain', 'model.layers.0.input_layernorm.weight'],
      ['l0.postAttnNorm', 'model.layers.0.post_attention_layernorm.weight'],
      ['l0.ln2Gain', 'model.layers.0.pre_feedforward_layernorm.weight'],
      ['l0.postFfnNorm', 'model.layers.0.post_feedforward_layernorm.weight']
    ])
  })

  it('gpt2 original file: no prefix, mask buffers ignored, Conv1D copied as stored', () => {
    const c = randomHfModel(
      'gpt2',
      { hiddenSize: 32, layers: 3, heads: 4, vocabSize: 61 },
      {
        seed: 3,
        gpt2Layout: 'original'
      }
    )
    const p = plan(c)
    expect(p.ignored.length).toBeGreaterThanOrEqual(3)
    for (const name of p.ignored) expect(name).toMatch(/^h\.\d+\.attn\.(bias|masked_bias)$/)
    expect(p.weights.find((w) => w.name === 'l0.qkv')).toMatchObject({
      transform: 'copy',
      sources: [{ tensor: 'h.0.attn.c_attn.weight', shape: [32, 96] }]
    })
  })

  it('a tied head stored anyway, and a Gemma-3 vision tower, are ignored', () => {
    const c = randomHfModel('gemma3', DIMS, { seed: 4, gemma3Layout: 'model.language_model' })
    c.tensors.set('lm_head.weight', { shape: [61, 32], data: new Float32Array(61 * 32) })
    const ignored = plan(c).ignored
    expect(ignored).toContain('lm_head.weight')
    expect(ignored.filter((n) => n.startsWith('model.vision_tower.')).length).toBeGreaterThan(0)
    for (const name of ignored) {
      expect(name).toMatch(/^(lm_head\.weight|model\.(vision_tower|multi_modal_projector)\.)/)
    }
  })

  it('names a missing tensor', () => {
    const c = randomHfModel('qwen3', DIMS, { seed: 5 })
    expect(() => plan(c, ['model.layers.1.self_attn.k_norm.weight'])).toThrow(
      'model.safetensors: tensor "model.layers.1.self_attn.k_norm.weight": missing'
    )
    try {
      plan(c, ['model.layers.1.self_attn.k_norm.weight'])
    } catch (err) {
      // A checkpoint error: the CLI exits 3 and the message names file and tensor.
      expect(err).toMatchObject({
        code: 'bundle_invalid',
        problem: 'missing_tensor',
        file: 'model.safetensors',
        tensor: 'model.layers.1.self_attn.k_norm.weight'
      })
    }
  })

  it('names a missing untied head and says why it is needed', () => {
    const c = randomHfModel('llama', DIMS, { seed: 6 })
    expect(() => plan(c, ['lm_head.weight'])).toThrow(
      /tensor "lm_head\.weight": missing \(the config says the lm head is not tied/
    )
  })

  it('names an unexpected tensor (a layer the config does not have)', () => {
    const c = randomHfModel('mistral', { ...DIMS, intermediateSize: 40 }, { seed: 7 })
    expect(() => plan(c, [], [['model.layers.3.mlp.up_proj.weight', [40, 32]]])).toThrow(
      /tensor "model\.layers\.3\.mlp\.up_proj\.weight": unexpected: not part of a mistral checkpoint with this config\.json \(3 layers\)/
    )
  })

  it('names a tensor whose shape disagrees with the config', () => {
    const c = randomHfModel('llama', { ...DIMS, headDim: 16 }, { seed: 8 })
    c.tensors.get('model.layers.0.self_attn.q_proj.weight')!.shape = [48, 32]
    expect(() => plan(c)).toThrow(
      'tensor "model.layers.0.self_attn.q_proj.weight": shape [48, 32] disagrees with config.json, which implies [64, 32]'
    )
  })

  it('says where it looked when there is no embedding', () => {
    const c = randomHfModel('llama', DIMS, { seed: 9 })
    expect(() => plan(c, ['model.embed_tokens.weight'])).toThrow(
      /looked for model\.embed_tokens\.weight and embed_tokens\.weight/
    )
  })
})

describe('materializeWeight', () => {
  const read = (m: Record<string, number[]>) => (n: string) => Float32Array.from(m[n]!)

  it('transpose and concat-transposed put (out, in) rows into (in, Σout) columns', async () => {
    expect(Array.from(transpose(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3))).toEqual([
      1, 4, 2, 5, 3, 6
    ])
    const w: PlannedWeight = {
      name: 'qkv',
      dims: [2, 3],
      transform: 'concat-transposed',
      sources: [
        { tensor: 'q', shape: [1, 2] },
        { tensor: 'k', shape: [2, 2] }
      ]
    }
    // q = [[1, 2]], k = [[3, 4], [5, 6]] → x·W with W = [[1, 3, 5], [2, 4, 6]].
    const out = await materializeWeight(w, read({ q: [1, 2], k: [3, 4, 5, 6] }))
    expect(Array.from(out)).toEqual([1, 3, 5, 2, 4, 6])
  })

  it('gemma-gain adds 1 in float32; concat joins biases', async () => {
    const gain: PlannedWeight = {
      name: 'g',
      dims: [2],
      transform: 'gemma-gain',
      sources: [{ tensor: 'w', shape: [2] }]
    }
    expect(Array.from(await materializeWeight(gain, read({ w: [0.5, -1e-9] })))).toEqual([1.5, 1])
    const bias: PlannedWeight = {
      name: 'b',
      dims: [3],
      transform: 'concat',
      sources: [
        { tensor: 'a', shape: [1] },
        { tensor: 'b', shape: [2] }
      ]
    }
    expect(Array.from(await materializeWeight(bias, read({ a: [1], b: [2, 3] })))).toEqual([
      1, 2, 3
    ])
  })
})
