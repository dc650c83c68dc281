/**
 * The importer's fused conversion kernels against independent references: every one of the 65,536
 * bfloat16 and float16 bit patterns (NaN payloads, ±Inf, subnormals, −0), the non-finite flag, the
 * transposed layout, and exact NaN / ±Inf counts.
 */
import { describe, expect, it } from 'vitest'
import { countNonFinite16, transposeWidenHalf, widenHalf, type HalfDtype } from './convert'
import { countNonFinite } from './finite'

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)
const bitsOf = (x: number): number => {
  f32[0] = x
  return u32[0]!
}

/** float32 bits of a float16 pattern, from its fields in float64 (NaN: payload in the high bits). */
function f16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 31 && m !== 0) return (((h & 0x8000) << 16) | 0x7f800000 | (m << 13)) >>> 0
  if (e === 31) return bitsOf(sign * Infinity)
  if (e === 0) return bitsOf(sign * m * 2 ** -24)
  return bitsOf(sign * (1 + m / 1024) * 2 ** (e - 15))
}

/** float32 bits of a bfloat16 pattern: its 16 bits are the float32's high half. */
const bf16Bits = (h: number): number => (h * 65536) >>> 0

const reference: Record<HalfDtype, (h: number) => number> = { BF16: bf16Bits, F16: f16Bits }
const isNonFinite: Record<HalfDtype, (h: number) => boolean> = {
  BF16: (h) => (h & 0x7f80) === 0x7f80,
  F16: (h) => (h & 0x7c00) === 0x7c00
}

/** Edge patterns of each format: ±0, smallest and largest subnormal, ±max finite, ±Inf, NaNs. */
const EDGES: Record<HalfDtype, number[]> = {
  BF16: [
    0x0000, 0x8000, 0x0001, 0x807f, 0x0080, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x7f81
  ],
  F16: [
    0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x7c01
  ]
}

const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i)

describe.each(['BF16', 'F16'] as const)('%s kernels', (dtype) => {
  it('widenHalf gives the exact float32 bits of all 65,536 patterns', () => {
    const out = new Uint32Array(65536)
    expect(widenHalf(ALL, out, dtype)).toBe(true)
    for (let h = 0; h < 65536; h++) {
      if (out[h] !== reference[dtype](h)) {
        throw new Error(`${dtype} 0x${h.toString(16)}: 0x${out[h]!.toString(16)}`)
      }
    }
  })

  it('flags a block exactly when one of its values is NaN or infinite', () => {
    const out = new Uint32Array(1)
    for (let h = 0; h < 65536; h++) {
      const flagged = widenHalf(ALL.subarray(h, h + 1), out, dtype)
      if (flagged !== isNonFinite[dtype](h)) throw new Error(`${dtype} 0x${h.toString(16)}`)
    }
    // Every finite edge value (subnormals, −0, ±max) in one block: no flag.
    const finite = Uint16Array.from(EDGES[dtype].filter((h) => !isNonFinite[dtype](h)))
    expect(widenHalf(finite, new Uint32Array(finite.length), dtype)).toBe(false)
    // One NaN at the end of a long finite block is found.
    const long = new Uint16Array(100_003).fill(0x3c00)
    long[long.length - 1] = EDGES[dtype][10]!
    expect(widenHalf(long, new Uint32Array(long.length), dtype)).toBe(true)
  })

  it('transposeWidenHalf writes dst[c][col + r] = widen(src[r][c]) and nothing else', () => {
    const rows = 37
    const cols = 45
    const dstCols = rows + 11
    const dstCol = 5
    const src = new Uint16Array(rows * cols)
    let x = 12345
    for (let i = 0; i < src.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0
      src[i] = x >>> 16
    }
    // Keep it finite, then place the edges (the non-finite ones set the flag).
    for (let i = 0; i < src.length; i++) if (isNonFinite[dtype](src[i]!)) src[i] = 0x3c00
    const edges = EDGES[dtype]
    expect(
      transposeWidenHalf(src, rows, cols, new Uint32Array(cols * dstCols), dstCols, dstCol, dtype)
    ).toBe(false)
    edges.forEach((h, i) => (src[i * 97] = h))
    const dst = new Uint32Array(cols * dstCols).fill(0xdeadbeef)
    expect(transposeWidenHalf(src, rows, cols, dst, dstCols, dstCol, dtype)).toBe(true)
    for (let c = 0; c < cols; c++) {
      for (let j = 0; j < dstCols; j++) {
        const r = j - dstCol
        const want = r >= 0 && r < rows ? reference[dtype](src[r * cols + c]!) : 0xdeadbeef
        if (dst[c * dstCols + j] !== want) throw new Error(`${dtype} row ${r} col ${c}`)
      }
    }
  })

  it('refuses an output too small for the transposed block', () => {
    expect(() =>
      transposeWidenHalf(new Uint16Array(6), 2, 3, new Uint32Array(5), 2, 0, dtype)
    ).toThrow(RangeError)
  })

  it('countNonFinite16 counts as countNonFinite does on the widened values', () => {
    const src = Uint16Array.from([...EDGES[dtype], ...EDGES[dtype].slice(6), 0x3c00])
    const widened = new Uint32Array(src.length)
    widenHalf(src, widened, dtype)
    const values = new Float32Array(widened.buffer)
    const got = countNonFinite16(src, dtype)
    expect(got).toEqual(countNonFinite(values))
    expect(got).toMatchObject({ nan: 6, posInf: 2, negInf: 2, firstIndex: 7 })
    const finite = Uint16Array.from(EDGES[dtype].slice(0, 7))
    expect(countNonFinite16(finite, dtype)).toBeNull()
  })
})
