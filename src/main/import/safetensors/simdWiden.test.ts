/**
 * The WebAssembly SIMD bfloat16 kernels against convert.ts `widenHalf` and `transposeWidenHalf`
 * (themselves checked against an
 * independent reference in convert.test.ts). Widening: every one of the 65,536 patterns, the non-finite flag
 * of each, lengths around the 8-value step, apart and in place (the 16-bit values in the upper
 * half of the float32 output, as the importer reads them), and nothing written past the output.
 * Transposing: shapes with and without 8 × 8 blocks and edges, into a wider output at a column
 * offset (nothing else written), and the flag wherever the non-finite value sits.
 */
import { describe, expect, it } from 'vitest'
import { transposeWidenHalf, widenHalf } from './convert'
import { bf16TransposerFor, bf16WidenerFor, type Bf16Widener } from './simdWiden'

/** The one WebAssembly constructor used (the node typings do not declare the namespace). */
const WasmMemory = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (d: { initial: number; maximum: number; shared?: boolean }) => { buffer: unknown }
    }
  }
).WebAssembly.Memory

const PAGES = 64 // 4 MiB
const memory = new WasmMemory({ initial: PAGES, maximum: PAGES, shared: true })
const buffer = memory.buffer as unknown as SharedArrayBuffer
const widen = bf16WidenerFor(memory)

/** Runs the kernel over `src` placed at `srcAt` (bytes), output at `dstAt`; returns flag and bits. */
function run(
  kernel: Bf16Widener,
  src: Uint16Array,
  srcAt: number,
  dstAt: number
): { flag: boolean; out: Uint32Array } {
  new Uint16Array(buffer, srcAt, src.length).set(src)
  const flag = kernel(srcAt, dstAt, src.length)
  return { flag, out: new Uint32Array(buffer, dstAt, src.length).slice() }
}

function expected(src: Uint16Array): { flag: boolean; out: Uint32Array } {
  const out = new Uint32Array(src.length)
  return { flag: widenHalf(src, out, 'BF16'), out }
}

const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i)
/** Deterministic finite patterns (exponent never all ones). */
const finite = (n: number): Uint16Array =>
  Uint16Array.from({ length: n }, (_, i) => (i * 40503 + 7) & 0xffff & 0xbfff)

describe('bf16WidenerFor', () => {
  it('is available on this runtime (the importer would fall back to the JavaScript loop)', () => {
    expect(widen).not.toBeNull()
  })

  it('gives the exact float32 bits of all 65,536 patterns, apart and in place', () => {
    const apart = run(widen!, ALL, 0, 1 << 20)
    const inPlace = run(widen!, ALL, 8 + 2 * ALL.length, 8)
    const want = expected(ALL)
    expect(apart.flag).toBe(true)
    expect(inPlace.flag).toBe(true)
    expect(Buffer.from(apart.out.buffer).equals(Buffer.from(want.out.buffer))).toBe(true)
    expect(Buffer.from(inPlace.out.buffer).equals(Buffer.from(want.out.buffer))).toBe(true)
  })

  it('flags a value exactly when it is NaN or infinite, in the vector steps and the tail', () => {
    for (const n of [1, 7, 8, 9, 16, 23]) {
      for (const at of [0, n - 1, Math.floor(n / 2)]) {
        for (const bad of [0x7f80, 0xff80, 0x7fc0, 0xffff, 0x7f81]) {
          const src = finite(n)
          src[at] = bad
          expect(run(widen!, src, 2 * n + 64, 64).flag).toBe(true)
        }
        const src = finite(n)
        src[at] = 0x7f7f // largest finite
        expect(run(widen!, src, 2 * n + 64, 64).flag).toBe(false)
      }
    }
  })

  it('matches widenHalf at lengths around the step, and writes nothing past the output', () => {
    for (const n of [0, 1, 2, 7, 8, 9, 15, 17, 1000, 65_539]) {
      const src = finite(n)
      const dstAt = 4096
      new Uint8Array(buffer, dstAt + 4 * n, 64).fill(0xab)
      const got = run(widen!, src, dstAt + 2 * n, dstAt)
      const want = expected(src)
      expect(got.flag).toBe(want.flag)
      expect(Buffer.from(got.out.buffer).equals(Buffer.from(want.out.buffer))).toBe(true)
      expect(new Uint8Array(buffer, dstAt + 4 * n, 64).every((b) => b === 0xab)).toBe(true)
    }
  })

  it('binds no kernel to something that is not a shared WebAssembly memory', () => {
    expect(bf16WidenerFor(new SharedArrayBuffer(65536))).toBeNull()
    expect(bf16WidenerFor(new WasmMemory({ initial: 1, maximum: 1 }))).toBeNull()
  })

  it('transposes as transposeWidenHalf does, blocks and edges, and flags non-finite values', () => {
    const transpose = bf16TransposerFor(memory)!
    expect(transpose).not.toBeNull()
    const SRC_AT = 1 << 20
    const DST_AT = 4096
    for (const [rows, cols, extra, dstCol] of [
      [8, 8, 0, 0],
      [16, 24, 3, 2],
      [13, 21, 5, 1],
      [7, 5, 0, 0],
      [1, 1, 0, 0],
      [0, 8, 0, 0],
      [64, 80, 8, 8],
      [37, 45, 11, 5]
    ] as const) {
      const dstCols = rows + extra + dstCol
      const src = finite(rows * cols)
      const want = new Uint32Array(cols * dstCols).fill(0xdeadbeef)
      expect(transposeWidenHalf(src, rows, cols, want, dstCols, dstCol, 'BF16')).toBe(false)
      new Uint16Array(buffer, SRC_AT, src.length).set(src)
      const out = new Uint32Array(buffer, DST_AT, cols * dstCols)
      out.fill(0xdeadbeef)
      expect(transpose(SRC_AT, rows, cols, DST_AT, dstCols, dstCol)).toBe(false)
      expect(Buffer.from(out.slice().buffer).equals(Buffer.from(want.buffer))).toBe(true)
      for (const at of src.length > 0 ? [0, src.length - 1, Math.floor(src.length / 3)] : []) {
        const bad = src.slice()
        bad[at] = 0xff80 // −Inf
        new Uint16Array(buffer, SRC_AT, bad.length).set(bad)
        expect(transpose(SRC_AT, rows, cols, DST_AT, dstCols, dstCol)).toBe(true)
      }
    }
  })
})
