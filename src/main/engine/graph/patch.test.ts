/**
 * The patch and patchGenerate roles and the decode role's forced tokens on a pre-norm GPT, against
 * the float64 reference (graph/reference.ts with its residual replacement): log-probabilities after
 * a replaced residual at every layer and several rows, observed at later rows; greedy continuations
 * from replaced prompts; forced explanation prefixes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BaseModel } from '../baseModel'
import { logSoftmax } from '../metrics'
import { Session } from '../ort'
import { randomTransformer } from './random-weights'
import { referenceLogits, referenceResiduals } from './reference'
import { buildTransformer, type TransformerWeights } from './transformer'

const dims = { hiddenSize: 32, layers: 4, heads: 4, vocabSize: 40, ffnSize: 48, maxPositions: 64 }
const d = dims.hiddenSize
let w: TransformerWeights
let session: Session
let base: BaseModel

beforeAll(async () => {
  w = randomTransformer(dims, 21)
  w.embeddingScale = 1.3
  // Sharper predictions, so greedy margins are far above float32 noise.
  for (let i = 0; i < w.unembedding.length; i++) w.unembedding[i]! *= 4
  session = await Session.create(buildTransformer(w).model, { provider: 'cpu', threads: 1 })
  base = new BaseModel(session, d)
})

afterAll(async () => {
  await session?.release()
})

function inputRows(ids: readonly number[]): Float64Array {
  const rows = new Float64Array(ids.length * d)
  ids.forEach((id, t) => {
    for (let i = 0; i < d; i++) rows[t * d + i] = w.tokenEmbedding[id * d + i]! * w.embeddingScale
  })
  return rows
}

function referenceLogProbs(
  ids: readonly number[],
  observe: number,
  replace?: { layer: number; row: number; vector: ArrayLike<number> }
): Float64Array {
  const res = referenceResiduals(w, inputRows(ids), dims.layers - 1, replace)
  const last = res[dims.layers - 1]!
  return logSoftmax(referenceLogits(w, last.slice(observe * d, (observe + 1) * d)))
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

const ids = [1, 5, 9, 5, 30, 2, 17, 3, 8, 12, 39]

describe('patch role', () => {
  it('equals the reference with the residual replaced, for every layer, row and observed row', async () => {
    const V = dims.vocabSize
    const unmodified = referenceResiduals(w, inputRows(ids), dims.layers - 1)
    let checked = 0
    for (let L = 0; L < dims.layers; L++) {
      for (const [at, observe] of [
        [0, 0],
        [0, 6],
        [3, 3],
        [4, 10],
        [10, 10]
      ] as const) {
        const a = unmodified[L]!.slice(at * d, (at + 1) * d)
        const moved = a.map((v, i) => v * 1.4 + 0.2 * Math.cos(i))
        const vectors = new Float32Array(3 * d)
        vectors.set(a, 0)
        vectors.set(moved, d)
        vectors.set(a, 2 * d)
        const got = await base.patchedLogProbs(ids.slice(0, observe + 1), L, at, vectors, 3)
        const wantSame = referenceLogProbs(ids, observe)
        const wantMoved = referenceLogProbs(ids, observe, { layer: L, row: at, vector: moved })
        expect(maxAbsDiff(got.subarray(0, V), wantSame), `L${L} ${at}→${observe}`).toBeLessThan(
          1e-4
        )
        expect(
          maxAbsDiff(got.subarray(V, 2 * V), wantMoved),
          `L${L} ${at}→${observe}`
        ).toBeLessThan(1e-4)
        // Identical vectors give identical rows, wherever they sit in the batch.
        expect(Array.from(got.subarray(2 * V, 3 * V))).toEqual(Array.from(got.subarray(0, V)))
        checked++
      }
    }
    expect(checked).toBe(dims.layers * 5)
  })
})

describe('patchGenerate role', () => {
  it('continues greedily from each replaced prompt, as the reference does', async () => {
    const unmodified = referenceResiduals(w, inputRows(ids), dims.layers - 1)
    for (const L of [0, 2, 3]) {
      const at = 5
      const prompt = ids.slice(0, at + 1)
      const a = unmodified[L]!.slice(at * d, (at + 1) * d)
      const vectorsList = [a, a.map((v, i) => -v + Math.sin(i)), a.map((v) => v * 3)]
      const vectors = new Float32Array(vectorsList.length * d)
      vectorsList.forEach((v, r) => vectors.set(v, r * d))
      const steps = 6
      const got = await base.patchedContinuations({
        ids: prompt,
        layer: L,
        at,
        vectors,
        rows: vectorsList.length,
        steps,
        logitBias: new Float32Array(dims.vocabSize)
      })
      expect(got.steps).toBe(steps)
      vectorsList.forEach((vector, r) => {
        const seq = [...prompt]
        const want: number[] = []
        for (let s = 0; s < steps; s++) {
          const res = referenceResiduals(w, inputRows(seq), dims.layers - 1, {
            layer: L,
            row: at,
            vector
          })
          const z = referenceLogits(
            w,
            res[dims.layers - 1]!.slice((seq.length - 1) * d, seq.length * d)
          )
          let best = 0
          for (let v = 1; v < z.length; v++) if (z[v]! > z[best]!) best = v
          want.push(best)
          seq.push(best)
        }
        const gotRow = Array.from({ length: steps }, (_, s) => got.ids[s * vectorsList.length + r]!)
        expect(gotRow, `L${L} run ${r}`).toEqual(want)
      })
    }
  })
})
