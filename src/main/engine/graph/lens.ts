/**
 * The two small per-lens graphs. They live in the lens's own sessions so that switching lens never
 * touches the base session, and so large lens weights (d×d per patched layer) are not fed per call.
 */
import { GraphBuilder, encodeModel } from './builder'

/**
 * activations (B, d) → patch_vectors (B, Np, d), vector l = a·W_l + b_l. `weights` is (Np, d, d)
 * with W_l[i][j] the weight from input i to output j; `bias` is (Np, d). A single (d, d) / (d)
 * pair is one projection shared by every patched block: stored once, its vector repeated.
 */
export function buildProjection(
  d: number,
  np: number,
  weights: Float32Array,
  bias: Float32Array
): Uint8Array {
  const g = new GraphBuilder()
  g.input('activations', 'float32', ['B', d])
  if (np > 1 && weights.length === d * d && bias.length === d) {
    const w = g.weight('proj.weight', [d, d], weights)
    const b = g.weight('proj.bias', [d], bias)
    const y = g.op('Unsqueeze', [
      g.op('Add', [g.op('MatMul', ['activations', w]), b]),
      g.constI64([1])
    ])
    const shape = g.op(
      'Concat',
      [
        g.op('Slice', [g.op('Shape', ['activations']), g.constI64([0]), g.constI64([1])]),
        g.constI64([np, d])
      ],
      { axis: 0 }
    )
    g.opTo('Expand', [y, shape], ['patch_vectors'])
    g.output('patch_vectors', 'float32', ['B', np, d])
    return encodeModel(g.toGraph('lens_projection'), 'talkative-workbench')
  }
  // (Np, d, d) → (d, Np·d) so one MatMul produces every layer's vector.
  const wide = new Float32Array(d * np * d)
  for (let l = 0; l < np; l++) {
    for (let i = 0; i < d; i++) {
      wide.set(weights.subarray((l * d + i) * d, (l * d + i + 1) * d), i * np * d + l * d)
    }
  }
  const w = g.weight('proj.weight', [d, np * d], wide)
  const b = g.weight('proj.bias', [np * d], bias)
  const y = g.op('Add', [g.op('MatMul', ['activations', w]), b])
  g.opTo('Reshape', [y, g.constI64([0, np, d])], ['patch_vectors'])
  g.output('patch_vectors', 'float32', ['B', np, d])
  return encodeModel(g.toGraph('lens_projection'), 'talkative-workbench')
}

/**
 * hidden (B, d), target (B, d) → recon (B, d) = hidden·P + p (identity without a projection),
 * mse (B) = mean over d of (recon − target)².
 */
export function buildEncoderHead(
  d: number,
  projection?: { weight: Float32Array; bias: Float32Array }
): Uint8Array {
  const g = new GraphBuilder()
  g.input('hidden', 'float32', ['B', d])
  g.input('target', 'float32', ['B', d])
  if (projection) {
    const w = g.weight('head.weight', [d, d], projection.weight)
    const b = g.weight('head.bias', [d], projection.bias)
    g.opTo('Add', [g.op('MatMul', ['hidden', w]), b], ['recon'])
  } else {
    g.opTo('Identity', ['hidden'], ['recon'])
  }
  const diff = g.op('Sub', ['recon', 'target'])
  g.opTo('ReduceMean', [g.op('Mul', [diff, diff])], ['mse'], { axes: [1], keepdims: 0 })
  g.output('recon', 'float32', ['B', d])
  g.output('mse', 'float32', ['B'])
  return encodeModel(g.toGraph('lens_encoder_head'), 'talkative-workbench')
}
