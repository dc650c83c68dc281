/**
 * Deterministic randomness. Sampling uniforms come from a counter-based hash of
 * (seed, position, rollout, step), so a row's sample stream does not depend on which batch, split
 * or device computes it. Weight generation uses a seeded sequential generator.
 */

/** 32-bit finaliser (murmur3 fmix32): a bijection with good avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

function hashWords(words: readonly number[]): number {
  let h = 0x9e3779b9
  for (const w of words) {
    h = fmix32((h ^ fmix32(w >>> 0)) + 0x6a09e667)
  }
  return h
}

/**
 * Uniform in (0, 1) for one sampling step. Strictly inside the interval: u·total never equals
 * 0 (which would pick token 0 regardless of its probability) nor the full mass.
 */
export function sampleUniform(
  seed: number,
  position: number,
  rollout: number,
  step: number
): number {
  return hashUniform([seed, position, rollout, step])
}

/**
 * A uniform in (0, 1) from a tuple of counters: the one hash every sampling stream uses (explanation
 * rollouts above; continuations add a domain word so their streams never coincide with these).
 * 24 bits: exactly representable in float32, so the graph's copy is also strictly inside.
 */
export function hashUniform(words: readonly number[]): number {
  return ((hashWords(words) >>> 8) + 0.5) / 16777216
}

/** Uniforms for rows (position, rollout) × steps, row-major (rows, steps). */
export function uniformsFor(
  seed: number,
  rows: readonly { position: number; rollout: number }[],
  steps: number
): Float32Array {
  const out = new Float32Array(rows.length * steps)
  // A loop, not a per-call closure (engine/explain.ts, "Hot loops"): a closure's optimized code
  // dies with its last instance at a worker's full collections, and is compiled again.
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!
    for (let s = 0; s < steps; s++)
      out[i * steps + s] = sampleUniform(seed, r.position, r.rollout, s)
  }
  return out
}

/** Seeded sequential generator (xorshift128+ style on 32-bit halves) for weights. */
export class Rng {
  #a: number
  #b: number
  #c: number
  #d: number
  #spare: number | null = null

  constructor(seed: number) {
    this.#a = fmix32(seed ^ 0x1234567)
    this.#b = fmix32(this.#a ^ 0x89abcdef)
    this.#c = fmix32(this.#b ^ 0x2545f491)
    this.#d = fmix32(this.#c ^ 0x6c8e9cf5) | 1
  }

  /** xoshiro128** step. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0
    const t = this.#b << 9
    this.#c ^= this.#a
    this.#d ^= this.#b
    this.#b ^= this.#c
    this.#a ^= this.#d
    this.#c ^= t
    this.#d = rotl(this.#d, 11)
    return result
  }

  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296
  }

  int(n: number): number {
    return Math.floor(this.uniform() * n)
  }

  normal(): number {
    if (this.#spare !== null) {
      const s = this.#spare
      this.#spare = null
      return s
    }
    const u = this.uniform()
    const v = this.uniform()
    const r = Math.sqrt(-2 * Math.log(u))
    this.#spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }

  normals(n: number, std = 1): Float32Array {
    const out = new Float32Array(n)
    for (let i = 0; i < n; i++) out[i] = this.normal() * std
    return out
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}
