/**
 * A Gemma-3-sized vocabulary (262,144 tokens, tied head) through the roles that unembed: the
 * logit lens, greedy generation, patched decoding and KL, against the float64 forward. Widths are
 * tiny; the vocabulary is what is under test (no role may hold more than a few rows of logits).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { BaseModel } from '../../src/main/engine/base-model'
import { Session, Tensor } from '../../src/main/engine/ort'
import {
  ROLE,
  baseInputPlaceholders,
  buildBaseModel
} from '../../src/main/engine/graph/transformer'
import { readHfArchitecture } from '../../src/main/import/hf/config'
import { materializeWeight, planHfWeights } from '../../src/main/import/hf/weights'
import { Forward64, argmax, logSoftmax } from './forward64'
import { randomCheckpoint } from './hf-models'

const V = 262_144
const config = {
  model_type: 'gemma3_text',
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  intermediate_size: 16,
  vocab_size: V,
  sliding_window: 3,
  sliding_window_pattern: 2,
  query_pre_attn_scalar: 8,
  max_position_embeddings: 64
}

let session: Session | undefined
afterAll(async () => {
  await session?.release()
})

function placeholders(d: number): Record<string, Tensor> {
  return Object.fromEntries(
    Object.values(baseInputPlaceholders(d)).map((p) => [
      p.name,
      p.type === 'int64'
        ? new Tensor('int64', p.data as BigInt64Array, p.dims)
        : new Tensor('float32', p.data as Float32Array, p.dims)
    ])
  )
}

describe('262k vocabulary (tied, Gemma-3 text)', () => {
  it('logit lens, generate, decode and KL agree with the reference', async () => {
    const ckpt = randomCheckpoint(config, { seed: 12 })
    const arch = readHfArchitecture(config, 'config.json')
    const plan = planHfWeights(
      arch.spec,
      false,
      [...ckpt.tensors].map(([name, t]) => ({ name, shape: t.shape })),
      'model.safetensors'
    )
    expect(plan.weights.some((w) => w.name === 'unembed')).toBe(false)
    const weights = new Map<string, Float32Array>()
    for (const w of plan.weights) {
      weights.set(w.name, await materializeWeight(w, (n) => ckpt.tensors.get(n)!.data))
    }
    session = await Session.create(buildBaseModel(arch.spec, weights).model, {
      provider: 'cpu',
      threads: 1
    })
    const base = new BaseModel(session, 16)
    const ref = new Forward64(arch.spec, ckpt.tensors, {
      prefix: 'model.',
      lmHead: 'lm_head.weight'
    })
    const ids = [2, 70_000, 262_143, 5, 131_072, 9]
    const states = ref.forward(ref.embed(ids))
    const last = states[1]!

    // Logit lens: the top 5 of two rows.
    const vectors = Float32Array.from([...last[2]!, ...last[5]!])
    const lens = await base.logitLens(vectors, 2, 5)
    ;[2, 5].forEach((t, r) => {
      const z = ref.logits(last[t]!, true)
      const top = Array.from(z.keys())
        .sort((a, b) => z[b]! - z[a]!)
        .slice(0, 5)
      expect(Array.from(lens.subarray(r * 5, (r + 1) * 5))).toEqual(top)
    })

    // Greedy generation.
    const out = await session.run({
      ...placeholders(16),
      role: new Tensor('int64', BigInt64Array.from([BigInt(ROLE.generate)]), []),
      input_ids: new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      uniforms: new Tensor('float32', new Float32Array(3).fill(0.5), [1, 3]),
      temperature: new Tensor('float32', Float32Array.from([0]), [])
    })
    const seq = [...ids]
    for (let i = 0; i < 3; i++) {
      seq.push(argmax(ref.logits(ref.forward(ref.embed(seq))[1]![seq.length - 1]!, true)))
    }
    expect(Array.from(out.out_i!.data as BigInt64Array, Number)).toEqual(seq.slice(ids.length))

    // Patched decoding, two rows per position, two steps.
    const prefix = Float32Array.from(ref.embed([1, 2, 3]).flatMap((r) => Array.from(r)))
    const patch = Float32Array.from(last[4]!)
    const got = await base.decode({
      prefix,
      prefixRows: 3,
      patch,
      patchRows: 1,
      patchIndex: [0, 0],
      rows: 2,
      patchLayers: 1,
      embedPos: 1,
      uniforms: new Float32Array(4).fill(0.5),
      steps: 2,
      temperature: 0
    })
    const rows = ref.embed([1, 2, 3])
    const want: number[] = []
    for (let s = 0; s < 2; s++) {
      const h = ref.forward(rows, { patch: { row: 1, vectors: [patch] } })[1]!
      want.push(argmax(ref.logits(h[rows.length - 1]!, false)))
      rows.push(ref.embed([want[s]!])[0]!)
    }
    expect(Array.from(got)).toEqual([...want, ...want])

    // KL at two positions.
    const vec = Float32Array.from([...last[1]!.map((v) => v * 0.5), ...last[4]!.map((v) => -v)])
    const kl = await base.kl(ids, [1, 4], vec, 0)
    ;[1, 4].forEach((t, r) => {
      const lp = logSoftmax(ref.logits(last[t]!, true))
      const replaced = ref.forward(ref.embed(ids), {
        replace: { layer: 0, row: t, vector: vec.subarray(r * 16, (r + 1) * 16) }
      })
      const lq = logSoftmax(ref.logits(replaced[1]![t]!, true))
      let want = 0
      for (let v = 0; v < V; v++) want += Math.exp(lp[v]!) * (lp[v]! - lq[v]!)
      expect(Math.abs(kl[r]! - want)).toBeLessThan(1e-4 * want + 1e-6)
    })
  })
})
