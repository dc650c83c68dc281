/**
 * Writes bundle folders and base models: whole groups from weights held in memory (demo and
 * synthetic generators), and base models streamed tensor by tensor into external data (importers).
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import {
  SOFTCAP_ROLES,
  buildBaseModel,
  planBaseModel,
  preNormGpt,
  type ArchWeightMap,
  type BaseModelLayout,
  type LaidOutWeight,
  type TransformerWeights
} from '../graph/transformer'
import { buildEncoderHead, buildProjection } from '../graph/lens'
import type { ArchSpec } from '../arch/spec'
import { parameterCount } from '../arch/weights'
import {
  LENS_SCHEMA_VERSION,
  SCHEMA_VERSION,
  type LensManifest,
  type LensProvenance,
  type ManifestFile,
  type ModelRef
} from './manifest'

export interface LensSpec {
  id: string
  name: string
  description?: string
  layer: number
  explanationTokens: number
  orig?: string
  decoder: {
    /** (P, d) */
    prefix: Float32Array
    embedPos: number
    patchLayers: number
    /** (Np, d, d) and (Np, d) with W[l][i][j] from input i to output j; or one (d, d) / (d) pair shared by every block. */
    weights: Float32Array
    bias: Float32Array
  }
  encoder: {
    /** Block k whose output is read; −1 = the residual entering block 0. */
    outputLayer: number
    prefix: Float32Array
    suffix?: Float32Array
    addCurrentToken: boolean
    lastRowAdd?: Float32Array
    /** recon = hidden·weight + bias, weight (d, d) from input i to output j. */
    head?: { weight: Float32Array; bias: Float32Array }
  }
  provenance?: LensProvenance
}

/** A model to write: the pre-norm GPT's weights, or any ArchSpec with its canonical weights. */
export type ModelSpec =
  | { id: string; name?: string; weights: TransformerWeights }
  | { id: string; name?: string; spec: ArchSpec; archWeights: ArchWeightMap }

export interface GroupSpec {
  group: { id: string; name: string; description?: string }
  tokenizer: object
  tokenizerConfig: object
  bosTokenId: number
  nullTokenId: number
  base: ModelSpec
  donors?: ModelSpec[]
  lenses: LensSpec[]
  /** Write weights to `<model>.onnx.data` (needed past 2 GB; faster to validate). */
  externalData?: boolean
  rowsPerBatch?: { cpu?: number; gpu?: number }
}

