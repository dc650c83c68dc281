/**
 * The canonical weights of an ArchSpec: the base graph's initializers, by name, in the layout the
 * graph multiplies with (x·W, so W is (in, out)). Importers map a checkpoint onto this list
 * (src/main/import/hf/weights.ts); the demo and synthetic generators fill it from memory.
 *
 * Layout choices, so each layer runs few, large GEMMs:
 *   qkv (d, (H + 2·KV)·dh): columns [q heads | k heads | v heads], head h in its dh-wide block
 *   gateUp (d, 2f): columns [gate | up] for gated MLPs; plain MLPs have up (d, f)
 *   norm gains of `gemma-rmsnorm` are stored as 1 + w (float32), so every RMS norm is x̂·gain
 *   tied heads store no unembedding: the graph unembeds with the (V, d) token table (Gemm transB)
 */
import type { ArchSpec } from './spec'

/** Per-layer parts, named `l{layer}.{part}` in the graph. */
export type LayerPart =
  | 'ln1Gain'
  | 'ln1Bias'
  | 'qkv'
  | 'qkvBias'
  | 'qNorm'
  | 'kNorm'
  | 'out'
  | 'outBias'
  | 'postAttnNorm'
  | 'ln2Gain'
  | 'ln2Bias'
  | 'up'
  | 'upBias'
  | 'gateUp'
  | 'gateUpBias'
  | 'down'
  | 'downBias'
  | 'postFfnNorm'

export type GlobalPart = 'tok_emb' | 'pos_emb' | 'lnf.gain' | 'lnf.bias' | 'unembed'

export interface WeightInfo {
  /** Initializer name in the graph. */
  name: string
  dims: number[]
  /** Which part: a global one, or a layer's. */
  part: GlobalPart | LayerPart
  /** The layer for per-layer parts. */
  layer?: number
}

export function layerWeightName(layer: number, part: LayerPart): string {
  return `l${layer}.${part}`
}

/** The parts one layer of this spec has, with their shapes, in graph order. */
export function layerParts(spec: ArchSpec): [LayerPart, number[]][] {
  const d = spec.hiddenSize
  const f = spec.ffnSize
  const dh = spec.headDim
  const qWidth = spec.heads * dh
  const qkvWidth = (spec.heads + 2 * spec.kvHeads) * dh
  const layerNorm = spec.norm.kind === 'layernorm'
  const parts: [LayerPart, number[]][] = [['ln1Gain', [d]]]
  if (layerNorm) parts.push(['ln1Bias', [d]])
  parts.push(['qkv', [d, qkvWidth]])
  if (spec.attention.qkvBias) parts.push(['qkvBias', [qkvWidth]])
  if (spec.attention.qkNorm) parts.push(['qNorm', [dh]], ['kNorm', [dh]])
  parts.push(['out', [qWidth, d]])
  if (spec.attention.outBias) parts.push(['outBias', [d]])
  if (spec.sandwichNorms) parts.push(['postAttnNorm', [d]])
  parts.push(['ln2Gain', [d]])
  if (layerNorm) parts.push(['ln2Bias', [d]])
  if (spec.mlp.kind === 'gated') {
    parts.push(['gateUp', [d, 2 * f]])
    if (spec.mlp.bias) parts.push(['gateUpBias', [2 * f]])
  } else {
    parts.push(['up', [d, f]])
    if (spec.mlp.bias) parts.push(['upBias', [f]])
  }
  parts.push(['down', [f, d]])
  if (spec.mlp.bias) parts.push(['downBias', [d]])
  if (spec.sandwichNorms) parts.push(['postFfnNorm', [d]])
  return parts
}

/** Every initializer the base graph of `spec` reads, in the order they are stored. */
export function archWeights(spec: ArchSpec): WeightInfo[] {
  const d = spec.hiddenSize
  const out: WeightInfo[] = [{ name: 'tok_emb', dims: [spec.vocabSize, d], part: 'tok_emb' }]
  if (spec.positions.kind === 'learned') {
    out.push({ name: 'pos_emb', dims: [spec.maxPositions, d], part: 'pos_emb' })
  }
  const parts = layerParts(spec)
  for (let l = 0; l < spec.layers; l++) {
    for (const [part, dims] of parts) {
      out.push({ name: layerWeightName(l, part), dims, part, layer: l })
    }
  }
  out.push({ name: 'lnf.gain', dims: [d], part: 'lnf.gain' })
  if (spec.norm.kind === 'layernorm') out.push({ name: 'lnf.bias', dims: [d], part: 'lnf.bias' })
  if (!spec.tiedEmbeddings) {
    out.push({ name: 'unembed', dims: [d, spec.vocabSize], part: 'unembed' })
  }
  return out
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1)
}

/** Parameters of the spec's graph (tied heads counted once). */
export function parameterCount(spec: ArchSpec): number {
  return archWeights(spec).reduce((n, w) => n + elementCount(w.dims), 0)
}
