import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  float16ToFloat32Table,
  float32BitsToBfloat16Bits,
  float32BitsToFloat16Bits
} from './dtypes'
import { seededUniform } from '../../../../test/fixtures/hf/writeHfFolder'

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)
const bitsOf = (x: number): number => {
  f32[0] = x
  return u32[0]!
}
const valueOf = (bits: number): number => {
  u32[0] = bits
  return f32[0]!
}

/** float16 value from its fields, in float64 (independent of the table under test). */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0) return sign * m * 2 ** -24
  if (e === 31) return m ? NaN : sign * Infinity
  return sign * (1 + m / 1024) * 2 ** (e - 15)
}

/** bfloat16 value: the top 16 bits of a float32. */
const bf16Value = (h: number): number => valueOf(h << 16)

/**
 * Reference rounding: among the finite 16-bit values (sorted), the nearest to x in float64, ties to
 * the even bit pattern; beyond the largest finite value by half an ulp or more, infinity.
 */
function nearest(
  x: number,
  finite: { value: number; bits: number }[],
  maxUlpHalf: number,
  inf: number
): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0
  const ax = Math.abs(x)
  if (ax >= maxUlpHalf) return sign | inf
  let lo = 0
  let hi = finite.length - 1
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1
    if (finite[mid]!.value <= ax) lo = mid
    else hi = mid
  }
  const a = finite[lo]!
  const b = finite[hi]!
  const da = ax - a.value
  const db = b.value - ax
  const pick = da < db ? a : db < da ? b : (a.bits & 1) === 0 ? a : b
  return sign | pick.bits
}

function positiveFinite(
  decode: (h: number) => number,
  maxExpBits: number
): { value: number; bits: number }[] {
  const out: { value: number; bits: number }[] = []
  for (let h = 0; h < 0x8000; h++) {
    if ((h & maxExpBits) === maxExpBits) continue
    out.push({ value: decode(h), bits: h })
  }
  return out.sort((p, q) => p.value - q.value)
}

function randomFloat32Bits(next: () => number): number {
  // Uniform over bit patterns: covers subnormals, huge values and everything between.
  return (Math.floor((next() + 1) * 0x8000) << 16) | Math.floor((next() + 1) * 0x8000)
}

