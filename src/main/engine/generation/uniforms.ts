/**
 * Seeded uniforms for in-graph sampling of continuations. Counter-based (the engine's one hash of
 * seed, completion and step), so a completion's tokens depend only on the seed and its index: the
 * same whatever n or batch it ran in.
 */
import { hashUniform } from '../random'

/** Separates these streams from other users of the same seed (e.g. explanation sampling). */
const GENERATION_DOMAIN = 0x67656e31 // 'gen1'

/** A uniform in (0, 1) with 24 bits, exactly representable in float32. */
export function uniformAt(seed: number, completion: number, step: number): number {
  return hashUniform([GENERATION_DOMAIN, seed >>> 0, completion, step])
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
