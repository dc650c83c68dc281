/**
 * bfloat16 → float32 widening as a WebAssembly SIMD kernel, for buffers that live in a
 * WebAssembly.Memory (the importer's output buffers, directWrites.ts). The JavaScript loop of
 * convert.ts costs a few nanoseconds per value, which made widening the largest single CPU cost
 * of a BF16 import (docs/import.md "Safety and memory"); eight values per 128-bit step cost a
 * fraction of that.
 *
 * The kernel does what convert.ts `widenHalf` does for BF16, bit for bit: each 16-bit pattern
 * becomes the high half of a float32 (a zero low half), and the same fused check flags NaN and
 * infinities (exponent bits all ones: `(x & 0x7f80) + 0x0080` carries into bit 15 only then).
 *
 * It widens in place: the 16-bit values may sit in the upper half of the float32 output
 * (`src = dst + 2n`), so that a tensor is read straight into its output buffer and needs no read
 * buffer. Walking forward, step k reads bytes [src + 16k, src + 16k + 16) before writing
 * [dst + 32k, dst + 32k + 32), which ends at or before src + 16(k + 1): no step overwrites a value
 * a later step still has to read. The scalar tail keeps the same order.
 *
 * A second kernel widens while it transposes (an nn.Linear (out, in) weight → (in, out), as
 * convert.ts `transposeWidenHalf`), 8 × 8 values at a time; its source rows are read into the
 * same memory (the end of the output buffer, weightStream.ts), apart from the output.
 *
 * The module is written out byte by byte below (no toolchain needed to build it); the test checks
 * it against convert.ts on every 16-bit pattern and on transposed shapes with and without edges.
 */

/** The WebAssembly namespace as used here (the node typings do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>
  ) => {
    exports: Record<string, unknown>
  }
  validate(bytes: Uint8Array): boolean
}
const Wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly

/** Unsigned LEB128, as the binary format writes integers. */
function leb(n: number): number[] {
  const out: number[] = []
  do {
    let byte = n & 0x7f
    n >>>= 7
    if (n !== 0) byte |= 0x80
    out.push(byte)
  } while (n !== 0)
  return out
}

const name = (s: string): number[] => [s.length, ...[...s].map((c) => c.charCodeAt(0))]
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body]
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()]

// Opcodes (WebAssembly core 2.0, with the fixed-width SIMD proposal's 0xfd prefix).
const I32 = 0x7f
const V128 = 0x7b
const BLOCK = [0x02, 0x40]
const LOOP = [0x03, 0x40]
const END = 0x0b
const BR = 0x0c
const BR_IF = 0x0d
const GET = 0x20
const SET = 0x21
const I32_CONST = 0x41
const I32_GE_U = 0x4f
const I32_ADD = 0x6a
const I32_AND = 0x71
const I32_OR = 0x72
const I32_SHL = 0x74
const I32_SHR_U = 0x76
const I32_LOAD16_U = [0x2f, 1, 0] // align 2^1, offset 0
const I32_STORE = [0x36, 2, 0] // align 2^2, offset 0
const simd = (op: number, ...imm: number[]): number[] => [0xfd, ...leb(op), ...imm]
const V128_LOAD = simd(0x00, 0, 0) // align 1: the 16-bit values need only be 2-byte aligned
const v128Store = (offset: number): number[] => simd(0x0b, 0, ...leb(offset))
const V128_AND = simd(0x4e)
const V128_OR = simd(0x50)
const I16X8_BITMASK = simd(0x84)
const I16X8_ADD = simd(0x8e)
const I32X4_EXTEND_LOW_I16X8_U = simd(0xa9)
const I32X4_EXTEND_HIGH_I16X8_U = simd(0xaa)
const I32X4_SHL = simd(0xab)
const i16x8Splat = (v: number): number[] =>
  simd(0x0c, ...Array.from({ length: 8 }, () => [v & 0xff, v >> 8]).flat())
/** A signed LEB128 i32.const of a non-negative value below 2^20. */
const i32Const = (v: number): number[] => {
  const out: number[] = []
  for (;;) {
    const byte = v & 0x7f
    v >>= 7
    if (v === 0 && (byte & 0x40) === 0) return [I32_CONST, ...out, byte]
    out.push(byte | 0x80)
  }
}

// widenBf16(src, dst, n) → nonzero when a value is NaN or infinite. Params 0–2; locals:
const SRC = 0
const DST = 1
const N = 2
const K = 3 // step / element index
const STEPS = 4 // n >> 3
const AT = 5 // output address of the step
const X = 6 // one 16-bit value (tail)
const FLAGS = 7 // tail's OR of exponent sums
const ACC = 8 // vector OR of exponent sums
const V = 9 // eight 16-bit values

