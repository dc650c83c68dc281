/**
 * Lens conversion against the independent float64 reference of the predecessor's analyzer
 * (test/reference/hf/lens.ts): for each decoder code path the predecessor had (GPT-2, Qwen2,
 * Gemma-2, Gemma-3, Llama-style), seed-style lenses in every configuration the importer accepts —
 * patch every block / n blocks / none (`false`) / `0`, per-layer or single projections,
 * `new_decoder`, encoder output layer k / −1 / −2, current token, special vector, postfix soft
 * prompt — are added to a group whose base is a random Hugging Face checkpoint, analysed by the
 * engine at temperature 0, and every column compared with the reference: identical explanations and
 * logit-lens tokens, 1e-4 relative on MSE, relative RMSE, KL and salience.
 */
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGroup, type LoadedGroup } from '../../src/main/engine'
import { CheckpointError } from '../../src/main/import/errors'
import { addLensCheckpoint } from '../../src/main/import/lens'
import { lensReference, type SeedLens } from '../reference/hf/lens'
import { randomSeedLens, type RandomSeedLensOptions } from '../reference/hf/lensFixtures'
import { hfReference, type HfReferenceModel } from '../reference/hf/model'
import { randomHfModel, type HfDims } from '../reference/hf/random'
import type { HfFamily } from '../reference/hf/types'
import { expectRowsMatch } from '../fixtures/lens/compare'
import { wordId, wordToken, writeHfGroup } from '../fixtures/lens/hfGroup'
import { float32SeedLens, seedLensCheckpoint } from '../fixtures/lens/seedCheckpoint'

const DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, headDim: 8, vocabSize: 61 }
const GPT2_DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, vocabSize: 61 }
const QWEN2_DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, vocabSize: 61 }

let tmp: string
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-lens-conv-'))
})
const groups: LoadedGroup[] = []
afterAll(async () => {
  for (const g of groups) await g.dispose()
  await fs.rm(tmp, { recursive: true, force: true })
})

/** Words w3 w10 …: the tokenizer adds <bos>, so 8 positions. */
const TEXT = 'w3 w10 w7 w22 w15 w40 w2'
const IDS = [1, ...[3, 10, 7, 22, 15, 40, 2].map(wordId)]

interface Variant {
  name: string
  lens: Omit<RandomSeedLensOptions, 'layer'> & { layer?: number }
  /** What the reference runs instead (the predecessor's Llama-style branch patched every block). */
  reference?: Partial<SeedLens['decoder']>
}

const VARIANTS: Variant[] = [
  {
    name: 'patch every block, per-layer projections, current token + special vector',
    lens: { seed: 11, patchAllLayers: true, outputLayer: 1 }
  },
  {
    name: 'patch 2 blocks, new_decoder, encoder output -1, postfix soft prompt',
    lens: {
      seed: 12,
      patchAllLayers: 2,
      newDecoder: true,
      outputLayer: -1,
      postfixIds: [9, 12],
      addCurrentToken: false
    }
  },
  {
    name: 'patch_all_layers false (input only), single projection, output -2, no encoder head',
    lens: {
      seed: 13,
      patchAllLayers: false,
      perLayerProjections: false,
      outputLayer: -2,
      encoderProjection: false,
      specialLastTokenVector: false
    }
  },
  {
    name: 'patch_all_layers 0, single projection, output 0',
    lens: { seed: 14, patchAllLayers: 0, perLayerProjections: false, outputLayer: 0 }
  }
]

interface Family {
  family: HfFamily
  dims: HfDims
  seed: number
  /** Variants (by name prefix) refused on this family, with the field named. */
  refused?: Record<string, string>
  /** Variants the reference runs differently (the predecessor's Llama-style branch). */
  asReference?: Record<string, Partial<SeedLens['decoder']>>
}

const FAMILIES: Family[] = [
  { family: 'gpt2', dims: GPT2_DIMS, seed: 1 },
  { family: 'qwen2', dims: QWEN2_DIMS, seed: 2 },
  { family: 'gemma2', dims: DIMS, seed: 3 },
  {
    family: 'gemma3_text',
    dims: DIMS,
    seed: 4,
    refused: { 'patch_all_layers false': 'config.trainable_components.decoder.patch_all_layers' }
  },
  {
    family: 'llama',
    dims: DIMS,
    seed: 5,
    refused: { 'patch 2 blocks': 'config.trainable_components.decoder.patch_all_layers' },
    // An int patch_all_layers on a Llama-style base: every block is patched.
    asReference: { 'patch_all_layers 0': { patchAllLayers: true } }
  }
]

describe.each(FAMILIES)('$family: imported lenses analyse as the predecessor did', (fam) => {
  const model = randomHfModel(fam.family, fam.dims, { seed: fam.seed })
  const ref: HfReferenceModel = hfReference(model.config, model.tensors)
  let dir: string
  let group: LoadedGroup | undefined
  const imported: { variant: Variant; lens: SeedLens; id: string }[] = []

  beforeAll(async () => {
    dir = await writeHfGroup(path.join(tmp, fam.family), model, {
      baseName: 'test-org/tiny-model'
    })
  })

  it.each(VARIANTS)('imports: $name', async (variant) => {
    const lens = float32SeedLens(
      randomSeedLens(ref, { layer: 1, explanationTokens: 4, ...variant.lens })
    )
    const checkpoint = seedLensCheckpoint(lens, fam.dims.hiddenSize, {
      file: `/runs/${fam.family}/ckpt.pt`
    })
    const id = `v${VARIANTS.indexOf(variant)}`
    const refusedField = Object.entries(fam.refused ?? {}).find(([k]) =>
      variant.name.startsWith(k)
    )?.[1]
    if (refusedField) {
      const err = await addLensCheckpoint(dir, checkpoint, { id }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CheckpointError)
      expect((err as CheckpointError).message).toContain(refusedField)
      await expect(fs.access(path.join(dir, 'lenses', id))).rejects.toThrow()
      return
    }
    const result = await addLensCheckpoint(dir, checkpoint, { id })
    expect(result.lensId).toBe(id)
    expect(result.provenance.patchAllLayers).toBe(lens.decoder.patchAllLayers)
    imported.push({ variant, lens, id })
  })

  it('every imported lens matches the reference column by column', async () => {
    expect(imported.length).toBeGreaterThan(0)
    group = await loadGroup(dir, { provider: 'cpu', threads: 1 })
    groups.push(group)
    expect(group.tokenize(TEXT).ids).toEqual(IDS)
    for (const { variant, lens, id } of imported) {
      const override = Object.entries(fam.asReference ?? {}).find(([k]) =>
        variant.name.startsWith(k)
      )?.[1]
      const refLens: SeedLens = override
        ? { ...lens, decoder: { ...lens.decoder, ...override } }
        : lens
      const want = lensReference({
        base: ref,
        lens: refLens,
        inputIds: IDS,
        nullTokenId: 0,
        logitLensFinalNorm: true,
        currentTokenBeforeSuffix: true
      })
      const result = await group.analyze({
        lensId: id,
        text: TEXT,
        options: { temperature: 0, bestOfK: 1, logitLens: true, salience: true, kl: true }
      })
      expect(result.metadata.status).toBe('completed')
      try {
        expectRowsMatch(result.rows, want, {
          token: wordToken,
          addCurrentToken: lens.encoder.addCurrentToken
        })
      } catch (err) {
        throw new Error(`${variant.name}: ${(err as Error).message}`)
      }
    }
  })
})
