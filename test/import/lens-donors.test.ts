/**
 * Donors: a lens trained on another model's activations (`orig_model_name`, e.g. an `-it` model for
 * a `-pt` base) reads them from a donor in its group. Without `--orig` the import is refused with a
 * message asking for it; with a full Hugging Face folder the donor is that model; with a PEFT LoRA
 * adapter it is the adapter merged into a copy of its base. The merged donor is checked end to end
 * against an independent float64 merge (W + (alpha / r)·B·A) run through the reference analyzer.
 */
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGroup, openBundle, type LoadedGroup } from '../../src/main/engine'
import { CheckpointError } from '../../src/main/import/errors'
import { addLensCheckpoint } from '../../src/main/import/lens'
import { lensReference, type SeedLens } from '../reference/hf/lens'
import { randomSeedLens } from '../reference/hf/lensFixtures'
import { hfReference } from '../reference/hf/model'
import { randomHfModel, type HfDims, type RandomHfModel } from '../reference/hf/random'
import type { HfTensors } from '../reference/hf/types'
import { expectRowsMatch } from '../fixtures/lens/compare'
import { wordId, wordToken, writeHfGroup } from '../fixtures/lens/hfGroup'
import { float32SeedLens, seedLensCheckpoint } from '../fixtures/lens/seedCheckpoint'
import { writeHfFolder } from '../fixtures/hf/writeHfFolder'
import { randomLora, writePeftAdapter, type FixtureLora } from '../fixtures/hf/writePeftAdapter'

const DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, vocabSize: 61 }
const TEXT = 'w3 w10 w7 w22 w15 w40 w2'
const IDS = [1, ...[3, 10, 7, 22, 15, 40, 2].map(wordId)]

let tmp: string
const loaded: LoadedGroup[] = []
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-lens-donor-'))
})
afterAll(async () => {
  for (const g of loaded) await g.dispose()
  await fs.rm(tmp, { recursive: true, force: true })
})

const base = randomHfModel('qwen2', DIMS, { seed: 31 })
const baseRef = hfReference(base.config, base.tensors)

function lensFor(seed: number): SeedLens {
  return float32SeedLens(
    randomSeedLens(baseRef, { seed, layer: 1, explanationTokens: 4, patchAllLayers: 2 })
  )
}

async function analyseAndCompare(
  dir: string,
  lensId: string,
  lens: SeedLens,
  orig: ReturnType<typeof hfReference>
): Promise<void> {
  const group = await loadGroup(dir, { provider: 'cpu', threads: 1 })
  loaded.push(group)
  const result = await group.analyze({
    lensId,
    text: TEXT,
    options: { temperature: 0, bestOfK: 1, logitLens: true }
  })
  const want = lensReference({
    base: baseRef,
    orig,
    lens,
    inputIds: IDS,
    nullTokenId: 0,
    logitLensFinalNorm: true,
    currentTokenBeforeSuffix: true
  })
  expectRowsMatch(result.rows, want, { token: wordToken, addCurrentToken: true })
}

/** PEFT's merge, written out in float64: W + (alpha / r)·B·A (B: out × r, A: r × in). */
function referenceMerge(
  model: RandomHfModel,
  loras: Record<string, FixtureLora>,
  scale: number
): HfTensors {
  const tensors: HfTensors = new Map(
    [...model.tensors].map(([n, t]) => [
      n,
      { shape: [...t.shape], data: Float32Array.from(t.data) }
    ])
  )
  for (const [module, l] of Object.entries(loras)) {
    const t = tensors.get(`${module}.weight`)!
    for (let o = 0; o < l.outDim; o++) {
      for (let i = 0; i < l.inDim; i++) {
        let s = 0
        for (let k = 0; k < l.rank; k++) s += l.b[o * l.rank + k]! * l.a[k * l.inDim + i]!
        t.data[o * l.inDim + i] = t.data[o * l.inDim + i]! + scale * s
      }
    }
  }
  return tensors
}

