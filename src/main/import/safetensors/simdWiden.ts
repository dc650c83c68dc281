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
 * The module is written out byte by byte below (no toolchain needed to build it); the test checks
 * it against convert.ts on every 16-bit pattern.
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

const MODULE_BYTES = new Uint8Array([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  // type 0: (i32, i32, i32) → i32
  ...section(1, vec([[0x60, 3, I32, I32, I32, 1, I32]])),
  // env.memory: a shared memory of up to 65,536 pages (4 GiB), as directWrites.ts allocates
  ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x03, ...leb(1), ...leb(65536)]])),
  ...section(3, vec([[0]])),
  ...section(7, vec([[...name('widenBf16'), 0x00, 0]])),
  ...section(10, vec([[...leb(func.length), ...func]]))
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
