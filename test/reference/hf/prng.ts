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
  const word = bits[0]
  if ((word & 0x7f800000) === 0x7f800000) return f32[0] // Inf and NaN pass through
  const lsb = (word >>> 16) & 1
  bits[0] = ((word + 0x7fff + lsb) & 0xffff0000) >>> 0
  return f32[0]
}