describe('lenses that read another model’s activations', () => {
  let dir: string
  let baseFolder: string
  beforeAll(async () => {
    dir = await writeHfGroup(path.join(tmp, 'group'), base, { baseName: 'test-org/tiny-model' })
    baseFolder = (await writeHfFolder(path.join(tmp, 'tiny-model'), base)).dir
  })

  it('is refused without --orig, naming orig_model_name and asking for the donor', async () => {
    const checkpoint = seedLensCheckpoint(lensFor(41), 32, {
      origModelName: 'test-org/tiny-model-it'
    })
    const err = await addLensCheckpoint(dir, checkpoint, { id: 'needs-donor' }).catch(
      (e: unknown) => e
    )
    expect(err).toBeInstanceOf(CheckpointError)
    expect((err as CheckpointError).problem).toBe('donor_required')
    expect((err as CheckpointError).message).toContain('config.orig_model_name')
    expect((err as CheckpointError).message).toContain('test-org/tiny-model-it')
    expect((err as CheckpointError).message).toContain('--orig')
    const manifest = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8'))
    expect(manifest.lenses).toEqual([])
  })

  it('--orig with a Hugging Face folder: the donor supplies activations, KL and logit lens', async () => {
    const donor = randomHfModel('qwen2', DIMS, { seed: 32 })
    const donorDir = (
      await writeHfFolder(path.join(tmp, 'tiny-model-it'), donor, { dtype: 'BF16' })
    ).dir
    // The BF16 file holds bfloat16-rounded weights: the reference reads the same file's numbers.
    const { openHfFolder, readTensor } = await import('../../src/main/import/hf')
    const opened = await openHfFolder(donorDir)
    const stored: HfTensors = new Map()
    for (const [name, t] of donor.tensors) {
      stored.set(name, { shape: [...t.shape], data: await readTensor(opened, name) })
    }
    const lens = lensFor(42)
    const result = await addLensCheckpoint(
      dir,
      seedLensCheckpoint(lens, 32, { origModelName: 'test-org/tiny-model-it' }),
      { id: 'with-donor', orig: donorDir }
    )
    expect(result.orig).toBe('tiny-model-it')
    expect(result.donor?.file).toBe('tiny-model-it.onnx')
    await analyseAndCompare(dir, 'with-donor', lens, hfReference(donor.config, stored))

    // A second lens trained on the same orig model finds the donor by name: no --orig needed.
    const again = await addLensCheckpoint(
      dir,
      seedLensCheckpoint(lensFor(43), 32, { origModelName: 'test-org/tiny-model-it' }),
      { id: 'same-donor' }
    )
    expect(again.orig).toBe('tiny-model-it')
    expect(again.donor).toBeNull()
    const summary = await openBundle(dir)
    expect(summary.lenses.map((l) => [l.id, l.origModel])).toEqual([
      ['with-donor', 'tiny-model-it'],
      ['same-donor', 'tiny-model-it']
    ])
  })

  it('--orig with a PEFT adapter: merged into a copy of its base, as a float64 reference merge', async () => {
    const t = (name: string): { shape: number[] } => base.tensors.get(name)!
    const loras: Record<string, FixtureLora> = {}
    let seed = 50
    for (let l = 0; l < DIMS.layers; l++) {
      for (const m of ['self_attn.q_proj', 'self_attn.v_proj', 'mlp.down_proj']) {
        const module = `model.layers.${l}.${m}`
        const [outDim, inDim] = t(`${module}.weight`).shape as [number, number]
        loras[module] = randomLora(inDim, outDim, 4, seed++)
      }
    }
    const adapterDir = await writePeftAdapter(path.join(tmp, 'tiny-model-lora'), {
      loras,
      config: { r: 4, lora_alpha: 16, base_model_name_or_path: 'test-org/tiny-model' }
    })
    const lens = lensFor(44)
    const checkpoint = seedLensCheckpoint(lens, 32, { origModelName: 'test-org/tiny-model-lora' })

    const missingBase = await addLensCheckpoint(dir, checkpoint, {
      id: 'lora',
      orig: adapterDir
    }).catch((e: unknown) => e)
    expect((missingBase as CheckpointError).problem).toBe('donor_required')
    expect((missingBase as CheckpointError).message).toContain('--orig-base')

    const result = await addLensCheckpoint(dir, checkpoint, {
      id: 'lora',
      orig: adapterDir,
      origBase: baseFolder
    })
    expect(result.orig).toBe('tiny-model-lora')
    const merged = referenceMerge(base, loras, 16 / 4)
    await analyseAndCompare(dir, 'lora', lens, hfReference(base.config, merged))
  })
})
