/**
 * Rotary inverse frequencies as Hugging Face's modeling_rope_utils.py computes them (default,
 * linear, llama3), returned as float32 values: HF keeps `inv_freq` as a float32 buffer and forms
 * freqs = inv_freq · position in float32, then cos/sin (the graph does the same with these values).
 * Intermediate steps here run in float64 and round once at the end; HF's own float32 pow can differ
 * by an ulp, a phase error far below the 1e-4 the tests hold the graph to.
 */
import type { Rope } from './spec'

export function ropeInverseFrequencies(rope: Rope, headDim: number): Float32Array {
  const half = headDim / 2
  const out = new Float32Array(half)
  for (let i = 0; i < half; i++) {
    // arange(0, dim, 2).float() / dim in float32, then base ** that.
    const exponent = Math.fround((2 * i) / headDim)
    let inv = 1 / Math.pow(rope.theta, exponent)
    const s = rope.scaling
    if (s?.type === 'linear') {
      inv = inv / s.factor
    } else if (s?.type === 'llama3') {
      const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor
      const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor
      const wavelen = (2 * Math.PI) / inv
      // Long wavelengths are divided by the factor, short ones kept, the band between blended.
      if (wavelen > lowFreqWavelen) {
        inv = inv / s.factor
      } else if (wavelen >= highFreqWavelen) {
        const smooth =
          (s.originalMaxPositions / wavelen - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor)
        inv = (1 - smooth) * (inv / s.factor) + smooth * inv
      }
    }
    out[i] = inv
  }
  return out
}
