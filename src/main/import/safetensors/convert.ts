/**
 * 16-bit float → float32 conversion kernels for the importer, each fused with the check for NaN and
 * infinities so that the weights are walked once: widening (same layout) and widening while
 * transposing (an nn.Linear (out, in) weight → (in, out)). Both are exact: a bfloat16 is the high
 * half of a float32, a float16 goes through the 65,536-entry table (dtypes.ts).
 *
 * The check works on the 16-bit patterns: a value is NaN or ±Inf exactly when its exponent bits are
 * all ones. Adding one unit of the exponent's lowest bit to the masked exponent carries into bit 15
 * only then, so OR-ing that sum over a block and testing bit 15 once costs two integer operations
 * per value and no branch. A block that fails the check is counted exactly by countNonFinite16.
 */
import { float16ToFloat32Table } from './dtypes'

export type HalfDtype = 'F16' | 'BF16'

/** NaN and ±Inf among a tensor's values (here and in finite.ts, which reads float32 ones). */
export interface NonFiniteCount {
  nan: number
  posInf: number
  negInf: number
  /** Index (flat, row-major) of the first non-finite value. */
  firstIndex: number
}

/** The exponent bits of each 16-bit format. */
const EXPONENT_MASK = { BF16: 0x7f80, F16: 0x7c00 } as const

/**
 * Widens `src` (16-bit patterns of `dtype`) into `dst` (float32 bit patterns), element for element.
 * Returns true when some value is NaN or infinite.
 */
export function widenHalf(src: Uint16Array, dst: Uint32Array, dtype: HalfDtype): boolean {
  if (dst.length < src.length) {
    throw new RangeError(`widenHalf: ${dst.length} outputs for ${src.length} inputs`)
  }
  return dtype === 'BF16' ? widenBf16(src, dst) : widenF16(src, dst, float16ToFloat32Table())
}

// The loops live in small monomorphic functions so V8 optimises each on its own.

function widenBf16(src: Uint16Array, dst: Uint32Array): boolean {
  const n = src.length
  let exp = 0
  for (let i = 0; i < n; i++) {
    const x = src[i]!
    exp |= (x & 0x7f80) + 0x0080
    dst[i] = x << 16
  }
  return (exp & 0x8000) !== 0
}

function widenF16(src: Uint16Array, dst: Uint32Array, table: Uint32Array): boolean {
  const n = src.length
  let exp = 0
  for (let i = 0; i < n; i++) {
    const x = src[i]!
    exp |= (x & 0x7c00) + 0x0400
    dst[i] = table[x]!
  }
  return (exp & 0x8000) !== 0
}

/**
 * Widens `src`, a (rows, cols) row-major matrix of 16-bit patterns, transposed into `dst`, a
 * row-major float32 matrix `dstCols` wide, at columns dstCol..dstCol+rows−1:
 * dst[c][dstCol + r] = widen(src[r][c]). Walks cache-sized tiles. Returns true when some value is
 * NaN or infinite.
 */
export function transposeWidenHalf(
  src: Uint16Array,
  rows: number,
  cols: number,
  dst: Uint32Array,
  dstCols: number,
  dstCol: number,
  dtype: HalfDtype
): boolean {
  if (src.length < rows * cols) {
    throw new RangeError(`transposeWidenHalf: ${src.length} inputs for ${rows} × ${cols}`)
  }
  if (cols > 0 && (cols - 1) * dstCols + dstCol + rows > dst.length) {
    throw new RangeError(`transposeWidenHalf: the output (${dst.length}) is too small`)
  }
  return dtype === 'BF16'
    ? transposeBf16(src, rows, cols, dst, dstCols, dstCol)
    : transposeF16(src, rows, cols, dst, dstCols, dstCol, float16ToFloat32Table())
}

const TILE = 32

function transposeBf16(
  src: Uint16Array,
  rows: number,
  cols: number,
  dst: Uint32Array,
  dstCols: number,
  dstCol: number
): boolean {
  let exp = 0
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE)
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE)
      for (let c = c0; c < c1; c++) {
        const at = c * dstCols + dstCol
        for (let r = r0; r < r1; r++) {
          const x = src[r * cols + c]!
          exp |= (x & 0x7f80) + 0x0080
          dst[at + r] = x << 16
        }
      }
    }
  }
  return (exp & 0x8000) !== 0
}

function transposeF16(
  src: Uint16Array,
  rows: number,
  cols: number,
  dst: Uint32Array,
  dstCols: number,
  dstCol: number,
  table: Uint32Array
): boolean {
  let exp = 0
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE)
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE)
      for (let c = c0; c < c1; c++) {
        const at = c * dstCols + dstCol
        for (let r = r0; r < r1; r++) {
          const x = src[r * cols + c]!
          exp |= (x & 0x7c00) + 0x0400
          dst[at + r] = table[x]!
        }
      }
    }
  }
  return (exp & 0x8000) !== 0
}

/**
 * Counts NaN and ±Inf among 16-bit patterns of `dtype` (flat index order, as countNonFinite does
 * for float32 values); null when every value is finite.
 */
export function countNonFinite16(src: Uint16Array, dtype: HalfDtype): NonFiniteCount | null {
  const mask = EXPONENT_MASK[dtype]
  let nan = 0
  let posInf = 0
  let negInf = 0
  let first = -1
  for (let i = 0; i < src.length; i++) {
    const x = src[i]!
    if ((x & mask) !== mask) continue
    if (first < 0) first = i
    if ((x & 0x7fff) !== mask) nan++
    else if (x & 0x8000) negInf++
    else posInf++
  }
  return first < 0 ? null : { nan, posInf, negInf, firstIndex: first }
}
