/**
 * A float64 reference forward pass of the architecture in transformer.ts, for tiny models: the
 * demo generator fits its encoder head with it (so the demo's bytes do not depend on ONNX Runtime
 * kernels), and tests compare the ONNX graph against it.
 */
import type { TransformerWeights } from './transformer'

const LN_EPS = 1e-5

function layerNorm(x: Float64Array, gain: Float32Array, bias: Float32Array): Float64Array {
  const d = x.length
  let mu = 0
  for (let i = 0; i < d; i++) mu += x[i]!
  mu /= d
  let v = 0
  for (let i = 0; i < d; i++) v += (x[i]! - mu) ** 2
  const inv = 1 / Math.sqrt(v / d + LN_EPS)
  const out = new Float64Array(d)
  for (let i = 0; i < d; i++) out[i] = (x[i]! - mu) * inv * gain[i]! + bias[i]!
  return out
}

interface Sparse {
  start: Int32Array
  cols: Int32Array
  vals: Float64Array
}
const sparseCache = new WeakMap<Float32Array, Sparse | null>()

/** Constructed weights are mostly zeros: keep a row-compressed copy of sparse matrices. */
function sparseOf(w: Float32Array, m: number): Sparse | null {
  let s = sparseCache.get(w)
  if (s !== undefined) return s
  let nnz = 0
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) nnz++
  s = null
  if (nnz < w.length / 4) {
    const rows = w.length / m
    const start = new Int32Array(rows + 1)
    const cols = new Int32Array(nnz)
    const vals = new Float64Array(nnz)
    let k = 0
    for (let r = 0; r < rows; r++) {
      start[r] = k
      for (let j = 0; j < m; j++) {
        const v = w[r * m + j]!
        if (v !== 0) {
          cols[k] = j
          vals[k++] = v
        }
      }
    }
    start[rows] = k
    s = { start, cols, vals }
  }
  sparseCache.set(w, s)
  return s
}

/** y = x·W + b with W (n, m) row-major. */
function affine(x: Float64Array, w: Float32Array, b: Float32Array, m: number): Float64Array {
  const out = Float64Array.from(b)
  const sp = sparseOf(w, m)
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!
    if (xi === 0) continue
    if (sp) {
      for (let k = sp.start[i]!; k < sp.start[i + 1]!; k++) out[sp.cols[k]!]! += xi * sp.vals[k]!
      continue
    }
    const row = i * m
    for (let j = 0; j < m; j++) out[j]! += xi * w[row + j]!
  }
  return out
}

/** Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7), enough for a reference GELU. */
function erf(x: number): number {
  const s = Math.sign(x)
  const a = Math.abs(x)
  const t = 1 / (1 + 0.3275911 * a)
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-a * a)
  return s * y
}

/** Overwrites one row's residual after block `layer` (what the KL role's Q does). */
export interface ResidualReplacement {
  layer: number
  row: number
  vector: ArrayLike<number>
}

/**
 * Residual stream after each block 0..upTo for input rows (n, d) given in residual-input space
 * (token embeddings × scale, before positions). Returns one (n·d) array per block.
 */
export function referenceResiduals(
  w: TransformerWeights,
  rows: Float64Array,
  upTo: number,
  replace?: ResidualReplacement
): Float64Array[] {
  const { hiddenSize: d, heads, ffnSize: f } = w.dims
  const dh = d / heads
  const n = rows.length / d
  let x: Float64Array[] = []
  for (let t = 0; t < n; t++) {
    const r = new Float64Array(d)
    for (let i = 0; i < d; i++) r[i] = rows[t * d + i]! + w.positionEmbedding[t * d + i]!
    x.push(r)
  }
  const out: Float64Array[] = []
  for (let l = 0; l <= upTo; l++) {
    const lw = w.layers[l]!
    const qkv = x.map((r) =>
      affine(layerNorm(r, lw.ln1Gain, lw.ln1Bias), lw.qkv, lw.qkvBias, 3 * d)
    )
    const attn = x.map(() => new Float64Array(d))
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < n; t++) {
        const scores: number[] = []
        for (let j = 0; j <= t; j++) {
          let s = 0
          for (let i = 0; i < dh; i++) s += qkv[t]![h * dh + i]! * qkv[j]![d + h * dh + i]!
          scores.push(s / Math.sqrt(dh))
        }
        let m = -Infinity
        for (const v of scores) m = Math.max(m, v)
        const e = scores.map((s) => Math.exp(s - m))
        const z = e.reduce((a, b) => a + b, 0)
        for (let j = 0; j <= t; j++) {
          const p = e[j]! / z
          for (let i = 0; i < dh; i++) attn[t]![h * dh + i]! += p * qkv[j]![2 * d + h * dh + i]!
        }
      }
    }
    x = x.map((r, t) => {
      const a = affine(attn[t]!, lw.out, lw.outBias, d)
      const y = new Float64Array(d)
      for (let i = 0; i < d; i++) y[i] = r[i]! + a[i]!
      const u = affine(layerNorm(y, lw.ln2Gain, lw.ln2Bias), lw.up, lw.upBias, f)
      for (let i = 0; i < f; i++) u[i] = 0.5 * u[i]! * (1 + erf(u[i]! / Math.SQRT2))
      const m = affine(u, lw.down, lw.downBias, d)
      for (let i = 0; i < d; i++) y[i]! += m[i]!
      return y
    })
    if (replace?.layer === l) x[replace.row] = Float64Array.from(replace.vector)
    const flat = new Float64Array(n * d)
    x.forEach((r, t) => flat.set(r, t * d))
    out.push(flat)
  }
  return out
}

/** Final norm + unembedding of one residual row: logits (V). */
export function referenceLogits(w: TransformerWeights, h: Float64Array): Float64Array {
  return affine(
    layerNorm(h, w.finalGain, w.finalBias),
    w.unembedding,
    new Float32Array(w.dims.vocabSize),
    w.dims.vocabSize
  )
}
