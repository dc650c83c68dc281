/**
 * The lens math of the Workbench's bundles on the pre-norm GPT (demo and synthetic groups), in
 * float64 on top of the engine's reference forward pass (src/main/engine/graph/reference.ts, with
 * its residual replacement hook): encoder reconstruction, predictions after a replaced residual at
 * a later row, greedy continuations with the replacement in place. For the research modes' tests;
 * nothing here runs an ONNX graph.
 */
import { logSoftmax } from '../../../src/main/engine/metrics'
import {
  referenceLogits,
  referenceResiduals,
  type ResidualReplacement
} from '../../../src/main/engine/graph/reference'
import type { TransformerWeights } from '../../../src/main/engine/graph/transformer'

/** An encoder as a bundle's lens.json and tensors describe it (docs/bundle-format.md). */
export interface PrenormEncoder {
  outputLayer: number
  /** (Pe·d) rows in residual-input space. */
  prefix: ArrayLike<number>
  suffix?: ArrayLike<number>
  lastRowAdd?: ArrayLike<number>
  addCurrentToken: boolean
  /** recon = hidden·W + b, W (d, d) row-major; identity when absent. */
  head?: { weight: ArrayLike<number>; bias: ArrayLike<number> }
}

function rowsOf(w: TransformerWeights, ids: readonly number[]): Float64Array {
  const d = w.dims.hiddenSize
  const rows = new Float64Array(ids.length * d)
  ids.forEach((id, t) => {
    for (let i = 0; i < d; i++) rows[t * d + i] = w.tokenEmbedding[id * d + i]! * w.embeddingScale
  })
  return rows
}

/** Residual after block `layer` at every row of `ids`: (S·d). */
export function activationsRef(
  w: TransformerWeights,
  ids: readonly number[],
  layer: number
): Float64Array {
  return referenceResiduals(w, rowsOf(w, ids), layer)[layer]!
}

/** Â for explanation `ids`: [prefix | E[ids]·scale | E[current]·scale | suffix], last row + lastRowAdd, block k's last row, head. */
export function encodeRef(
  w: TransformerWeights,
  enc: PrenormEncoder,
  ids: readonly number[],
  currentId: number
): Float64Array {
  const d = w.dims.hiddenSize
  const tokens = rowsOf(w, enc.addCurrentToken ? [...ids, currentId] : ids)
  const pre = enc.prefix.length / d
  const suf = (enc.suffix?.length ?? 0) / d
  const n = pre + tokens.length / d + suf
  const rows = new Float64Array(n * d)
  rows.set(Float64Array.from(enc.prefix), 0)
  rows.set(tokens, pre * d)
  if (enc.suffix) rows.set(Float64Array.from(enc.suffix), (n - suf) * d)
  if (enc.lastRowAdd) for (let i = 0; i < d; i++) rows[(n - 1) * d + i]! += enc.lastRowAdd[i]!
  const hidden = referenceResiduals(w, rows, enc.outputLayer)[enc.outputLayer]!.slice(
    (n - 1) * d,
    n * d
  )
  if (!enc.head) return hidden
  const out = Float64Array.from(enc.head.bias)
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) out[j]! += hidden[i]! * enc.head.weight[i * d + j]!
  return out
}

/** Log-probabilities of the token after row `observe`, the residual after `layer` at `at` replaced. */
export function patchedLogProbsRef(
  w: TransformerWeights,
  ids: readonly number[],
  layer: number,
  at: number,
  vector: ArrayLike<number>,
  observe: number
): Float64Array {
  const d = w.dims.hiddenSize
  const last = w.dims.layers - 1
  const replace: ResidualReplacement = { layer, row: at, vector }
  const res = referenceResiduals(w, rowsOf(w, ids.slice(0, observe + 1)), last, replace)[last]!
  return logSoftmax(referenceLogits(w, res.slice(observe * d, (observe + 1) * d)))
}

/** Greedy continuation of `prompt` with the residual after `layer` at `at` replaced; `banned` ids never chosen. */
export function patchedGreedyRef(
  w: TransformerWeights,
  prompt: readonly number[],
  layer: number,
  at: number,
  vector: ArrayLike<number>,
  steps: number,
  banned: ReadonlySet<number> = new Set()
): { tokens: number[]; margins: number[] } {
  const d = w.dims.hiddenSize
  const last = w.dims.layers - 1
  const seq = [...prompt]
  const tokens: number[] = []
  const margins: number[] = []
  for (let s = 0; s < steps; s++) {
    const res = referenceResiduals(w, rowsOf(w, seq), last, { layer, row: at, vector })[last]!
    const z = referenceLogits(w, res.slice((seq.length - 1) * d, seq.length * d))
    let best = -1
    let second = -Infinity
    for (let v = 0; v < z.length; v++) {
      if (banned.has(v)) continue
      if (best < 0 || z[v]! > z[best]!) {
        if (best >= 0) second = Math.max(second, z[best]!)
        best = v
      } else second = Math.max(second, z[v]!)
    }
    tokens.push(best)
    margins.push(z[best]! - second)
    seq.push(best)
  }
  return { tokens, margins }
}

export function mseRef(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2
  return s / a.length
}

export function klRef(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let kl = 0
  for (let v = 0; v < p.length; v++) kl += Math.exp(p[v]!) * (p[v]! - q[v]!)
  return kl
}