const body: number[] = [
  ...[GET, N, ...i32Const(3), I32_SHR_U, SET, STEPS],
  // Eight values a step.
  ...BLOCK,
  ...LOOP,
  ...[GET, K, GET, STEPS, I32_GE_U, BR_IF, 1],
  ...[GET, SRC, GET, K, ...i32Const(4), I32_SHL, I32_ADD, ...V128_LOAD, SET, V],
  ...[GET, ACC, GET, V, ...i16x8Splat(0x7f80), ...V128_AND, ...i16x8Splat(0x0080), ...I16X8_ADD],
  ...[...V128_OR, SET, ACC],
  ...[GET, DST, GET, K, ...i32Const(5), I32_SHL, I32_ADD, SET, AT],
  ...[GET, AT, GET, V, ...I32X4_EXTEND_LOW_I16X8_U, ...i32Const(16), ...I32X4_SHL, ...v128Store(0)],
  ...[GET, AT, GET, V, ...I32X4_EXTEND_HIGH_I16X8_U, ...i32Const(16), ...I32X4_SHL],
  ...v128Store(16),
  ...[GET, K, ...i32Const(1), I32_ADD, SET, K, BR, 0],
  END,
  END,
  // The last n % 8 values one at a time.
  ...[GET, STEPS, ...i32Const(3), I32_SHL, SET, K],
  ...BLOCK,
  ...LOOP,
  ...[GET, K, GET, N, I32_GE_U, BR_IF, 1],
  ...[GET, SRC, GET, K, ...i32Const(1), I32_SHL, I32_ADD, ...I32_LOAD16_U, SET, X],
  ...[GET, FLAGS, GET, X, ...i32Const(0x7f80), I32_AND, ...i32Const(0x0080), I32_ADD, I32_OR],
  ...[SET, FLAGS],
  ...[GET, DST, GET, K, ...i32Const(2), I32_SHL, I32_ADD, GET, X, ...i32Const(16), I32_SHL],
  ...I32_STORE,
  ...[GET, K, ...i32Const(1), I32_ADD, SET, K, BR, 0],
  END,
  END,
  // Bit 15 of any lane (bitmask) or of the tail's flags.
  ...[GET, ACC, ...I16X8_BITMASK, GET, FLAGS, ...i32Const(0x8000), I32_AND, I32_OR],
  END
]
const locals = vec([
  [5, I32],
  [2, V128]
])
const func = [...locals, ...body]

// More opcodes for the transposing kernels.
const CALL = 0x10
const TEE = 0x22
const I32_MUL = 0x6c
const I32_LT_U = 0x49
const I8X16_SHUFFLE = (lanes: number[]): number[] => simd(0x0d, ...lanes)
/** Signed LEB128 i32.const of any i32. */
const i32ConstS = (v: number): number[] => {
  const out: number[] = [I32_CONST]
  for (;;) {
    const byte = v & 0x7f
    v >>= 7
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte)
      return out
    }
    out.push(byte | 0x80)
  }
}
/** `for (i = from; i < to; i += step) { body }` over i32 locals. */
const forLoop = (
  i: number,
  from: number[],
  to: number[],
  step: number,
  inner: number[]
): number[] => [
  ...from,
  SET,
  i,
  ...BLOCK,
  ...LOOP,
  ...[GET, i, ...to, I32_LT_U, ...i32Const(0), 0x46 /* i32.eq */, BR_IF, 1],
  ...inner,
  ...[GET, i, ...i32Const(step), I32_ADD, SET, i, BR, 0],
  END,
  END
]

// transposeRect(src, cols, dst, dstCols, dstCol, r0, r1, c0, c1) → bit 15 set when a value is
// NaN or infinite: dst[c][dstCol + r] = widen(src[r][c]) over rows r0..r1−1, columns c0..c1−1,
// one value at a time (the edges the 8 × 8 blocks leave).
const R = {
  src: 0,
  cols: 1,
  dst: 2,
  dstCols: 3,
  dstCol: 4,
  r0: 5,
  r1: 6,
  c0: 7,
  c1: 8,
  r: 9,
  c: 10,
  x: 11,
  flags: 12
}
const rectBody: number[] = [
  ...forLoop(R.r, [GET, R.r0], [GET, R.r1], 1, [
    ...forLoop(R.c, [GET, R.c0], [GET, R.c1], 1, [
      // x = src[r * cols + c]
      ...[GET, R.src, GET, R.r, GET, R.cols, I32_MUL, GET, R.c, I32_ADD, ...i32Const(1), I32_SHL],
      ...[I32_ADD, ...I32_LOAD16_U, SET, R.x],
      ...[GET, R.flags, GET, R.x, ...i32Const(0x7f80), I32_AND, ...i32Const(0x0080), I32_ADD],
      ...[I32_OR, SET, R.flags],
      // dst[c * dstCols + dstCol + r] = x << 16
      ...[GET, R.dst, GET, R.c, GET, R.dstCols, I32_MUL, GET, R.dstCol, I32_ADD, GET, R.r, I32_ADD],
      ...[...i32Const(2), I32_SHL, I32_ADD, GET, R.x, ...i32Const(16), I32_SHL, ...I32_STORE]
    ])
  ]),
  ...[GET, R.flags, ...i32Const(0x8000), I32_AND],
  END
]
const rectFunc = [...vec([[4, I32]]), ...rectBody]

