/**
 * Seeded random numbers for test checkpoints: mulberry32 for uniforms, Box–Muller for normals.
 * Deterministic across platforms (32-bit integer arithmetic only), so a seed names one checkpoint.
 */
export interface Prng {
  /** Uniform in [0, 1). */
  uniform(): number
  /** Standard normal. */
  normal(): number
}

export function createPrng(seed: number): Prng {
  let state = seed >>> 0
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  let spare: number | undefined
  const normal = (): number => {
    if (spare !== undefined) {
      const value = spare
      spare = undefined
      return value
    }
    // 1 - u keeps the logarithm's argument in (0, 1].
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()))
    const angle = 2 * Math.PI * uniform()
    spare = radius * Math.sin(angle)
    return radius * Math.cos(angle)
  }
  return { uniform, normal }
}

/**
 * Rounds a number to the nearest bfloat16 value (round to nearest, ties to even), returned as a
 * float32-representable number. Weights rounded this way survive a BF16 checkpoint unchanged.
 */
export function roundToBfloat16(value: number): number {
  const f32 = new Float32Array([value])
  const bits = new Uint32Array(f32.buffer)
  const word = bits[0]!
  if ((word & 0x7f800000) === 0x7f800000) return f32[0]! // Inf and NaN pass through
  const lsb = (word >>> 16) & 1
  bits[0] = ((word + 0x7fff + lsb) & 0xffff0000) >>> 0
  return f32[0]!
}

/** Rounds a number to the nearest IEEE half-precision value (ties to even; overflow → ±Inf). */
export function roundToFloat16(value: number): number {
  return float16BitsToNumber(float16Bits(value))
}

/** The IEEE half-precision bit pattern nearest to `value` (round to nearest, ties to even). */
export function float16Bits(value: number): number {
  const f32 = new Float32Array([value])
  const word = new Uint32Array(f32.buffer)[0]!
  const sign = (word >>> 16) & 0x8000
  const exponent = (word >>> 23) & 0xff
  const mantissa = word & 0x7fffff
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0) // Inf / NaN
  const unbiased = exponent - 127
  if (unbiased > 15) return sign | 0x7c00 // overflow
  if (unbiased >= -14) {
    // Normal half: keep 10 mantissa bits, round the 13 dropped ones to nearest even.
    let half = ((unbiased + 15) << 10) | (mantissa >>> 13)
    const rest = mantissa & 0x1fff
    if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half += 1 // may carry into the exponent (fine)
    return sign | half
  }
  if (unbiased < -25) return sign // underflow to ±0
  // Subnormal half: value = m · 2^-24 with m = round(full mantissa · 2^(unbiased + 24 − 23)).
  const full = mantissa | 0x800000
  const shift = -unbiased - 1 // 14..24 → bits to drop from the 24-bit significand, minus 10 kept
  const kept = full >>> shift
  const dropped = full - (kept << shift)
  const halfway = 1 << (shift - 1)
  let m = kept
  if (dropped > halfway || (dropped === halfway && (m & 1) === 1)) m += 1
  return sign | m
}

/** The number a half-precision bit pattern holds. */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >>> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15)
}

/** bfloat16 bit patterns of float32 data (round to nearest even), for writing BF16 safetensors. */
export function toBfloat16Bits(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length)
  const words = new Uint32Array(Float32Array.from(data, roundToBfloat16).buffer)
  for (let i = 0; i < data.length; i++) out[i] = words[i]! >>> 16
  return out
}

/** IEEE half-precision bit patterns of float32 data, for writing F16 safetensors. */
export function toFloat16Bits(data: Float32Array): Uint16Array {
  return Uint16Array.from(data, (x) => float16Bits(x))
}
