/** Comparison helpers for graph-vs-reference tests. */

/** ‖a − b‖∞ / ‖b‖∞. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0
  let den = 0
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!))
    den = Math.max(den, Math.abs(b[i]!))
  }
  return num / Math.max(den, 1e-30)
}

/** Rows of equal length, end to end. */
export function flat(rows: ArrayLike<number>[]): Float64Array {
  const d = rows[0]!.length
  const out = new Float64Array(rows.length * d)
  rows.forEach((r, i) => out.set(Array.from(r), i * d))
  return out
}
