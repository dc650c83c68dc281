/**
 * The base graph of every supported Hugging Face family, built from a random checkpoint in HF
 * layout through the config reader and the weight plan, against a float64 forward pass written in
 * HF terms (forward64.ts): hidden states after every layer (acts role), final logits (logit-lens
 * role with k = V), a greedy continuation (generate role), patched greedy decoding (decode role),
 * the encoder role and the KL role. Float32 results must be within 1e-4 relative; greedy tokens
 * identical. Dims are tiny, texts longer than the sliding windows.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { BaseModel } from '../../src/main/engine/base-model'
import { Session, Tensor } from '../../src/main/engine/ort'
import { Rng } from '../../src/main/engine/random'
import {
  ROLE,
  baseInputPlaceholders,
  buildBaseModel
} from '../../src/main/engine/graph/transformer'
import { readHfArchitecture } from '../../src/main/import/hf/config'
import { materializeWeight, planHfWeights } from '../../src/main/import/hf/weights'
import type { ArchSpec } from '../../src/main/engine/arch/spec'
import { Forward64, argmax, logSoftmax, relErr, type Vec } from './forward64'
import { randomCheckpoint, tinyConfig, type HfCheckpoint } from './hf-models'

const TOL = 1e-4

interface Case {
  name: string
  checkpoint: HfCheckpoint
  layout: { prefix: string; lmHead: string }
  /** What the case must exercise (checked on the spec, so a config-reader change cannot hollow it). */
  expect: (spec: ArchSpec) => void
}

const gemma3Text = {
  sliding_window: 3,
  sliding_window_pattern: 2,
  rope_local_base_freq: 100,
  rope_theta: 10000,
  rope_scaling: { rope_type: 'linear', factor: 2 },
  query_pre_attn_scalar: 16
}