describe('16-bit float conversions', () => {
  it('decodes every float16 exactly', () => {
    const table = float16ToFloat32Table()
    const wrong: number[] = []
    for (let h = 0; h < 65536; h++) {
      const got = valueOf(table[h]!)
      const want = f16Value(h)
      if (Number.isNaN(want) ? !Number.isNaN(got) : !Object.is(got, want)) wrong.push(h)
    }
    expect(wrong).toEqual([])
  })

  it('float16 round trip is the identity on every non-NaN value', () => {
    const table = float16ToFloat32Table()
    const wrong: number[] = []
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue
      if (float32BitsToFloat16Bits(table[h]!) !== h) wrong.push(h)
    }
    expect(wrong).toEqual([])
  })

  it('bfloat16 round trip is the identity on every non-NaN value', () => {
    const wrong: number[] = []
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0) continue
      if (float32BitsToBfloat16Bits(h << 16) !== h) wrong.push(h)
    }
    expect(wrong).toEqual([])
  })

  const f16Finite = positiveFinite(f16Value, 0x7c00)
  const bf16Finite = positiveFinite(bf16Value, 0x7f80)
  const f16Limit = 65504 + 16 // halfway to the next power of two
  const bf16Limit = bf16Value(0x7f7f) + 2 ** (127 - 8) // max finite + half an ulp

  it('rounds float32 to float16 and bfloat16 to nearest, ties to even (random bit patterns)', () => {
    const next = seededUniform(7)
    const wrong: string[] = []
    for (let i = 0; i < 200_000; i++) {
      const bits = randomFloat32Bits(next)
      const x = valueOf(bits)
      if (Number.isNaN(x)) continue
      const signInf = (bits >>> 16) & 0x8000
      const wantF16 = Number.isFinite(x)
        ? nearest(x, f16Finite, f16Limit, 0x7c00)
        : signInf | 0x7c00
      const wantBf16 = Number.isFinite(x) ? nearest(x, bf16Finite, bf16Limit, 0x7f80) : bits >>> 16
      if (float32BitsToFloat16Bits(bits) !== wantF16) wrong.push(`f16 ${x}`)
      if (float32BitsToBfloat16Bits(bits) !== wantBf16) wrong.push(`bf16 ${x}`)
    }
    expect(wrong.slice(0, 10)).toEqual([])
  })

  it('breaks exact ties to the even neighbour', () => {
    // Midpoints between consecutive float16 values (exact in float32 for normal values).
    for (const [lo, hi] of [
      [0x3c00, 0x3c01],
      [0x3c01, 0x3c02],
      [0x0001, 0x0002],
      [0x0000, 0x0001],
      [0x7bfe, 0x7bff]
    ] as const) {
      const mid = (f16Value(lo) + f16Value(hi)) / 2
      expect(float32BitsToFloat16Bits(bitsOf(mid))).toBe(lo % 2 === 0 ? lo : hi)
    }
    expect(float32BitsToFloat16Bits(bitsOf(65520))).toBe(0x7c00) // ties to even → infinity
    expect(float32BitsToFloat16Bits(bitsOf(65519.99))).toBe(0x7bff)
    expect(float32BitsToBfloat16Bits(bitsOf(1 + 2 ** -8))).toBe(0x3f80) // tie, even is 1.0
    expect(float32BitsToBfloat16Bits(bitsOf(1 + 3 * 2 ** -8))).toBe(0x3f82) // tie, even is up
  })

  it('keeps NaN a NaN and the sign of zero and infinity', () => {
    expect(float32BitsToFloat16Bits(0x7fc00000) & 0x7e00).toBe(0x7e00)
    expect(float32BitsToFloat16Bits(0x7f800001) & 0x7c00).toBe(0x7c00)
    expect(float32BitsToFloat16Bits(0x7f800001) & 0x3ff).not.toBe(0)
    expect(float32BitsToBfloat16Bits(0x7f800001) & 0x7f).not.toBe(0)
    expect(float32BitsToFloat16Bits(0x80000000)).toBe(0x8000)
    expect(float32BitsToBfloat16Bits(0xff800000)).toBe(0xff80)
  })

  // PyTorch as a second, independent opinion (Debian's python3-torch; CI may not have it).
  const torchPython = '/usr/bin/python3'
  const hasTorch =
    existsSync(torchPython) &&
    spawnSync(torchPython, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0
  it.skipIf(!hasTorch)('agrees bit for bit with PyTorch on 100,000 random float32 values', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tw-dtypes-'))
    try {
      const next = seededUniform(11)
      const bits = new Uint32Array(100_000)
      for (let i = 0; i < bits.length; i++) {
        bits[i] = randomFloat32Bits(next)
        if ((bits[i]! & 0x7fffffff) > 0x7f800000) bits[i] = 0 // NaN payloads differ by design
      }
      writeFileSync(path.join(dir, 'in.bin'), new Uint8Array(bits.buffer))
      const script = [
        'import torch, sys',
        'd = sys.argv[1]',
        "x = torch.frombuffer(bytearray(open(d + '/in.bin', 'rb').read()), dtype=torch.float32)",
        "open(d + '/f16.bin', 'wb').write(x.to(torch.float16).view(torch.int16).numpy().tobytes())",
        "open(d + '/bf16.bin', 'wb').write(x.to(torch.bfloat16).view(torch.int16).numpy().tobytes())"
      ].join('\n')
      const run = spawnSync(torchPython, ['-c', script, dir], { encoding: 'utf8' })
      expect(run.status, run.stderr).toBe(0)
      const u16 = (file: string): Uint16Array =>
        new Uint16Array(Uint8Array.from(readFileSync(path.join(dir, file))).buffer)
      const f16 = u16('f16.bin')
      const bf16 = u16('bf16.bin')
      let mismatches = 0
      for (let i = 0; i < bits.length; i++) {
        if (float32BitsToFloat16Bits(bits[i]!) !== f16[i]) mismatches++
        if (float32BitsToBfloat16Bits(bits[i]!) !== bf16[i]) mismatches++
      }
      expect(mismatches).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  if (!hasTorch) console.log('skipped: PyTorch cross-check (no torch in /usr/bin/python3)')
})
