/**
 * The base graph against the independent float64 Hugging Face reference (test/reference/hf,
 * written separately from the modeling code; docs/reference-hf.md), on its own random checkpoints:
 * every family and layout goes through our config reader, weight plan and graph builder, and each
 * role is compared with the reference's forward pass — hidden states after every layer, final
 * logits, greedy continuation, patched decoding (with forced explanation prefixes), the encoder
 * role, KL, and the intervention roles (patch: log-probabilities after a replaced residual observed
 * at a later row; patchGenerate: greedy continuations from a replaced prompt). 1e-4 relative in float32;
 * greedy tokens identical wherever the reference's margin between the two best logits is not
 * within float32 noise.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { BaseModel } from '../../src/main/engine/baseModel'
import { Session, Tensor } from '../../src/main/engine/ort'
import { Rng } from '../../src/main/engine/random'
import {
  ROLE,
  baseInputPlaceholders,
  buildBaseModel
} from '../../src/main/engine/graph/transformer'
import { readHfArchitecture } from '../../src/main/import/hf/config'
import { materializeWeight, planHfWeights } from '../../src/main/import/hf/weights'
import { hfReference, logSoftmax, type HfReferenceModel } from '../reference/hf/model'
import { randomHfModel, type HfDims, type RandomHfModelOptions } from '../reference/hf/random'
import type { HfFamily } from '../reference/hf/types'
import { flat, relErr } from './compare'

const TOL = 1e-4
/** Logit margins below this may legitimately flip in float32 (greedy compared up to there). */
const MARGIN = 1e-4

const DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, headDim: 12, vocabSize: 61 }
const GPT2_DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, vocabSize: 61 }
/** Qwen2's config has no head_dim: d / heads. */
const QWEN2_DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, vocabSize: 61 }

interface Case {
  name: string
  family: HfFamily
  dims: HfDims
  opts: RandomHfModelOptions
}

const CASES: Case[] = [
  { name: 'gpt2, save_pretrained layout', family: 'gpt2', dims: GPT2_DIMS, opts: { seed: 1 } },
  {
    name: 'gpt2, original Hub file, untied, scaled by inverse layer',
    family: 'gpt2',
    dims: GPT2_DIMS,
    opts: {
      seed: 2,
      gpt2Layout: 'original',
      tieWordEmbeddings: false,
      gpt2ScaleByInverseLayerIdx: true
    }
  },
  {
    name: 'llama, GQA, llama3 rope, attention and MLP biases',
    family: 'llama',
    dims: DIMS,
    opts: {
      seed: 3,
      attentionBias: true,
      mlpBias: true,
      ropeScaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 32
      }
    }
  },
  {
    name: 'llama, linear rope, tied',
    family: 'llama',
    dims: DIMS,
    opts: { seed: 4, tieWordEmbeddings: true, ropeScaling: { rope_type: 'linear', factor: 4 } }
  },
  {
    name: 'mistral, sliding window on every layer',
    family: 'mistral',
    dims: DIMS,
    opts: { seed: 5, slidingWindow: 4 }
  },
  {
    name: 'qwen2, sliding layers from max_window_layers',
    family: 'qwen2',
    dims: QWEN2_DIMS,
    opts: { seed: 6, useSlidingWindow: true, slidingWindow: 3, maxWindowLayers: 1 }
  },
  { name: 'qwen3, q/k norms', family: 'qwen3', dims: DIMS, opts: { seed: 7 } },
  {
    name: 'gemma2, softcaps and alternating windows',
    family: 'gemma2',
    dims: DIMS,
    opts: { seed: 8, slidingWindow: 3, attnLogitSoftcapping: 3, finalLogitSoftcapping: 4 }
  },
  {
    name: 'gemma3_text, local and global rope, linear global scaling',
    family: 'gemma3_text',
    dims: DIMS,
    opts: {
      seed: 9,
      slidingWindow: 3,
      ropeLocalBaseFreq: 100,
      ropeScaling: { rope_type: 'linear', factor: 2 }
    }
  },
  {
    name: 'gemma3 multimodal, language_model.model layout',
    family: 'gemma3',
    dims: DIMS,
    opts: { seed: 10, slidingWindow: 3 }
  },
  {
    name: 'gemma3 multimodal, model.language_model layout',
    family: 'gemma3',
    dims: DIMS,
    opts: { seed: 11, slidingWindow: 3, gemma3Layout: 'model.language_model' }
  }
]

