/**
 * A Gemma-3-sized vocabulary (262,144 tokens, tied head) through the roles that unembed: the
 * logit lens, greedy generation, patched decoding and KL, against the independent float64
 * reference. Widths are tiny; the vocabulary is what is under test (no role may hold more than a
 * few rows of logits).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { BaseModel } from '../../src/main/engine/baseModel'
import { Session, Tensor } from '../../src/main/engine/ort'
import {
  ROLE,
  baseInputPlaceholders,
  buildBaseModel
} from '../../src/main/engine/graph/transformer'
import { readHfArchitecture } from '../../src/main/import/hf/config'
import { materializeWeight, planHfWeights } from '../../src/main/import/hf/weights'
import { hfReference, logSoftmax } from '../reference/hf/model'
import { randomHfModel } from '../reference/hf/random'

const V = 262_144
const d = 16

let session: Session | undefined
afterAll(async () => {
  await session?.release()
})

function placeholders(): Record<string, Tensor> {
  return Object.fromEntries(
    Object.values(baseInputPlaceholders(d)).map((p) => [
      p.name,
      p.type === 'int64'
        ? new Tensor('int64', p.data as BigInt64Array, p.dims)
        : new Tensor('float32', p.data as Float32Array, p.dims)
    ])
  )
}

function argmax(z: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < z.length; i++) if (z[i]! > z[best]!) best = i
  return best
}

describe('262k vocabulary (tied, Gemma-3 text)', () => {
  it('logit lens, generate, decode and KL agree with the reference', async () => {
    const model = randomHfModel(
      'gemma3_text',
      {
        hiddenSize: d,
        layers: 2,
        heads: 2,
        kvHeads: 1,
        headDim: 8,
        intermediateSize: 16,
        vocabSize: V,
        maxPositions: 64
      },
      { seed: 12, slidingWindow: 3 }
    )
    const arch = readHfArchitecture(model.config, 'config.json')
    const plan = planHfWeights(
      arch.spec,
      false,
      [...model.tensors].map(([name, t]) => ({ name, shape: t.shape })),
      'model.safetensors'
    )
    expect(plan.weights.some((w) => w.name === 'unembed')).toBe(false)
    const weights = new Map<string, Float32Array>()
    for (const w of plan.weights) {
      weights.set(w.name, await materializeWeight(w, (n) => model.tensors.get(n)!.data))
    }
    session = await Session.create(buildBaseModel(arch.spec, weights).model, {
      provider: 'cpu',
      threads: 1
    })
    const base = new BaseModel(session, d)
    const ref = hfReference(model.config, model.tensors)
    const ids = [2, 70_000, 262_143, 5, 131_072, 9]
    const f = ref.forward({ inputIds: ids })
    const last = f.blockOutputs[1]!

    // Logit lens: the top 5 of two rows.
    const lens = await base.logitLens(Float32Array.from([...last[2]!, ...last[5]!]), 2, 5)
    ;[2, 5].forEach((t, r) => {
      const z = f.logits[t]!
      const top = Array.from(z.keys())
        .sort((a, b) => z[b]! - z[a]!)
        .slice(0, 5)
      expect(Array.from(lens.subarray(r * 5, (r + 1) * 5))).toEqual(top)
    })

    // Greedy generation.
    const out = await session.run({
      ...placeholders(),
      role: new Tensor('int64', BigInt64Array.from([BigInt(ROLE.generate)]), []),
      input_ids: new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      uniforms: new Tensor('float32', new Float32Array(3).fill(0.5), [1, 3]),
      temperature: new Tensor('float32', Float32Array.from([0]), [])
    })
    expect(Array.from(out.out_i!.data as BigInt64Array, Number)).toEqual(ref.greedy(ids, 3).tokens)

    // Patched decoding, two rows of one position, two steps, no final softcap.
    const prefixRows = [1, 2, 3].map((id) => ref.embedRow(id))
    const patch = Float32Array.from(last[4]!)
    const got = await base.decode({
      prefix: Float32Array.from(prefixRows.flatMap((r) => Array.from(r))),
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
    const rows: ArrayLike<number>[] = [...prefixRows]
    const want: number[] = []
    for (let s = 0; s < 2; s++) {
      const g = ref.forward({
        inputsEmbeds: rows,
        logitRows: [rows.length - 1],
        patch: (layer, hidden) => {
          if (layer === 0) hidden[1] = Float64Array.from(patch)
        }
      })
      want.push(argmax(g.logitsNoSoftcap[0]!))
      rows.push(ref.embedRow(want[s]!))
    }
    expect(Array.from(got)).toEqual([...want, ...want])

    // KL at two positions.
    const vec = Float32Array.from([...last[1]!.map((v) => v * 0.5), ...last[4]!.map((v) => -v)])
    const kl = await base.kl(ids, [1, 4], vec, 0)
    ;[1, 4].forEach((t, r) => {
      const q = ref.forward({
        inputIds: ids,
        logitRows: [t],
        replaceAfter: { layer: 0, position: t, vector: vec.subarray(r * d, (r + 1) * d) }
      })
      const lp = logSoftmax(f.logits[t]!)
      const lq = logSoftmax(q.logits[0]!)
      let want = 0
      for (let v = 0; v < V; v++) want += Math.exp(lp[v]!) * (lp[v]! - lq[v]!)
      expect(Math.abs(kl[r]! - want)).toBeLessThan(1e-4 * want + 1e-6)
    })
  })
})
