/** The per-position numbers of an analysis row, as plain functions (as the predecessor defined them). */

/** Floor under the MSE a salience divides by (the seed divided by zero when MSE was 0). */
export const SALIENCE_EPS = 1e-12

/** mean_i (a_i − b_i)² */
export function meanSquaredError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) {
    const e = a[i]! - b[i]!
    s += e * e
  }
  return s / a.length
}

/** RMS(A − Â) / RMS(A); 0 when A is all zero and so is the error, Infinity when only A is. */
export function relativeRmse(mse: number, target: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < target.length; i++) s += target[i]! * target[i]!
  const rmsTarget = Math.sqrt(s / target.length)
  if (rmsTarget === 0) return mse === 0 ? 0 : Number.POSITIVE_INFINITY
  return Math.sqrt(mse) / rmsTarget
}

/** Relative MSE increase when an explanation token is replaced by the null token; > 0 = it helps. */
export function salience(mseAblated: number, mse: number): number {
  return (mseAblated - mse) / Math.max(mse, SALIENCE_EPS)
}

/**
 * How far below 0 a float32 KL may land from rounding alone (P ≈ Q: Σ p·(lp − lq) of nearly equal
 * terms). Anything lower is not noise but a bug or broken numerics, so it is reported as it is.
 */
export const KL_ROUNDING_TOLERANCE = 1e-6

/** The graph's KL with rounding noise below 0 set to 0; a larger negative value stays visible. */
export function klOrZeroIfRounding(kl: number): number {
  return kl < 0 && kl > -KL_ROUNDING_TOLERANCE ? 0 : kl
}

/** KL(P‖Q) = Σ P (log P − log Q) from logits, in float64 after max-subtraction (a reference). */
export function klFromLogits(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const lp = logSoftmax(p)
  const lq = logSoftmax(q)
  let kl = 0
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]!) * (lp[i]! - lq[i]!)
  return kl
}

export function logSoftmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]!)
  let s = 0
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i]! - m)
  const lse = m + Math.log(s)
  const out = new Float64Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = x[i]! - lse
  return out
}

/** Index of the smallest value in values[from, from+count); ties go to the lowest index. */
export function argminRange(values: ArrayLike<number>, from: number, count: number): number {
  let best = from
  for (let i = from + 1; i < from + count; i++) if (values[i]! < values[best]!) best = i
  return best - from
}