// transposeBf16(src, rows, cols, dst, dstCols, dstCol) → nonzero when a value is NaN or infinite:
// dst[c][dstCol + r] = widen(src[r][c]). 8 × 8 blocks: eight rows of eight values loaded, the
// block transposed by three rounds of interleaving (16-, 32-, then 64-bit lanes), each of its
// columns widened and stored as eight float32 of an output row; the edges by transposeRect.
const T = {
  src: 0,
  rows: 1,
  cols: 2,
  dst: 3,
  dstCols: 4,
  dstCol: 5,
  r0: 6,
  c0: 7,
  rows8: 8,
  cols8: 9,
  rowBytes: 10,
  a: 11,
  q: 12,
  flags: 13,
  dstRowBytes: 14,
  acc: 15,
  v: 16, // 16..23
  t: 24, // 24..31
  w: 32
}
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
const LO16 = [0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23]
const HI16 = LO16.map((b) => b + 8)
const LO32 = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23]
const HI32 = LO32.map((b) => b + 8)
const LO64 = [...range(8), ...range(8).map((b) => b + 16)]
const HI64 = LO64.map((b) => b + 8)
const shuffle = (a: number, b: number, lanes: number[]): number[] => [
  GET,
  a,
  GET,
  b,
  ...I8X16_SHUFFLE(lanes)
]
const block8: number[] = [
  // a = src + (r0 * cols + c0) * 2; v[k] = the eight values of row r0 + k
  ...[GET, T.src, GET, T.r0, GET, T.cols, I32_MUL, GET, T.c0, I32_ADD, ...i32Const(1), I32_SHL],
  ...[I32_ADD, SET, T.a],
  ...range(8).flatMap((k) => [
    ...[GET, T.a, ...V128_LOAD, TEE, T.v + k],
    ...[...i16x8Splat(0x7f80), ...V128_AND, ...i16x8Splat(0x0080), ...I16X8_ADD],
    ...[GET, T.acc, ...V128_OR, SET, T.acc],
    ...[GET, T.a, GET, T.rowBytes, I32_ADD, SET, T.a]
  ]),
  // t: 16-bit interleave of row pairs; then (into v) 32-bit interleave of t pairs.
  ...range(4).flatMap((k) => [
    ...shuffle(T.v + 2 * k, T.v + 2 * k + 1, LO16),
    SET,
    T.t + 2 * k,
    ...shuffle(T.v + 2 * k, T.v + 2 * k + 1, HI16),
    SET,
    T.t + 2 * k + 1
  ]),
  ...[0, 4].flatMap((base) => [
    ...shuffle(T.t + base, T.t + base + 2, LO32),
    SET,
    T.v + base,
    ...shuffle(T.t + base, T.t + base + 2, HI32),
    SET,
    T.v + base + 1,
    ...shuffle(T.t + base + 1, T.t + base + 3, LO32),
    SET,
    T.v + base + 2,
    ...shuffle(T.t + base + 1, T.t + base + 3, HI32),
    SET,
    T.v + base + 3
  ]),
  // q = dst + (c0 * dstCols + dstCol + r0) * 4; column j = 64-bit interleave of v[j/2], v[4 + j/2]
  ...[GET, T.dst, GET, T.c0, GET, T.dstCols, I32_MUL, GET, T.dstCol, I32_ADD, GET, T.r0, I32_ADD],
  ...[...i32Const(2), I32_SHL, I32_ADD, SET, T.q],
  ...range(8).flatMap((j) => [
    ...shuffle(T.v + (j >> 1), T.v + 4 + (j >> 1), j % 2 === 0 ? LO64 : HI64),
    SET,
    T.w,
    ...[GET, T.q, GET, T.w, ...I32X4_EXTEND_LOW_I16X8_U, ...i32Const(16), ...I32X4_SHL],
    ...v128Store(0),
    ...[GET, T.q, GET, T.w, ...I32X4_EXTEND_HIGH_I16X8_U, ...i32Const(16), ...I32X4_SHL],
    ...v128Store(16),
    ...[GET, T.q, GET, T.dstRowBytes, I32_ADD, SET, T.q]
  ])
]
const rectCall = (r0: number[], r1: number[], c0: number[], c1: number[]): number[] => [
  ...[GET, T.src, GET, T.cols, GET, T.dst, GET, T.dstCols, GET, T.dstCol],
  ...r0,
  ...r1,
  ...c0,
  ...c1,
  CALL,
  1, // transposeRect
  GET,
  T.flags,
  I32_OR,
  SET,
  T.flags
]
const transposeBody: number[] = [
  ...[GET, T.rows, ...i32ConstS(-8), I32_AND, SET, T.rows8],
  ...[GET, T.cols, ...i32ConstS(-8), I32_AND, SET, T.cols8],
  ...[GET, T.cols, ...i32Const(1), I32_SHL, SET, T.rowBytes],
  ...[GET, T.dstCols, ...i32Const(2), I32_SHL, SET, T.dstRowBytes],
  ...forLoop(T.r0, i32Const(0), [GET, T.rows8], 8, [
    ...forLoop(T.c0, i32Const(0), [GET, T.cols8], 8, block8)
  ]),
  ...rectCall([GET, T.rows8], [GET, T.rows], i32Const(0), [GET, T.cols]),
  ...rectCall(i32Const(0), [GET, T.rows8], [GET, T.cols8], [GET, T.cols]),
  ...[GET, T.acc, ...I16X8_BITMASK, GET, T.flags, I32_OR],
  END
]
const transposeFunc = [
  ...vec([
    [9, I32],
    [18, V128]
  ]),
  ...transposeBody
]