const sessions: Session[] = []
afterAll(async () => {
  for (const s of sessions) await s.release()
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

/** Greedy argmax with the margin between the two best values. */
function best(z: ArrayLike<number>): { id: number; margin: number } {
  let a = 0
  for (let i = 1; i < z.length; i++) if (z[i]! > z[a]!) a = i
  let second = -Infinity
  for (let i = 0; i < z.length; i++) if (i !== a) second = Math.max(second, z[i]!)
  return { id: a, margin: z[a]! - second }
}

/** Compares token lists up to the first step whose reference margin is within float32 noise. */
function expectTokens(got: number[], want: { id: number; margin: number }[]): void {
  for (let i = 0; i < want.length; i++) {
    expect(got[i], `step ${i}`).toBe(want[i]!.id)
    if (want[i]!.margin < MARGIN) return
  }
}

describe.each(CASES)('against the independent reference: $name', (c) => {
  const model = randomHfModel(c.family, c.dims, c.opts)
  const rng = new Rng(c.opts.seed! * 104729)
  const V = c.dims.vocabSize
  const S = 10
  const ids = Array.from({ length: S }, () => rng.int(V))

  let loaded:
    Promise<{ base: BaseModel; ref: HfReferenceModel; d: number; layers: number }> | undefined
  const load = (): NonNullable<typeof loaded> => {
    loaded ??= (async () => {
      const arch = readHfArchitecture(model.config, 'config.json')
      const plan = planHfWeights(
        arch.spec,
        arch.multimodal,
        [...model.tensors].map(([name, t]) => ({ name, shape: t.shape })),
        'model.safetensors'
      )
      const weights = new Map<string, Float32Array>()
      for (const w of plan.weights) {
        weights.set(w.name, await materializeWeight(w, (n) => model.tensors.get(n)!.data))
      }
      const session = await Session.create(buildBaseModel(arch.spec, weights).model, {
        provider: 'cpu',
        threads: 1
      })
      sessions.push(session)
      return {
        base: new BaseModel(session, arch.spec.hiddenSize),
        ref: hfReference(model.config, model.tensors),
        d: arch.spec.hiddenSize,
        layers: arch.spec.layers
      }
    })()
    return loaded
  }

  it('hidden states after every layer and the final logits', async () => {
    const { base, ref, d, layers } = await load()
    const f = ref.forward({ inputIds: ids })
    for (let L = 0; L < layers; L++) {
      expect(
        relErr(await base.activations(ids, L), flat(f.blockOutputs[L]!)),
        `layer ${L}`
      ).toBeLessThan(TOL)
    }
    const rows = [0, 5, S - 1]
    const out = await base.session.run({
      ...placeholders(d),
      role: new Tensor('int64', BigInt64Array.from([BigInt(ROLE.logitLens)]), []),
      vectors: new Tensor(
        'float32',
        Float32Array.from(flat(rows.map((t) => f.blockOutputs[layers - 1]![t]!))),
        [3, d]
      ),
      top_k: new Tensor('int64', BigInt64Array.from([BigInt(V)]), [])
    })
    const values = out.out_f!.data as Float32Array
    const order = out.out_i!.data as BigInt64Array
    rows.forEach((t, r) => {
      const z = new Float64Array(V)
      for (let k = 0; k < V; k++) z[Number(order[r * V + k])] = values[r * V + k]!
      expect(relErr(z, f.logits[t]!), `logits at ${t}`).toBeLessThan(TOL)
    })
  })

  it('greedy continuation (generate role)', async () => {
    const { base, ref, d } = await load()
    const prompt = ids.slice(0, 6)
    const steps = 6
    const out = await base.session.run({
      ...placeholders(d),
      role: new Tensor('int64', BigInt64Array.from([BigInt(ROLE.generate)]), []),
      input_ids: new Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]),
      uniforms: new Tensor('float32', new Float32Array(steps).fill(0.5), [1, steps]),
      temperature: new Tensor('float32', Float32Array.from([0]), [])
    })
    const want = ref.greedy(prompt, steps)
    expectTokens(
      Array.from(out.out_i!.data as BigInt64Array, Number),
      want.tokens.map((id, i) => ({ id, margin: want.margins[i]! }))
    )
  })

  it('patched decoding (decode role, no final softcap) and the encoder role', async () => {
    const { base, ref, d, layers } = await load()
    const P = 5
    const embedPos = 2
    const np = 2
    const T = 5
    const prefix = rng.normals(P * d, 1)
    const patch = rng.normals(2 * np * d, 1)
    const got = await base.decode({
      prefix,
      prefixRows: P,
      patch,
      patchRows: 2,
      patchIndex: [0, 1, 1],
      rows: 3,
      patchLayers: np,
      embedPos,
      uniforms: new Float32Array(3 * T).fill(0.5),
      steps: T,
      temperature: 0
    })
    for (const [row, p] of [
      [0, 0],
      [1, 1],
      [2, 1]
    ] as const) {
      const rows: ArrayLike<number>[] = Array.from({ length: P }, (_, i) =>
        prefix.subarray(i * d, (i + 1) * d)
      )
      const want: { id: number; margin: number }[] = []
      for (let step = 0; step < T; step++) {
        const f = ref.forward({
          inputsEmbeds: rows,
          logitRows: [rows.length - 1],
          patch: (layer, hidden) => {
            if (layer < np)
              hidden[embedPos] = Float64Array.from(
                patch.subarray((p * np + layer) * d, (p * np + layer + 1) * d)
              )
          }
        })
        want.push(best(f.logitsNoSoftcap[0]!))
        rows.push(ref.embedRow(want[step]!.id))
      }
      expectTokens(Array.from(got.subarray(row * T, (row + 1) * T)), want)
    }

    const m = 4
    const pre = rng.normals(3 * d, 1)
    const suffix = rng.normals(2 * d, 1)
    const lastAdd = rng.normals(d, 0.5)
    const encIds = Int32Array.from({ length: 2 * m }, () => rng.int(V))
    for (const k of [0, layers - 1]) {
      const got = await base.encode({
        prefix: pre,
        prefixRows: 3,
        ids: encIds,
        rows: 2,
        idsPerRow: m,
        suffix,
        lastAdd,
        layer: k
      })
      for (let r = 0; r < 2; r++) {
        const rows: Float64Array[] = [
          ...Array.from({ length: 3 }, (_, i) =>
            Float64Array.from(pre.subarray(i * d, (i + 1) * d))
          ),
          ...Array.from(encIds.subarray(r * m, (r + 1) * m), (id) => ref.embedRow(id)),
          ...Array.from({ length: 2 }, (_, i) =>
            Float64Array.from(suffix.subarray(i * d, (i + 1) * d))
          )
        ]
        rows[rows.length - 1] = rows[rows.length - 1]!.map((v, i) => v + lastAdd[i]!)
        const f = ref.forward({ inputsEmbeds: rows, lastLayer: k })
        expect(
          relErr(got.subarray(r * d, (r + 1) * d), f.blockOutputs[k]![rows.length - 1]!),
          `k ${k}`
        ).toBeLessThan(TOL)
      }
    }
  })

  it('encoder role with its prefix run once for the batch: every batch size and prefix length (0 included) against the reference', async () => {
    const { base, ref, d, layers } = await load()
    // Prefix lengths beyond the sliding windows (3–4 here) and batch sizes 1 (one row of each
    // shape) to 5; with and without suffix rows after the ids; 0 rows of prefix runs whole.
    for (const [P, B, m, sufRows] of [
      [0, 2, 3, 1],
      [1, 1, 3, 0],
      [2, 3, 1, 0],
      [5, 5, 4, 2],
      [7, 2, 2, 0]
    ] as const) {
      const pre = rng.normals(P * d, 1)
      const suffix = rng.normals(sufRows * d, 1)
      const lastAdd = rng.normals(d, 0.5)
      const encIds = Int32Array.from({ length: B * m }, () => rng.int(V))
      for (const k of [0, layers - 1]) {
        const got = await base.encode({
          prefix: pre,
          prefixRows: P,
          ids: encIds,
          rows: B,
          idsPerRow: m,
          suffix,
          lastAdd,
          layer: k
        })
        expect(got.length).toBe(B * d)
        for (let r = 0; r < B; r++) {
          const at = (x: Float32Array, i: number): Float64Array =>
            Float64Array.from(x.subarray(i * d, (i + 1) * d))
          const rows: Float64Array[] = [
            ...Array.from({ length: P }, (_, i) => at(pre, i)),
            ...Array.from(encIds.subarray(r * m, (r + 1) * m), (id) => ref.embedRow(id)),
            ...Array.from({ length: sufRows }, (_, i) => at(suffix, i))
          ]
          rows[rows.length - 1] = rows[rows.length - 1]!.map((v, i) => v + lastAdd[i]!)
          const f = ref.forward({ inputsEmbeds: rows, lastLayer: k })
          expect(
            relErr(got.subarray(r * d, (r + 1) * d), f.blockOutputs[k]![rows.length - 1]!),
            `P ${P} B ${B} m ${m} suffix ${sufRows} layer ${k} row ${r}`
          ).toBeLessThan(TOL)
        }
      }
    }
    // The role reads the last row after the prefix: a row with none is refused, not guessed at.
    await expect(
      base.encode({
        prefix: rng.normals(2 * d, 1),
        prefixRows: 2,
        ids: new Int32Array(0),
        rows: 1,
        idsPerRow: 0,
        layer: 0
      })
    ).rejects.toThrow(/at least one id or suffix row/)
  })

  it('KL(P‖Q) with replaced residuals (KL role)', async () => {
    const { base, ref, d, layers } = await load()
    const f = ref.forward({ inputIds: ids })
    const positions = [0, 4, 7, S - 1]
    for (const L of [0, layers - 2]) {
      const vectors = new Float32Array(positions.length * d)
      positions.forEach((t, r) => {
        const a = f.blockOutputs[L]![t]!
        for (let i = 0; i < d; i++) vectors[r * d + i] = a[i]! + rng.normal() * 0.7
      })
      const got = await base.kl(ids, positions, vectors, L)
      let largest = 0
      positions.forEach((t, r) => {
        const q = ref.forward({
          inputIds: ids,
          logitRows: [t],
          replaceAfter: { layer: L, position: t, vector: vectors.subarray(r * d, (r + 1) * d) }
        })
        const lp = logSoftmax(f.logits[t]!)
        const lq = logSoftmax(q.logits[0]!)
        let kl = 0
        for (let v = 0; v < lp.length; v++) kl += Math.exp(lp[v]!) * (lp[v]! - lq[v]!)
        largest = Math.max(largest, kl)
        expect(Math.abs(got[r]! - kl), `L ${L} t ${t}`).toBeLessThan(TOL * kl + 1e-6)
      })
      // The replacements move the predictions: the comparison is not of zeros.
      expect(largest).toBeGreaterThan(1e-3)
    }
  })

  it('forced explanation prefix (decode role): kept tokens, then greedy from there', async () => {
    const { base, ref, d } = await load()
    const P = 4
    const embedPos = 1
    const np = 2
    const T = 6
    const F = 3
    const prefix = rng.normals(P * d, 1)
    const patch = rng.normals(np * d, 1)
    const forced = Int32Array.from({ length: 2 * T }, () => rng.int(V))
    const got = await base.decode({
      prefix,
      prefixRows: P,
      patch,
      patchRows: 1,
      patchIndex: [0, 0],
      rows: 2,
      patchLayers: np,
      embedPos,
      uniforms: new Float32Array(2 * T).fill(0.5),
      steps: T,
      temperature: 0,
      forced: { ids: forced, width: T, steps: F }
    })
    for (const row of [0, 1]) {
      const rows: ArrayLike<number>[] = Array.from({ length: P }, (_, i) =>
        prefix.subarray(i * d, (i + 1) * d)
      )
      const want: { id: number; margin: number }[] = []
      for (let step = 0; step < T; step++) {
        let next: { id: number; margin: number }
        if (step < F) {
          next = { id: forced[row * T + step]!, margin: Infinity }
        } else {
          const f = ref.forward({
            inputsEmbeds: rows,
            logitRows: [rows.length - 1],
            patch: (layer, hidden) => {
              if (layer < np)
                hidden[embedPos] = Float64Array.from(patch.subarray(layer * d, (layer + 1) * d))
            }
          })
          next = best(f.logitsNoSoftcap[0]!)
        }
        want.push(next)
        rows.push(ref.embedRow(next.id))
      }
      expectTokens(Array.from(got.subarray(row * T, (row + 1) * T)), want)
    }
  })

  it('patch role: next-token log-probabilities after a replaced residual, at later rows', async () => {
    const { base, ref, layers } = await load()
    const f = ref.forward({ inputIds: ids })
    let largest = 0
    for (const L of [0, layers - 2, layers - 1]) {
      for (const [at, observe] of [
        [0, 0],
        [2, 7],
        [5, 5],
        [6, S - 1]
      ] as const) {
        const a = f.blockOutputs[L]![at]!
        const moved = a.map((v) => v + rng.normal() * 0.7)
        const vectors = Float32Array.from([...a, ...moved])
        const got = await base.patchedLogProbs(ids.slice(0, observe + 1), L, at, vectors, 2)
        const same = logSoftmax(f.logits[observe]!)
        const q = ref.forward({
          inputIds: ids,
          logitRows: [observe],
          replaceAfter: { layer: L, position: at, vector: moved }
        })
        const want = logSoftmax(q.logits[0]!)
        expect(relErr(got.subarray(0, V), same), `L ${L} ${at}→${observe}`).toBeLessThan(TOL)
        expect(relErr(got.subarray(V, 2 * V), want), `L ${L} ${at}→${observe}`).toBeLessThan(TOL)
        for (let v = 0; v < V; v++) largest = Math.max(largest, Math.abs(want[v]! - same[v]!))
      }
    }
    // The replacements move the predictions: the comparison is not of equal rows.
    expect(largest).toBeGreaterThan(1e-2)
  })

  it('patchGenerate role: greedy continuations from replaced prompts', async () => {
    const { base, ref, layers } = await load()
    const at = 5
    const prompt = ids.slice(0, at + 1)
    const f = ref.forward({ inputIds: prompt })
    const steps = 5
    for (const L of [0, layers - 1]) {
      const a = f.blockOutputs[L]![at]!
      const list = [a, a.map((v) => v + rng.normal() * 1.5)]
      const got = await base.patchedContinuations({
        ids: prompt,
        layer: L,
        at,
        vectors: Float32Array.from(list.flatMap((v) => [...v])),
        rows: 2,
        steps,
        logitBias: new Float32Array(V)
      })
      list.forEach((vector, r) => {
        const want = ref.greedy(prompt, steps, [], { layer: L, position: at, vector })
        expectTokens(
          Array.from({ length: got.steps }, (_, s) => got.ids[s * 2 + r]!),
          want.tokens.map((id, i) => ({ id, margin: want.margins[i]! }))
        )
      })
    }
  })
})
