/**
 * Random-weight bundles of any size for benchmarks and fuzzing. The tokenizer is a word-level
 * vocabulary of made-up words (w0, w1, …), so any text of those words maps 1:1 to ids.
 */
import path from 'node:path'
import { promises as fs } from 'node:fs'
import { randomTransformer } from './graph/random-weights'
import { BASE_GRAPH_VERSION } from './graph/transformer'
import { Rng } from './random'
import { writeBundle, type LensSpec } from './bundle/write'
import { wordLevelTokenizer } from './demo/tokenizer'

export interface SyntheticSpec {
  hiddenSize: number
  layers: number
  heads: number
  vocabSize: number
  /** Explanation length T. */
  explanationTokens: number
  /** Decoder layers patched (Np). */
  patchLayers: number
  ffnSize?: number
  maxPositions?: number
  /** Lens layers; one lens per entry (default: the middle layer). */
  lensLayers?: number[]
  decoderPromptRows?: number
  encoderPromptRows?: number
  /** Adds a donor model and a lens that reads its activations. */
  donor?: boolean
  addCurrentToken?: boolean
  seed?: number
  externalData?: boolean
}

export const SPECIAL_TOKENS = ['<pad>', '<bos>', '<eos>', '<unk>'] as const

/** Text of `n` synthetic words (the tokenizer adds BOS, so n + 1 tokens). */
export function syntheticText(n: number, vocabSize: number, seed = 1): string {
  const rng = new Rng(seed)
  const words: string[] = []
  for (let i = 0; i < n; i++) words.push(`w${rng.int(vocabSize - SPECIAL_TOKENS.length)}`)
  return words.join(' ')
}

export async function generateSyntheticBundle(dir: string, spec: SyntheticSpec): Promise<string> {
  const seed = spec.seed ?? 7
  const rng = new Rng(seed ^ 0x5eed)
  const d = spec.hiddenSize
  const dims = {
    hiddenSize: d,
    layers: spec.layers,
    heads: spec.heads,
    vocabSize: spec.vocabSize,
    ffnSize: spec.ffnSize ?? 4 * d,
    maxPositions: spec.maxPositions ?? 1024
  }
  const words = Array.from({ length: spec.vocabSize - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)
  const { tokenizer, tokenizerConfig } = wordLevelTokenizer([...SPECIAL_TOKENS], words)
  const layersFor = spec.lensLayers ?? [Math.floor(spec.layers / 2)]
  const np = spec.patchLayers
  const lens = (id: string, layer: number, orig?: string): LensSpec => {
    const weights = new Float32Array(np * d * d)
    for (let l = 0; l < np; l++) for (let i = 0; i < d; i++) weights[(l * d + i) * d + i] = 1
    for (let i = 0; i < weights.length; i++) weights[i]! += rng.normal() * 0.01
    const head = new Float32Array(d * d)
    for (let i = 0; i < d; i++) head[i * d + i] = 1
    return {
      id,
      name: `Synthetic L${layer}${orig ? ` (${orig})` : ''}`,
      layer,
      explanationTokens: spec.explanationTokens,
      orig,
      decoder: {
        prefix: rng.normals((spec.decoderPromptRows ?? 8) * d, 0.02),
        embedPos: Math.floor((spec.decoderPromptRows ?? 8) / 2),
        patchLayers: np,
        weights,
        bias: new Float32Array(np * d)
      },
      encoder: {
        outputLayer: layer,
        prefix: rng.normals((spec.encoderPromptRows ?? 8) * d, 0.02),
        addCurrentToken: spec.addCurrentToken ?? false,
        lastRowAdd: rng.normals(d, 0.02),
        head: { weight: head, bias: new Float32Array(d) }
      }
    }
  }
  const lenses = layersFor.map((l) => lens(`synthetic-l${l}`, l))
  if (spec.donor) lenses.push(lens(`synthetic-donor-l${layersFor[0]}`, layersFor[0]!, 'donor'))
  await writeBundle(dir, {
    group: { id: 'synthetic', name: `Synthetic d${d} L${spec.layers} V${spec.vocabSize}` },
    tokenizer,
    tokenizerConfig,
    bosTokenId: 1,
    nullTokenId: 0,
    base: { id: 'synthetic-base', weights: randomTransformer(dims, seed) },
    donors: spec.donor ? [{ id: 'donor', weights: randomTransformer(dims, seed + 1) }] : [],
    lenses,
    externalData: spec.externalData ?? true
  })
  // Written last: a folder without it (or from an older graph builder) is not reused.
  await fs.writeFile(
    path.join(dir, GENERATOR_STAMP),
    JSON.stringify({ baseGraphVersion: BASE_GRAPH_VERSION }) + '\n'
  )
  return path.resolve(dir)
}

const GENERATOR_STAMP = 'generator.json'

/**
 * Whether `dir` holds a generated bundle that can be reused (benchmarks cache them): complete, and
 * written by the current graph builder, so a contract change regenerates it instead of failing.
 */
export async function isBundleDir(dir: string): Promise<boolean> {
  try {
    await fs.access(path.join(dir, 'manifest.json'))
    const stamp = JSON.parse(await fs.readFile(path.join(dir, GENERATOR_STAMP), 'utf8')) as {
      baseGraphVersion?: unknown
    }
    return stamp.baseGraphVersion === BASE_GRAPH_VERSION
  } catch {
    return false
  }
}