const CASES: Case[] = [
  {
    name: 'gpt2 (transformer. prefix, tied)',
    checkpoint: randomCheckpoint(tinyConfig('gpt2'), { seed: 1 }),
    layout: { prefix: 'transformer.', lmHead: 'lm_head.weight' },
    expect: (s) => expect(s.tiedEmbeddings && s.mlp.activation === 'gelu_tanh').toBe(true)
  },
  {
    name: 'gpt2 (original file: no prefix, attn.bias buffers; untied; scale by inverse layer)',
    checkpoint: randomCheckpoint(
      tinyConfig('gpt2', { tie_word_embeddings: false, scale_attn_by_inverse_layer_idx: true }),
      { seed: 2, prefix: '' }
    ),
    layout: { prefix: '', lmHead: 'lm_head.weight' },
    expect: (s) => expect(s.attention.perLayer[2]!.scale).toBeCloseTo(1 / Math.sqrt(8) / 3, 12)
  },
  {
    name: 'llama (GQA, head_dim ≠ d/heads, llama3 rope, attention + mlp biases, untied)',
    checkpoint: randomCheckpoint(
      tinyConfig('llama', {
        attention_bias: true,
        mlp_bias: true,
        rope_scaling: {
          rope_type: 'llama3',
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 32
        }
      }),
      { seed: 3 }
    ),
    layout: { prefix: 'model.', lmHead: 'lm_head.weight' },
    expect: (s) => expect([s.kvHeads < s.heads, s.positions.kind]).toEqual([true, 'rotary'])
  },
  {
    name: 'llama (no prefix, linear rope, tied, silu)',
    checkpoint: randomCheckpoint(
      tinyConfig('llama', {
        tie_word_embeddings: true,
        rope_scaling: { type: 'linear', factor: 4 }
      }),
      { seed: 4, prefix: '' }
    ),
    layout: { prefix: '', lmHead: 'lm_head.weight' },
    expect: (s) => expect(s.tiedEmbeddings).toBe(true)
  },
  {
    name: 'mistral (sliding window 4 on every layer)',
    checkpoint: randomCheckpoint(tinyConfig('mistral', { sliding_window: 4 }), { seed: 5 }),
    layout: { prefix: 'model.', lmHead: 'lm_head.weight' },
    expect: (s) => expect(s.attention.perLayer.map((l) => l.window)).toEqual([4, 4, 4])
  },
  {
    name: 'qwen2 (q/k/v biases, sliding from max_window_layers, tied)',
    checkpoint: randomCheckpoint(
      tinyConfig('qwen2', {
        use_sliding_window: true,
        sliding_window: 3,
        max_window_layers: 1,
        tie_word_embeddings: true
      }),
      { seed: 6 }
    ),
    layout: { prefix: 'model.', lmHead: 'lm_head.weight' },
    expect: (s) => expect(s.attention.perLayer.map((l) => l.window)).toEqual([null, 3, 3])
  },
  {
    name: 'qwen3 (q/k norms, head_dim 12, untied)',
    checkpoint: randomCheckpoint(tinyConfig('qwen3'), { seed: 7 }),
    layout: { prefix: 'model.', lmHead: 'lm_head.weight' },
    expect: (s) => expect(s.attention.qkNorm && !s.tiedEmbeddings).toBe(true)
  },
  {
    name: 'gemma2 (attention + final softcaps, sandwich norms, alternating windows, √d)',
    checkpoint: randomCheckpoint(
      tinyConfig('gemma2', {
        sliding_window: 3,
        attn_logit_softcapping: 2,
        final_logit_softcapping: 3,
        query_pre_attn_scalar: 16
      }),
      { seed: 8 }
    ),
    layout: { prefix: 'model.', lmHead: 'lm_head.weight' },
    expect: (s) => {
      expect(s.attention.perLayer.map((l) => l.window)).toEqual([3, null, 3])
      expect([s.attention.logitSoftcap, s.finalLogitSoftcap]).toEqual([2, 3])
    }
  },
  {
    name: 'gemma3_text (q/k norms, local and global rope bases, linear global scaling)',
    checkpoint: randomCheckpoint(tinyConfig('gemma3_text', gemma3Text), { seed: 9 }),
    layout: { prefix: 'model.', lmHead: 'lm_head.weight' },
    expect: (s) => {
      expect(s.attention.perLayer.map((l) => [l.window, l.rope])).toEqual([
        [3, 'local'],
        [null, 'global'],
        [3, 'local']
      ])
    }
  },
  {
    name: 'gemma3 multimodal (model.language_model. layout, vision tower ignored)',
    checkpoint: randomCheckpoint(
      {
        model_type: 'gemma3',
        text_config: tinyConfig('gemma3_text', gemma3Text),
        vision_config: {}
      },
      { seed: 10, prefix: 'model.language_model.' }
    ),
    layout: { prefix: 'model.language_model.', lmHead: 'lm_head.weight' },
    expect: (s) => expect(s.family).toBe('gemma3')
  },
  {
    name: 'gemma3 multimodal (language_model.model. layout)',
    checkpoint: randomCheckpoint(
      { model_type: 'gemma3', text_config: tinyConfig('gemma3_text', gemma3Text) },
      { seed: 11, prefix: 'language_model.model.', lmHead: 'language_model.lm_head.weight' }
    ),
    layout: { prefix: 'language_model.model.', lmHead: 'language_model.lm_head.weight' },
    expect: (s) => expect(s.tiedEmbeddings).toBe(true)
  }
]

const sessions: Session[] = []
afterAll(async () => {
  for (const s of sessions) await s.release()
})

async function load(c: Case): Promise<{ spec: ArchSpec; base: BaseModel; ref: Forward64 }> {
  const arch = readHfArchitecture(c.checkpoint.config, 'config.json')
  const tensors = [...c.checkpoint.tensors].map(([name, t]) => ({ name, shape: t.shape }))
  const plan = planHfWeights(arch.spec, arch.multimodal, tensors, 'model.safetensors')
  const weights = new Map<string, Float32Array>()
  for (const w of plan.weights) {
    weights.set(w.name, await materializeWeight(w, (n) => c.checkpoint.tensors.get(n)!.data))
  }
  const session = await Session.create(buildBaseModel(arch.spec, weights).model, {
    provider: 'cpu',
    threads: 1
  })
  sessions.push(session)
  return {
    spec: arch.spec,
    base: new BaseModel(session, arch.spec.hiddenSize),
    ref: new Forward64(arch.spec, c.checkpoint.tensors, c.layout)
  }
}

function flat(rows: Float64Array[]): Float64Array {
  const d = rows[0]!.length
  const out = new Float64Array(rows.length * d)
  rows.forEach((r, i) => out.set(r, i * d))
  return out
}