const MODULE_BYTES = new Uint8Array([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  // type 0: (i32 × 3) → i32; type 1: (i32 × 9) → i32; type 2: (i32 × 6) → i32
  ...section(
    1,
    vec([
      [0x60, 3, I32, I32, I32, 1, I32],
      [0x60, 9, ...range(9).map(() => I32), 1, I32],
      [0x60, 6, ...range(6).map(() => I32), 1, I32]
    ])
  ),
  // env.memory: a shared memory of up to 65,536 pages (4 GiB), as directWrites.ts allocates
  ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x03, ...leb(1), ...leb(65536)]])),
  ...section(3, vec([[0], [1], [2]])),
  ...section(
    7,
    vec([
      [...name('widenBf16'), 0x00, 0],
      [...name('transposeBf16'), 0x00, 2]
    ])
  ),
  ...section(
    10,
    vec([
      [...leb(func.length), ...func],
      [...leb(rectFunc.length), ...rectFunc],
      [...leb(transposeFunc.length), ...transposeFunc]
    ])
  )
])

let compiled: object | null | undefined

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
function wasmModule(): object | null {
  if (compiled !== undefined) return compiled
  compiled = null
  try {
    if (Wasm && Wasm.validate(MODULE_BYTES)) compiled = new Wasm.Module(MODULE_BYTES)
  } catch {
    // No WebAssembly SIMD: callers keep convert.ts's loop.
  }
  return compiled
}

/**
 * Widens `n` bfloat16 patterns at byte `src` of the memory into float32 at byte `dst`; true when
 * some value is NaN or infinite. `src` and `dst` even; the ranges either apart or `src = dst + 2n`.
 */
export type Bf16Widener = (src: number, dst: number, n: number) => boolean

/**
 * The kernel bound to `memory` (a shared WebAssembly.Memory of at most 65,536 pages), or null when
 * WebAssembly SIMD is unavailable or the memory cannot be bound.
 */
export function bf16WidenerFor(memory: unknown): Bf16Widener | null {
  const module = wasmModule()
  if (!module || !Wasm) return null
  try {
    const instance = new Wasm.Instance(module, { env: { memory } })
    const widen = instance.exports.widenBf16 as (src: number, dst: number, n: number) => number
    return (src, dst, n) => widen(src, dst, n) !== 0
  } catch {
    return null
  }
}

/**
 * Widens a (rows, cols) row-major matrix of bfloat16 patterns at byte `src`, transposed, into the
 * float32 matrix `dstCols` wide at byte `dst`, at columns dstCol..dstCol+rows−1 (as convert.ts
 * `transposeWidenHalf`); true when some value is NaN or infinite. The ranges must not overlap.
 */
export type Bf16Transposer = (
  src: number,
  rows: number,
  cols: number,
  dst: number,
  dstCols: number,
  dstCol: number
) => boolean

/** The transposing kernel bound to `memory` (as bf16WidenerFor), or null. */
export function bf16TransposerFor(memory: unknown): Bf16Transposer | null {
  const module = wasmModule()
  if (!module || !Wasm) return null
  try {
    const instance = new Wasm.Instance(module, { env: { memory } })
    const transpose = instance.exports.transposeBf16 as (...args: number[]) => number
    return (src, rows, cols, dst, dstCols, dstCol) =>
      transpose(src, rows, cols, dst, dstCols, dstCol) !== 0
  } catch {
    return null
  }
}