async function writeFloat(file: string, data: Float32Array): Promise<void> {
  await fs.writeFile(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
}

/** The manifest's description of a base or donor model with this spec, stored in `file`. */
export function modelRefFor(
  spec: ArchSpec,
  ref: { id: string; name?: string; file: string }
): ModelRef {
  const cap = (on: boolean): number | null => (on ? spec.finalLogitSoftcap : null)
  return {
    id: ref.id,
    name: ref.name,
    file: ref.file,
    architecture: spec.family,
    hiddenSize: spec.hiddenSize,
    layers: spec.layers,
    heads: spec.heads,
    kvHeads: spec.kvHeads,
    headDim: spec.headDim,
    vocabSize: spec.vocabSize,
    maxPositions: spec.maxPositions,
    embeddingScale: spec.embeddingScale,
    graphDtype: 'float32',
    logitSoftcap: {
      decode: null,
      kl: cap(SOFTCAP_ROLES.kl),
      logitLens: cap(SOFTCAP_ROLES.logitLens),
      generate: cap(SOFTCAP_ROLES.generate)
    },
    parameters: parameterCount(spec)
  }
}

async function writeModel(dir: string, model: ModelSpec, external: boolean): Promise<ModelRef> {
  const file = `${model.id}.onnx`
  const { spec, weights } =
    'spec' in model ? { spec: model.spec, weights: model.archWeights } : preNormGpt(model.weights)
  const built = buildBaseModel(spec, weights, external ? `${file}.data` : undefined)
  await fs.writeFile(path.join(dir, file), built.model)
  if (built.data) {
    const handle = await fs.open(path.join(dir, `${file}.data`), 'w')
    try {
      for (const chunk of built.data) await handle.write(chunk)
    } finally {
      await handle.close()
    }
  }
  return modelRefFor(spec, { id: model.id, name: model.name, file })
}

/**
 * Writes the external-data file of `layout` at `dataPath`, one weight at a time in file order:
 * `fill` returns each weight's float32 values (it may read a checkpoint tensor, transform it and
 * drop it), so memory holds one weight, never the model. Gaps between weights (64-byte alignment)
 * are zeros. Throws naming the weight when `fill` returns the wrong number of values.
 */
export async function writeExternalData(
  dataPath: string,
  layout: BaseModelLayout,
  fill: (w: LaidOutWeight) => Promise<Float32Array> | Float32Array,
  onWeight?: (w: LaidOutWeight, done: number, total: number) => void
): Promise<void> {
  const handle = await fs.open(dataPath, 'w')
  try {
    let done = 0
    for (const w of layout.weights) {
      const values = await fill(w)
      if (values.byteLength !== w.length) {
        throw new Error(
          `weight ${w.name}: ${values.length} values, expected ${w.length / 4} for [${w.dims.join(', ')}]`
        )
      }
      const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
      let at = 0
      while (at < bytes.byteLength) {
        const { bytesWritten } = await handle.write(bytes, at, bytes.byteLength - at, w.offset + at)
        at += bytesWritten
      }
      onWeight?.(w, ++done, layout.weights.length)
    }
    await handle.truncate(layout.dataSize)
  } finally {
    await handle.close()
  }
}

/**
 * Writes `<file>` and `<file>.data` in `dir` for `spec`, streaming the weights through `fill`
 * (see writeExternalData), and returns the model's manifest reference.
 */
export async function writeStreamedModel(
  dir: string,
  ref: { id: string; name?: string; file: string },
  spec: ArchSpec,
  fill: (w: LaidOutWeight) => Promise<Float32Array> | Float32Array,
  onWeight?: (w: LaidOutWeight, done: number, total: number) => void
): Promise<ModelRef> {
  const layout = planBaseModel(spec, `${ref.file}.data`)
  await writeExternalData(path.join(dir, layout.dataFile), layout, fill, onWeight)
  await fs.writeFile(path.join(dir, ref.file), layout.model)
  return modelRefFor(spec, ref)
}

/** Writes one lens folder (lens.json, projection and head graphs, f32 tensors) into `dir`. */
export async function writeLensFolder(dir: string, d: number, spec: LensSpec): Promise<void> {
  await fs.mkdir(dir, { recursive: true })
  const tensor = async (
    name: string,
    data: Float32Array,
    shape: number[]
  ): Promise<LensManifest['decoder']['prefix']> => {
    await writeFloat(path.join(dir, name), data)
    return { file: name, dtype: 'float32', shape }
  }
  const np = spec.decoder.patchLayers
  await fs.writeFile(
    path.join(dir, 'decoder_projection.onnx'),
    buildProjection(d, np, spec.decoder.weights, spec.decoder.bias)
  )
  await fs.writeFile(path.join(dir, 'encoder_head.onnx'), buildEncoderHead(d, spec.encoder.head))
  const e = spec.encoder
  const manifest: LensManifest = {
    schemaVersion: LENS_SCHEMA_VERSION,
    id: spec.id,
    name: spec.name,
    description: spec.description,
    layer: spec.layer,
    explanationTokens: spec.explanationTokens,
    orig: spec.orig ?? 'base',
    decoder: {
      prefix: await tensor('decoder_prefix.f32', spec.decoder.prefix, [
        spec.decoder.prefix.length / d,
        d
      ]),
      embedPos: spec.decoder.embedPos,
      patchLayers: np,
      projection: 'decoder_projection.onnx'
    },
    encoder: {
      outputLayer: e.outputLayer,
      prefix: await tensor('encoder_prefix.f32', e.prefix, [e.prefix.length / d, d]),
      suffix: e.suffix
        ? await tensor('encoder_suffix.f32', e.suffix, [e.suffix.length / d, d])
        : undefined,
      addCurrentToken: e.addCurrentToken,
      lastRowAdd: e.lastRowAdd
        ? await tensor('encoder_last_row_add.f32', e.lastRowAdd, [d])
        : undefined,
      head: 'encoder_head.onnx'
    },
    provenance: spec.provenance
  }
  await fs.writeFile(path.join(dir, 'lens.json'), JSON.stringify(manifest, null, 2) + '\n')
}

/** Writes the whole group into `dir` (created; expected empty). */
export async function writeBundle(dir: string, spec: GroupSpec): Promise<void> {
  await fs.mkdir(dir, { recursive: true })
  const external = spec.externalData ?? false
  const base = await writeModel(dir, spec.base, external)
  const donors: ModelRef[] = []
  for (const d of spec.donors ?? []) donors.push(await writeModel(dir, d, external))
  const lensDirs: string[] = []
  for (const lens of spec.lenses) {
    const rel = `lenses/${lens.id}`
    await writeLensFolder(path.join(dir, rel), base.hiddenSize, lens)
    lensDirs.push(rel)
  }
  await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(spec.tokenizer))
  await fs.writeFile(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify(spec.tokenizerConfig, null, 2)
  )
  const manifest: ManifestFile = {
    schemaVersion: SCHEMA_VERSION,
    group: spec.group,
    tokenizer: { file: 'tokenizer.json', config: 'tokenizer_config.json' },
    conventions: {
      bosTokenId: spec.bosTokenId,
      nullTokenId: spec.nullTokenId,
      dtype: 'float32',
      activationSite: 'residual_after_block',
      logitLensFinalNorm: true
    },
    base,
    donors,
    lenses: lensDirs,
    rowsPerBatch: spec.rowsPerBatch
  }
  await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
}

/**
 * Adds a lens to an existing group: writes `lenses/<id>/` and lists it in manifest.json (the
 * manifest is replaced by a rename, so a reader sees the old list or the new one). The lens id must
 * be new to the group.
 */
export async function addLensToGroup(groupDir: string, spec: LensSpec): Promise<string> {
  const manifestPath = path.join(groupDir, 'manifest.json')
  const manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as ManifestFile
  const rel = `lenses/${spec.id}`
  if ((manifest.lenses ?? []).includes(rel)) {
    throw new Error(`${manifestPath}: the group already lists ${rel}`)
  }
  await writeLensFolder(path.join(groupDir, rel), manifest.base.hiddenSize, spec)
  const next: ManifestFile = { ...manifest, lenses: [...(manifest.lenses ?? []), rel] }
  const temp = `${manifestPath}.${process.pid}.tmp`
  await fs.writeFile(temp, JSON.stringify(next, null, 2) + '\n')
  await fs.rename(temp, manifestPath)
  return rel
}
