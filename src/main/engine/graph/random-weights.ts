import { Rng } from '../random'
import type { LayerWeights, TransformerDims, TransformerWeights } from './transformer'

function filled(n: number, v: number): Float32Array {
  return new Float32Array(n).fill(v)
}

/** GPT-2-style random initialisation (std 0.02, residual projections scaled by depth). */
export function randomTransformer(dims: TransformerDims, seed: number): TransformerWeights {
  const rng = new Rng(seed)
  const d = dims.hiddenSize
  const f = dims.ffnSize
  const resid = 0.02 / Math.sqrt(2 * dims.layers)
  const layers: LayerWeights[] = []
  for (let l = 0; l < dims.layers; l++) {
    layers.push({
      ln1Gain: filled(d, 1),
      ln1Bias: new Float32Array(d),
      qkv: rng.normals(d * 3 * d, 0.02),
      qkvBias: new Float32Array(3 * d),
      out: rng.normals(d * d, resid),
      outBias: new Float32Array(d),
      ln2Gain: filled(d, 1),
      ln2Bias: new Float32Array(d),
      up: rng.normals(d * f, 0.02),
      upBias: new Float32Array(f),
      down: rng.normals(f * d, resid),
      downBias: new Float32Array(d)
    })
  }
  const tokenEmbedding = rng.normals(dims.vocabSize * d, 0.02)
  // Untied but correlated with the input table, so logits are not flat noise.
  const unembedding = new Float32Array(d * dims.vocabSize)
  for (let v = 0; v < dims.vocabSize; v++) {
    for (let i = 0; i < d; i++)
      unembedding[i * dims.vocabSize + v] = tokenEmbedding[v * d + i]! * 20
  }
  return {
    dims,
    embeddingScale: 1,
    tokenEmbedding,
    positionEmbedding: rng.normals(dims.maxPositions * d, 0.01),
    layers,
    finalGain: filled(d, 1),
    finalBias: new Float32Array(d),
    unembedding
  }
}