async function generateGreedy(
  base: BaseModel,
  d: number,
  ids: number[],
  steps: number
): Promise<number[]> {
  const feeds: Record<string, Tensor> = {}
  for (const p of Object.values(baseInputPlaceholders(d))) {
    feeds[p.name] =
      p.type === 'int64'
        ? new Tensor('int64', p.data as BigInt64Array, p.dims)
        : new Tensor('float32', p.data as Float32Array, p.dims)
  }
  const out = await base.session.run({
    ...feeds,
    role: new Tensor('int64', BigInt64Array.from([BigInt(ROLE.generate)]), []),
    input_ids: new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    uniforms: new Tensor('float32', new Float32Array(steps).fill(0.5), [1, steps]),
    temperature: new Tensor('float32', Float32Array.from([0]), [])
  })
  return Array.from(out.out_i!.data as BigInt64Array, Number)
}

describe.each(CASES)('$name', (c) => {
  const rng = new Rng(c.name.length * 7919)
  const V = 61
  const S = 10
  const ids = Array.from({ length: S }, () => rng.int(V))

  it('reads the config as the case intends', () => {
    c.expect(readHfArchitecture(c.checkpoint.config, 'config.json').spec)
  })

  it('acts: hidden states after every layer; logit lens (k = V): final logits', async () => {
    const { spec, base, ref } = await load(c)
    const states = ref.forward(ref.embed(ids))
    for (let L = 0; L < spec.layers; L++) {
      const got = await base.activations(ids, L)
      expect(relErr(got, flat(states[L]!)), `layer ${L}`).toBeLessThan(TOL)
    }
    const last = states[spec.layers - 1]!
    const rows = [0, 4, S - 1]
    const vectors = Float32Array.from(flat(rows.map((t) => last[t]!)))
    const out = await base.session.run({
      ...Object.fromEntries(
        Object.values(baseInputPlaceholders(spec.hiddenSize)).map((p) => [
          p.name,
          p.type === 'int64'
            ? new Tensor('int64', p.data as BigInt64Array, p.dims)
            : new Tensor('float32', p.data as Float32Array, p.dims)
        ])
      ),
      role: new Tensor('int64', BigInt64Array.from([BigInt(ROLE.logitLens)]), []),
      vectors: new Tensor('float32', vectors, [rows.length, spec.hiddenSize]),
      top_k: new Tensor('int64', BigInt64Array.from([BigInt(V)]), [])
    })
    const values = out.out_f!.data as Float32Array
    const order = out.out_i!.data as BigInt64Array
    rows.forEach((t, r) => {
      const z = new Float64Array(V)
      for (let k = 0; k < V; k++) z[Number(order[r * V + k])] = values[r * V + k]!
      expect(relErr(z, ref.logits(last[t]!, true)), `logits at ${t}`).toBeLessThan(TOL)
    })
  })

  it('generate: greedy continuation equals the reference, token for token', async () => {
    const { spec, base, ref } = await load(c)
    const steps = 6
    const got = await generateGreedy(base, spec.hiddenSize, ids.slice(0, 5), steps)
    const seq = ids.slice(0, 5)
    const want: number[] = []
    for (let i = 0; i < steps; i++) {
      const states = ref.forward(ref.embed(seq))
      const next = argmax(ref.logits(states[spec.layers - 1]![seq.length - 1]!, true))
      want.push(next)
      seq.push(next)
    }
    expect(got).toEqual(want)
  })

  it('decode: patched prefix, greedy steps with the cache; K rows per position agree', async () => {
    const { spec, base, ref } = await load(c)
    const d = spec.hiddenSize
    const P = 5
    const embedPos = 2
    const T = 5
    const np = 2
    const positions = 2
    const K = 2
    const prefix = rng.normals(P * d, 1)
    const patch = rng.normals(positions * np * d, 1)
    const firstTokens: number[] = []
    const got = await base.decode({
      prefix,
      prefixRows: P,
      patch,
      patchRows: positions,
      patchIndex: [0, 0, 1, 1],
      rows: positions * K,
      patchLayers: np,
      embedPos,
      uniforms: new Float32Array(positions * K * T).fill(0.5),
      steps: T,
      temperature: 0
    })
    for (let p = 0; p < positions; p++) {
      const vectors = [0, 1].map((l) => patch.subarray((p * np + l) * d, (p * np + l + 1) * d))
      const rows: Vec[] = Array.from({ length: P }, (_, i) =>
        Float64Array.from(prefix.subarray(i * d, (i + 1) * d))
      )
      const want: number[] = []
      for (let step = 0; step < T; step++) {
        const states = ref.forward(rows, { patch: { row: embedPos, vectors } })
        // The lens decoder switches the final softcap off.
        const next = argmax(ref.logits(states[spec.layers - 1]![rows.length - 1]!, false))
        want.push(next)
        rows.push(ref.embed([next])[0]!)
      }
      for (let k = 0; k < K; k++) {
        expect(Array.from(got.subarray((p * K + k) * T, (p * K + k + 1) * T))).toEqual(want)
      }
      firstTokens.push(want[0]!)
    }
    // One step only: the prefix's own prediction, no step loop.
    const one = await base.decode({
      prefix,
      prefixRows: P,
      patch,
      patchRows: positions,
      patchIndex: [1, 0],
      rows: 2,
      patchLayers: np,
      embedPos,
      uniforms: new Float32Array(2).fill(0.5),
      steps: 1,
      temperature: 0
    })
    expect(Array.from(one)).toEqual([firstTokens[1], firstTokens[0]])
  })

  it('encode: soft prefix, ids, suffix and last-row add, read after block k', async () => {
    const { spec, base, ref } = await load(c)
    const d = spec.hiddenSize
    const Pe = 3
    const Q = 2
    const m = 4
    const prefix = rng.normals(Pe * d, 1)
    const suffix = rng.normals(Q * d, 1)
    const lastAdd = rng.normals(d, 0.5)
    const encIds = Int32Array.from({ length: 2 * m }, () => rng.int(V))
    for (const k of [0, spec.layers - 1]) {
      const got = await base.encode({
        prefix,
        prefixRows: Pe,
        ids: encIds,
        rows: 2,
        idsPerRow: m,
        suffix,
        lastAdd,
        layer: k
      })
      for (let r = 0; r < 2; r++) {
        const rows = [
          ...Array.from({ length: Pe }, (_, i) =>
            Float64Array.from(prefix.subarray(i * d, (i + 1) * d))
          ),
          ...ref.embed(Array.from(encIds.subarray(r * m, (r + 1) * m))),
          ...Array.from({ length: Q }, (_, i) =>
            Float64Array.from(suffix.subarray(i * d, (i + 1) * d))
          )
        ]
        const lastRow = rows[rows.length - 1]!
        rows[rows.length - 1] = lastRow.map((v, i) => v + lastAdd[i]!)
        const want = ref.forward(rows, { upTo: k })[k]![rows.length - 1]!
        expect(relErr(got.subarray(r * d, (r + 1) * d), want), `row ${r}, k ${k}`).toBeLessThan(TOL)
      }
    }
  })

  it('kl: KL(P‖Q) with the replaced rows at their own positions', async () => {
    const { spec, base, ref } = await load(c)
    const d = spec.hiddenSize
    const states = ref.forward(ref.embed(ids))
    const positions = [0, 3, 6, S - 1]
    for (const L of [0, spec.layers - 2]) {
      const vectors = new Float32Array(positions.length * d)
      positions.forEach((t, r) => {
        const a = states[L]![t]!
        for (let i = 0; i < d; i++) vectors[r * d + i] = a[i]! + rng.normal() * 0.7
      })
      const got = await base.kl(ids, positions, vectors, L)
      positions.forEach((t, r) => {
        const lp = logSoftmax(ref.logits(states[spec.layers - 1]![t]!, true))
        const replaced = ref.forward(ref.embed(ids), {
          replace: { layer: L, row: t, vector: vectors.subarray(r * d, (r + 1) * d) }
        })
        const lq = logSoftmax(ref.logits(replaced[spec.layers - 1]![t]!, true))
        let kl = 0
        for (let v = 0; v < lp.length; v++) kl += Math.exp(lp[v]!) * (lp[v]! - lq[v]!)
        expect(kl, `L ${L} t ${t}`).toBeGreaterThan(1e-3)
        expect(Math.abs(got[r]! - kl), `L ${L} t ${t}: ${got[r]} vs ${kl}`).toBeLessThan(
          TOL * kl + 1e-6
        )
      })
    }
  })
})
