/**
 * Seeded uniforms for in-graph sampling. Counter-based (a hash of seed, completion and step), so a
 * completion's tokens depend only on the seed and its index: the same whatever n or batch it ran in.
 */

/** Separates these streams from other users of the same seed (e.g. explanation sampling). */
const GENERATION_DOMAIN = 0x67656e31 // 'gen1'

/** A 32-bit avalanche mix (xorshift-multiply, as in MurmurHash3's finaliser). */
function mix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

function hash3(a: number, b: number, c: number): number {
  let h = mix32(GENERATION_DOMAIN ^ a)
  h = mix32(h ^ Math.imul(b + 1, 0x9e3779b1))
  h = mix32(h ^ Math.imul(c + 1, 0x7feb352d))
  return h
}

/** A uniform in [0, 1) with 24 bits, exactly representable in float32. */
export function uniformAt(seed: number, completion: number, step: number): number {
  return (hash3(seed >>> 0, completion, step) >>> 8) / 0x1000000
}

/** (n, steps) uniforms, row-major: row i is completion `firstCompletion + i`. */
export function generationUniforms(
  seed: number,
  n: number,
  steps: number,
  firstCompletion = 0
): Float32Array {
  const out = new Float32Array(n * steps)
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < steps; t++) out[i * steps + t] = uniformAt(seed, firstCompletion + i, t)
  }
  return out
}
