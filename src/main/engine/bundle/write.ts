/** Writes a bundle folder from weights held in memory (demo and synthetic generators). */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { buildTransformer, type TransformerWeights } from '../graph/transformer'
import { buildEncoderHead, buildProjection } from '../graph/lens'
import { SCHEMA_VERSION, type LensManifest, type Manifest, type ModelRef } from './manifest'

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
    /** (Np, d, d) and (Np, d) */
    weights: Float32Array
    bias: Float32Array
  }
  encoder: {
    outputLayer: number
    prefix: Float32Array
    suffix?: Float32Array
    addCurrentToken: boolean
    lastRowAdd?: Float32Array
    head?: { weight: Float32Array; bias: Float32Array }
  }
}

export interface ModelSpec {
  id: string
  name?: string
  weights: TransformerWeights
}

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

async function writeModel(dir: string, spec: ModelSpec, external: boolean): Promise<ModelRef> {
  const file = `${spec.id}.onnx`
  const built = buildTransformer(spec.weights, external ? `${file}.data` : undefined)
  await fs.writeFile(path.join(dir, file), built.model)
  if (built.data) {
    const handle = await fs.open(path.join(dir, `${file}.data`), 'w')
    try {
      for (const chunk of built.data) await handle.write(chunk)
    } finally {
      await handle.close()
    }
  }
  const dims = spec.weights.dims
  return {
    id: spec.id,
    name: spec.name,
    file,
    hiddenSize: dims.hiddenSize,
    layers: dims.layers,
    heads: dims.heads,
    vocabSize: dims.vocabSize,
    maxPositions: dims.maxPositions,
    embeddingScale: spec.weights.embeddingScale
  }
}

async function writeLens(dir: string, d: number, spec: LensSpec): Promise<void> {
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
    schemaVersion: SCHEMA_VERSION,
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
    }
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
    await writeLens(path.join(dir, rel), base.hiddenSize, lens)
    lensDirs.push(rel)
  }
  await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(spec.tokenizer))
  await fs.writeFile(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify(spec.tokenizerConfig, null, 2)
  )
  const manifest: Manifest = {
    schemaVersion: SCHEMA_VERSION,
    group: spec.group,
    tokenizer: { file: 'tokenizer.json', config: 'tokenizer_config.json' },
    conventions: {
      bosTokenId: spec.bosTokenId,
      nullTokenId: spec.nullTokenId,
      dtype: 'float32',
      activationSite: 'residual_after_block',
      logitSoftcap: null,
      logitLensFinalNorm: true
    },
    base,
    donors,
    lenses: lensDirs,
    rowsPerBatch: spec.rowsPerBatch
  }
  await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
}
