/**
 * The checkpoints and inputs the PyTorch cross-check runs: one per family, each switching on the
 * features that family has (GQA, explicit head_dim, biases, q/k norms, rope scaling, sliding
 * windows, softcaps, Gemma-3 layer patterns and multimodal layouts). Shared by the test and by
 * generate-expected.ts, which writes expected.json from the PyTorch script.
 */
import { createPrng } from '../prng'
import { randomHfModel, type HfDims, type RandomHfModelOptions } from '../random'
import type { HfFamily } from '../types'
import type { TorchCase } from './torchReference'

export interface TorchFixture {
  name: string
  family: HfFamily
  dims: HfDims
  opts: RandomHfModelOptions
}

const SMALL = { hiddenSize: 16, layers: 2, heads: 4, vocabSize: 48, maxPositions: 32 }

export const TORCH_FIXTURES: TorchFixture[] = [
  { name: 'gpt2-prefixed-tied', family: 'gpt2', dims: SMALL, opts: { seed: 11 } },
  {
    name: 'gpt2-original-untied-inverse-layer-scale',
    family: 'gpt2',
    dims: { ...SMALL, intermediateSize: 24 },
    opts: {
      seed: 12,
      gpt2Layout: 'original',
      tieWordEmbeddings: false,
      gpt2ScaleByInverseLayerIdx: true
    }
  },
  {
    name: 'llama-gqa-headdim-llama3-biases',
    family: 'llama',
    dims: { ...SMALL, kvHeads: 2, headDim: 6, layers: 3 },
    opts: {
      seed: 13,
      attentionBias: true,
      mlpBias: true,
      ropeTheta: 500,
      ropeScaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 16
      }
    }
  },
  {
    name: 'mistral-sliding3-linear-rope-tied',
    family: 'mistral',
    dims: { ...SMALL, kvHeads: 2 },
    opts: {
      seed: 14,
      slidingWindow: 3,
      tieWordEmbeddings: true,
      ropeScaling: { rope_type: 'linear', factor: 2 }
    }
  },
  {
    name: 'qwen2-biases-sliding-upper-layers',
    family: 'qwen2',
    dims: { ...SMALL, kvHeads: 2 },
    opts: { seed: 15, useSlidingWindow: true, slidingWindow: 3, maxWindowLayers: 1 }
  },
  {
    name: 'qwen3-qknorm-headdim-tied',
    family: 'qwen3',
    dims: { ...SMALL, kvHeads: 1, headDim: 12 },
    opts: { seed: 16, tieWordEmbeddings: true, ropeTheta: 1000 }
  },
  {
    name: 'gemma2-softcaps-sliding3',
    family: 'gemma2',
    dims: { ...SMALL, kvHeads: 2, layers: 3 },
    opts: {
      seed: 17,
      slidingWindow: 3,
      attnLogitSoftcapping: 1.5,
      finalLogitSoftcapping: 2.5,
      queryPreAttnScalar: 7
    }
  },
  {
    name: 'gemma3-text-layer-types-local-base-linear',
    family: 'gemma3_text',
    dims: { ...SMALL, kvHeads: 2, headDim: 8, layers: 3 },
    opts: {
      seed: 18,
      slidingWindow: 3,
      layerTypes: ['sliding_attention', 'full_attention', 'sliding_attention'],
      ropeTheta: 10000,
      ropeLocalBaseFreq: 100,
      ropeScaling: { rope_type: 'linear', factor: 4 },
      queryPreAttnScalar: 20,
      finalLogitSoftcapping: 3
    }
  },
  {
    name: 'gemma3-multimodal-language_model.model',
    family: 'gemma3',
    dims: { ...SMALL, kvHeads: 1, layers: 3 },
    opts: { seed: 19, slidingWindow: 4, slidingWindowPattern: 3 }
  },
  {
    name: 'gemma3-multimodal-model.language_model-untied',
    family: 'gemma3',
    dims: SMALL,
    opts: {
      seed: 20,
      gemma3Layout: 'model.language_model',
      tieWordEmbeddings: false,
      gemma3SparseTextConfig: false
    }
  }
]

export function buildFixture(fixture: TorchFixture): ReturnType<typeof randomHfModel> {
  return randomHfModel(fixture.family, fixture.dims, fixture.opts)
}

/**
 * Three cases per fixture: token ids with a greedy continuation; ids at shifted positions; and
 * rows given as embeddings with a decoder-style patch before blocks 0 and 1 and a KL-style
 * replacement after block 0.
 */
export function fixtureCases(fixture: TorchFixture): TorchCase[] {
  const prng = createPrng(1000 + (fixture.opts.seed ?? 0))
  const { vocabSize, hiddenSize: d } = fixture.dims
  const ids = Array.from({ length: 8 }, () => Math.floor(prng.uniform() * vocabSize))
  const vector = (): number[] => Array.from({ length: d }, () => prng.normal())
  const embeds = Array.from({ length: 6 }, vector)
  return [
    { input_ids: ids, greedy: 4 },
    { input_ids: ids.slice(0, 6), positions: [3, 4, 5, 6, 7, 9] },
    {
      inputs_embeds: embeds,
      patches: [
        { layer: 0, row: 2, vector: vector() },
        { layer: 1, row: 2, vector: vector() }
      ],
      replace: { layer: 0, position: 4, vector: vector() }
    }
  ]
}
