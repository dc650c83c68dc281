/**
 * Bundle validation: everything is checked before a session exists, and every error names the
 * file (relative to the bundle) and the field. No ONNX Runtime session is created here.
 */
import { createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { onnx } from 'onnx-proto'
import { AppError, describeZodError } from '@shared/ipc/errors'
import type { z } from 'zod'
import type { BundleSummary } from '../types'
import {
  LensManifestSchema,
  ManifestSchema,
  type LensManifest,
  type Manifest,
  type ModelRef,
  type TensorRef
} from './manifest'
import { sharedDigestCache, type FileDigestCache } from './digests'
import { estimateGroupBytes } from './estimate'
import { scanExternalFloat32, type Float32Range, type NonFiniteTensor } from './finiteScan'
import {
  BundleFileError,
  MAX_GRAPH_BYTES,
  MAX_JSON_BYTES,
  isInsideFolder,
  jsonFailure,
  notRegularFile,
  readRegularFile,
  regularFileSize
} from './files'

export const BASE_INPUTS = [
  'role',
  'input_ids',
  'layer',
  'prefix_embeds',
  'patch_vectors',
  'patch_index',
  'embed_pos',
  'uniforms',
  'temperature',
  'ids',
  'suffix_embeds',
  'last_add',
  'positions',
  'vectors',
  'top_k'
] as const
export const BASE_OUTPUTS = ['out_f', 'out_i'] as const
export const PROJECTION_IO = { inputs: ['activations'], outputs: ['patch_vectors'] } as const
export const HEAD_IO = { inputs: ['hidden', 'target'], outputs: ['recon', 'mse'] } as const

export interface ResolvedTensor {
  file: string
  shape: number[]
}

export interface ResolvedModel {
  ref: ModelRef
  file: string
}

export interface ResolvedLens {
  dir: string
  manifest: LensManifest
  decoderPrefix: ResolvedTensor
  encoderPrefix: ResolvedTensor
  encoderSuffix?: ResolvedTensor
  lastRowAdd?: ResolvedTensor
  projectionFile: string
  headFile: string
}

export interface ValidatedBundle {
  dir: string
  manifest: Manifest
  tokenizerFile: string
  tokenizerConfigFile: string
  base: ResolvedModel
  donors: ResolvedModel[]
  lenses: ResolvedLens[]
  summary: BundleSummary
}

class Ctx {
  readonly files = new Set<string>()
  weightBytes = 0
  constructor(
    readonly root: string,
    readonly realRoot: string,
    /** Scan the base and donor models' weights too (inline and external data) for NaN/Inf. */
    readonly scanModelWeights = false
  ) {}

  rel(abs: string): string {
    return path.relative(this.root, abs).split(path.sep).join('/')
  }

  fail(file: string, field: string | undefined, message: string): never {
    throw new AppError('bundle_invalid', `${file}${field ? ` (${field})` : ''}: ${message}`, {
      file,
      field
    })
  }

  /**
   * Resolves a path named in `fromFile` at `field`: it must exist, stay inside the bundle (symlinks
   * followed) and be a regular file (a folder or a FIFO is refused before anything reads it).
   */
  async resolve(fromDir: string, rel: string, fromFile: string, field: string): Promise<string> {
    const abs = path.resolve(fromDir, rel)
    if (!isInsideFolder(this.root, abs)) {
      this.fail(fromFile, field, `path "${rel}" escapes the bundle folder`)
    }
    let real: string
    try {
      real = await fs.realpath(abs)
    } catch {
      this.fail(this.rel(abs), field, `missing file (named in ${fromFile})`)
    }
    if (!isInsideFolder(this.realRoot, real)) {
      this.fail(fromFile, field, `path "${rel}" resolves outside the bundle folder (symlink)`)
    }
    const st = await fs.stat(real).catch(() => null)
    const not = st ? notRegularFile(st) : 'missing file'
    if (not) this.fail(this.rel(abs), field, `${not} (named in ${fromFile})`)
    this.files.add(abs)
    return abs
  }

  /** The bytes of a resolved bundle file; a file that changed into a FIFO or grew past the limit fails. */
  async read(abs: string, maxBytes: number, field?: string): Promise<Buffer> {
    try {
      return await readRegularFile(abs, maxBytes)
    } catch (err) {
      if (err instanceof BundleFileError) this.fail(this.rel(abs), field, err.reason)
      throw err
    }
  }

  async size(abs: string, field?: string): Promise<number> {
    try {
      return await regularFileSize(abs)
    } catch (err) {
      if (err instanceof BundleFileError) this.fail(this.rel(abs), field, err.reason)
      throw err
    }
  }
}

async function readJson<T extends z.ZodType>(
  ctx: Ctx,
  abs: string,
  schema: T
): Promise<z.output<T>> {
  const file = ctx.rel(abs)
  const text = (await ctx.read(abs, MAX_JSON_BYTES)).toString('utf8')
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    ctx.fail(file, undefined, jsonFailure(err))
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error)
    ctx.fail(file, field, message)
  }
  return parsed.data
}

async function checkTensor(
  ctx: Ctx,
  fromDir: string,
  ref: TensorRef,
  expect: (number | null)[],
  fromFile: string,
  field: string
): Promise<ResolvedTensor> {
  const abs = await ctx.resolve(fromDir, ref.file, fromFile, `${field}.file`)
  if (ref.shape.length !== expect.length) {
    ctx.fail(
      fromFile,
      `${field}.shape`,
      `expected ${expect.length} dimensions, got [${ref.shape.join(', ')}]`
    )
  }
  expect.forEach((e, i) => {
    if (e !== null && ref.shape[i] !== e) {
      ctx.fail(
        fromFile,
        `${field}.shape`,
        `dimension ${i} is ${ref.shape[i]}, expected ${e} (shape [${ref.shape.join(', ')}])`
      )
    }
  })
  const want = ref.shape.reduce((a, b) => a * b, 1) * 4
  const size = await ctx.size(abs, `${field}.file`)
  if (size !== want) {
    ctx.fail(
      ctx.rel(abs),
      `${field}.shape`,
      `file holds ${size} bytes; float32 [${ref.shape.join(', ')}] needs ${want}`
    )
  }
  ctx.weightBytes += size
  const bytes = await ctx.read(abs, size, `${field}.file`)
  const bad = firstNonFinite(bytes)
  if (bad)
    ctx.fail(ctx.rel(abs), field, `value ${bad.index} is ${bad.value}: every weight must be finite`)
  return { file: abs, shape: ref.shape }
}

/**
 * Every id the tokenizer can produce must index the base model's embedding: an id at or past
 * `vocabSize` would reach the graph and fail there as a bare Gather error.
 */
function checkTokenizerIds(ctx: Ctx, file: string, raw: unknown, vocabSize: number): void {
  if (typeof raw !== 'object' || raw === null)
    ctx.fail(file, undefined, 'not a tokenizer (expected an object)')
  const tok = raw as { model?: unknown; added_tokens?: unknown }
  if (typeof tok.model !== 'object' || tok.model === null)
    ctx.fail(file, 'model', 'not a tokenizer model (expected an object)')
  const model = tok.model as { vocab?: unknown }
  let maxId = -1
  if (Array.isArray(model.vocab)) maxId = model.vocab.length - 1
  else if (typeof model.vocab === 'object' && model.vocab !== null) {
    // for…in, not Object.values: no 262k-entry array for Gemma's vocabulary.
    const vocab = model.vocab as Record<string, unknown>
    for (const token in vocab) {
      const id = vocab[token]
      if (typeof id === 'number' && id > maxId) maxId = id
    }
  }
  // The vocabulary proper must fit the embedding. Added tokens past it are real (Gemma-3's image
  // token at id 262144 of a 262,144-row text model): a text that names one is refused when it is
  // tokenised (TextTokenizer.encode), never handed to the graph.
  if (maxId >= vocabSize)
    ctx.fail(
      file,
      'model.vocab',
      `the tokenizer has id ${maxId}; the base model's vocabSize is ${vocabSize} (manifest.json)`
    )
  if (Array.isArray(tok.added_tokens)) {
    for (const [i, t] of (
      tok.added_tokens as Array<{ id?: unknown; special?: unknown }>
    ).entries()) {
      if (typeof t?.id === 'number' && t.id >= vocabSize && t.special !== true)
        ctx.fail(
          file,
          `added_tokens.${i}`,
          `the tokenizer has id ${t.id} for a non-special token; the base model's vocabSize is ${vocabSize} (manifest.json)`
        )
    }
  }
}

/** The first NaN or infinity among little-endian float32 values, if any. */
function firstNonFinite(bytes: Uint8Array): { index: number; value: number } | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i + 4 <= bytes.byteLength; i += 4) {
    const value = view.getFloat32(i, true)
    if (!Number.isFinite(value)) return { index: i / 4, value }
  }
  return null
}

/** Checks a graph's float initializers held inside the file (not external data) for NaN/Inf. */
function checkInitializersFinite(ctx: Ctx, file: string, graph: onnx.IGraphProto): void {
  for (const t of graph.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT) continue
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) continue
    let bad: { index: number; value: number } | null = null
    if (t.rawData && t.rawData.byteLength > 0) bad = firstNonFinite(t.rawData)
    else {
      const at = (t.floatData ?? []).findIndex((v) => !Number.isFinite(v))
      if (at >= 0) bad = { index: at, value: t.floatData![at]! }
    }
    if (bad)
      ctx.fail(
        file,
        `initializer.${t.name}`,
        `value ${bad.index} is ${bad.value}: every weight must be finite`
      )
  }
}

/**
 * Scans the float tensors a graph keeps in one external data file for NaN/Inf (streamed, bounded
 * memory); fails naming the data file, the first such tensor and the graph, and counting the rest.
 */
async function checkExternalFinite(
  ctx: Ctx,
  graphFile: string,
  dataAbs: string,
  ranges: readonly Float32Range[]
): Promise<void> {
  const dataFile = ctx.rel(dataAbs)
  let found: NonFiniteTensor[]
  try {
    found = await scanExternalFloat32(dataAbs, ranges)
  } catch (err) {
    if (err instanceof BundleFileError) ctx.fail(dataFile, undefined, err.reason)
    throw err
  }
  const first = found[0]
  if (!first) return
  const others = found.slice(1).map((t) => `"${t.name}"`)
  const more =
    others.length === 0
      ? ''
      : `; also in ${others.length} more tensor${others.length > 1 ? 's' : ''}: ${others.slice(0, 5).join(', ')}${others.length > 5 ? ', …' : ''}`
  ctx.fail(
    dataFile,
    `initializer.${first.name}`,
    `tensor "${first.name}" of ${graphFile} holds ${first.count} non-finite value${first.count > 1 ? 's' : ''} (value ${first.firstIndex} is ${first.firstValue})${more}: every weight must be finite`
  )
}

interface OnnxInfo {
  inputs: Map<string, (number | string | null)[]>
  outputs: Set<string>
  /** Top-level initializers' dimensions by name. */
  initializers: Map<string, number[]>
}

/** Parses an ONNX file (catching truncation) and checks its external data stays inside. */
async function checkOnnx(
  ctx: Ctx,
  abs: string,
  fromFile: string,
  field: string,
  io: { inputs: readonly string[]; outputs: readonly string[] },
  /** Scan the float initializers for NaN/Inf, inline and in external data files. */
  scanWeights = false
): Promise<OnnxInfo> {
  const file = ctx.rel(abs)
  const bytes = await ctx.read(abs, MAX_GRAPH_BYTES, field)
  ctx.weightBytes += bytes.byteLength
  let model: onnx.ModelProto
  try {
    model = onnx.ModelProto.decode(bytes)
  } catch (err) {
    ctx.fail(
      file,
      field,
      `not a readable ONNX model (truncated or corrupt): ${(err as Error).message}`
    )
  }
  const graph = model.graph
  if (!graph) ctx.fail(file, field, 'ONNX model has no graph')
  if (scanWeights) checkInitializersFinite(ctx, file, graph)
  const inputs = new Map<string, (number | string | null)[]>()
  for (const vi of graph.input ?? []) {
    if (!vi.name) continue
    const dims = vi.type?.tensorType?.shape?.dim?.map((d) =>
      d.dimParam ? d.dimParam : d.dimValue != null ? Number(d.dimValue) : null
    )
    inputs.set(vi.name, dims ?? [])
  }
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''))
  for (const name of io.inputs) {
    if (!inputs.has(name))
      ctx.fail(file, `${field}.inputs.${name}`, `graph input "${name}" is missing`)
  }
  for (const name of io.outputs) {
    if (!outputs.has(name))
      ctx.fail(file, `${field}.outputs.${name}`, `graph output "${name}" is missing`)
  }
  const dir = path.dirname(abs)
  const seen = new Map<string, number>()
  /** Float tensors to scan, by external data file. */
  const floatRanges = new Map<string, Float32Range[]>()
  for (const t of graph.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue
    const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value]))
    const loc = kv.get('location')
    if (!loc) ctx.fail(file, `initializer.${t.name}.location`, 'external tensor without a location')
    const dataAbs = await ctx.resolve(dir, loc, file, `initializer.${t.name}.location`)
    let size = seen.get(dataAbs)
    if (size === undefined) {
      size = await ctx.size(dataAbs, `initializer.${t.name}.location`)
      seen.set(dataAbs, size)
      ctx.weightBytes += size
    }
    const offset = Number(kv.get('offset') ?? 0)
    const length = kv.has('length')
      ? Number(kv.get('length'))
      : (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 4)
    const end = offset + length
    if (end > size) {
      ctx.fail(
        ctx.rel(dataAbs),
        `initializer.${t.name}`,
        `external data ends at byte ${end}, file has ${size}`
      )
    }
    if (scanWeights && t.dataType === onnx.TensorProto.DataType.FLOAT) {
      const ranges = floatRanges.get(dataAbs) ?? []
      ranges.push({ name: t.name ?? '', offset, length })
      floatRanges.set(dataAbs, ranges)
    }
  }
  for (const [dataAbs, ranges] of floatRanges) {
    await checkExternalFinite(ctx, file, dataAbs, ranges)
  }
  const initializers = new Map<string, number[]>()
  for (const t of graph.initializer ?? []) {
    if (t.name) initializers.set(t.name, (t.dims ?? []).map(Number))
  }
  return { inputs, outputs, initializers }
}

/**
 * Checks a base graph's weights against its manifest entry without loading it: the token
 * embedding `tok_emb` is (vocabSize, hiddenSize) and the per-block weights `l<i>.*` number
 * exactly `layers` blocks (docs/bundle-format.md), so a manifest that disagrees with its graph
 * fails here, naming manifest.json, rather than as a Gather or shape error at run time.
 */
function checkWeightShapes(ctx: Ctx, ref: ModelRef, field: string, info: OnnxInfo): void {
  const emb = info.initializers.get('tok_emb')
  if (emb && emb.length === 2) {
    const [rows, width] = emb as [number, number]
    if (rows !== ref.vocabSize)
      ctx.fail(
        'manifest.json',
        `${field}.vocabSize`,
        `${ref.vocabSize} ≠ the graph's ${rows}-row token embedding (${ref.file})`
      )
    if (width !== ref.hiddenSize)
      ctx.fail(
        'manifest.json',
        `${field}.hiddenSize`,
        `${ref.hiddenSize} ≠ the graph's token embedding width ${width} (${ref.file})`
      )
  }
  let blocks = 0
  for (const name of info.initializers.keys()) {
    const m = /^l(\d+)\./.exec(name)
    if (m) blocks = Math.max(blocks, Number(m[1]) + 1)
  }
  if (blocks > 0 && blocks !== ref.layers)
    ctx.fail(
      'manifest.json',
      `${field}.layers`,
      `${ref.layers} ≠ the ${blocks} blocks of weights in ${ref.file}`
    )
}

async function checkModel(ctx: Ctx, ref: ModelRef, field: string): Promise<ResolvedModel> {
  const file = await ctx.resolve(ctx.root, ref.file, 'manifest.json', `${field}.file`)
  const info = await checkOnnx(
    ctx,
    file,
    'manifest.json',
    field,
    { inputs: BASE_INPUTS, outputs: BASE_OUTPUTS },
    ctx.scanModelWeights
  )
  checkWeightShapes(ctx, ref, field, info)
  const vec = info.inputs.get('vectors')
  if (vec && typeof vec[1] === 'number' && vec[1] !== ref.hiddenSize) {
    ctx.fail(
      ctx.rel(file),
      'inputs.vectors',
      `graph hidden size ${vec[1]} ≠ manifest ${field}.hiddenSize ${ref.hiddenSize}`
    )
  }
  if (ref.heads % ref.kvHeads !== 0) {
    ctx.fail(
      'manifest.json',
      `${field}.kvHeads`,
      `${ref.kvHeads} key/value heads do not divide ${ref.heads} heads`
    )
  }
  return { ref, file }
}

async function checkLens(
  ctx: Ctx,
  manifest: Manifest,
  rel: string,
  index: number
): Promise<ResolvedLens> {
  const lensJson = await ctx.resolve(
    ctx.root,
    path.posix.join(rel, 'lens.json'),
    'manifest.json',
    `lenses.${index}`
  )
  const dir = path.dirname(lensJson)
  const lm = await readJson(ctx, lensJson, LensManifestSchema)
  const file = ctx.rel(lensJson)
  const models = [manifest.base, ...manifest.donors]
  const orig = lm.orig === 'base' ? manifest.base : models.find((m) => m.id === lm.orig)
  if (!orig) {
    ctx.fail(
      file,
      'orig',
      `names model "${lm.orig}", which is neither "base" nor a donor in manifest.json (${manifest.donors.map((d) => d.id).join(', ') || 'no donors'})`
    )
  }
  const base = manifest.base
  const d = base.hiddenSize
  if (orig.hiddenSize !== d)
    ctx.fail(file, 'orig', `donor hidden size ${orig.hiddenSize} ≠ base ${d}`)
  if (lm.layer >= orig.layers)
    ctx.fail(file, 'layer', `layer ${lm.layer} ≥ the orig model's ${orig.layers} layers`)
  if (lm.encoder.outputLayer >= base.layers) {
    ctx.fail(
      file,
      'encoder.outputLayer',
      `${lm.encoder.outputLayer} ≥ the base model's ${base.layers} layers`
    )
  }
  if (lm.decoder.patchLayers > base.layers) {
    ctx.fail(
      file,
      'decoder.patchLayers',
      `${lm.decoder.patchLayers} > the base model's ${base.layers} layers`
    )
  }
  const decoderPrefix = await checkTensor(
    ctx,
    dir,
    lm.decoder.prefix,
    [null, d],
    file,
    'decoder.prefix'
  )
  if (lm.decoder.embedPos >= decoderPrefix.shape[0]!) {
    ctx.fail(
      file,
      'decoder.embedPos',
      `${lm.decoder.embedPos} is outside the ${decoderPrefix.shape[0]}-row prefix`
    )
  }
  const prefixRows = decoderPrefix.shape[0]!
  if (prefixRows + lm.explanationTokens > base.maxPositions) {
    ctx.fail(
      file,
      'explanationTokens',
      `prefix + T exceeds the base's ${base.maxPositions} positions`
    )
  }
  const encoderPrefix = await checkTensor(
    ctx,
    dir,
    lm.encoder.prefix,
    [null, d],
    file,
    'encoder.prefix'
  )
  const encoderSuffix = lm.encoder.suffix
    ? await checkTensor(ctx, dir, lm.encoder.suffix, [null, d], file, 'encoder.suffix')
    : undefined
  const lastRowAdd = lm.encoder.lastRowAdd
    ? await checkTensor(ctx, dir, lm.encoder.lastRowAdd, [d], file, 'encoder.lastRowAdd')
    : undefined
  const projectionFile = await ctx.resolve(dir, lm.decoder.projection, file, 'decoder.projection')
  const proj = await checkOnnx(ctx, projectionFile, file, 'decoder.projection', PROJECTION_IO, true)
  const pin = proj.inputs.get('activations')
  if (pin && typeof pin[1] === 'number' && pin[1] !== d) {
    ctx.fail(
      ctx.rel(projectionFile),
      'inputs.activations',
      `expects width ${pin[1]}, the base has ${d}`
    )
  }
  const headFile = await ctx.resolve(dir, lm.encoder.head, file, 'encoder.head')
  const head = await checkOnnx(ctx, headFile, file, 'encoder.head', HEAD_IO, true)
  const hin = head.inputs.get('hidden')
  if (hin && typeof hin[1] === 'number' && hin[1] !== d) {
    ctx.fail(ctx.rel(headFile), 'inputs.hidden', `expects width ${hin[1]}, the base has ${d}`)
  }
  return {
    dir,
    manifest: lm,
    decoderPrefix,
    encoderPrefix,
    encoderSuffix,
    lastRowAdd,
    projectionFile,
    headFile
  }
}

/**
 * The bundle's content hash: SHA-256 over every file the bundle names, in path order, each as its
 * path inside the bundle and the SHA-256 of its bytes. Same bytes at the same paths, same hash
 * (wherever the folder lives); per-file digests let unchanged files skip re-reading.
 */
async function contentHashOf(ctx: Ctx, digests: FileDigestCache): Promise<string> {
  const files = [...ctx.files].map((abs) => ({ abs, rel: ctx.rel(abs) }))
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))
  const h = createHash('sha256')
  for (const f of files) h.update(`${f.rel}\0${await digests.digest(f.abs)}\n`)
  await digests.flush()
  return h.digest('hex')
}

export interface ValidateOptions {
  /** Where file digests are remembered; default the process-wide cache (sharedDigestCache). */
  digests?: FileDigestCache
  /**
   * Also scan every float weight of the base and donor models (inline and in external data) for
   * NaN/Inf: a read of the whole model, which `inspect` does; opening a group to load it does not.
   * Lens graphs are always scanned.
   */
  scanModelWeights?: boolean
  /**
   * JSON files the caller has just written into the folder itself, already parsed, by absolute
   * path: used instead of reading and parsing them again (an importer hands on the 33 MB
   * `tokenizer.json` it parsed to check it). The same checks run on them; a bundle opened later
   * (a load, a library scan) reads every file as usual.
   */
  writtenJson?: ReadonlyMap<string, unknown>
}

/** Validates a group folder and returns its resolved layout and summary. */
export async function validateBundle(
  dirIn: string,
  options: ValidateOptions = {}
): Promise<ValidatedBundle> {
  const dir = path.resolve(dirIn)
  let realRoot: string
  try {
    realRoot = await fs.realpath(dir)
    if (!(await fs.stat(realRoot)).isDirectory()) throw new Error('not a folder')
  } catch {
    throw new AppError('bundle_invalid', `${dir}: not a bundle folder`, { file: dir, field: 'dir' })
  }
  const ctx = new Ctx(dir, realRoot, options.scanModelWeights ?? false)
  const manifestFile = path.join(dir, 'manifest.json')
  const manifestReal = await fs.realpath(manifestFile).catch(() => null)
  if (!manifestReal) {
    throw new AppError('bundle_invalid', `${dir}: no manifest.json, not a bundle folder`, {
      file: 'manifest.json'
    })
  }
  // The manifest too must be a regular file inside the folder: a symlink to elsewhere is refused
  // before anything reads it (and its content is never quoted).
  if (!isInsideFolder(realRoot, manifestReal))
    ctx.fail('manifest.json', undefined, 'is a symlink to a file outside the group folder')
  const manifestStat = await fs.stat(manifestReal)
  const notFile = notRegularFile(manifestStat)
  if (notFile) ctx.fail('manifest.json', undefined, notFile)
  ctx.files.add(manifestFile)
  const manifest = await readJson(ctx, manifestFile, ManifestSchema)
  const tokenizerFile = await ctx.resolve(
    dir,
    manifest.tokenizer.file,
    'manifest.json',
    'tokenizer.file'
  )
  const tokenizerConfigFile = await ctx.resolve(
    dir,
    manifest.tokenizer.config,
    'manifest.json',
    'tokenizer.config'
  )
  const tokenizerConfig: { chat_template?: unknown } = {}
  for (const f of [tokenizerFile, tokenizerConfigFile]) {
    let raw: unknown
    if (options.writtenJson?.has(f)) {
      raw = options.writtenJson.get(f)
    } else {
      const text = (await ctx.read(f, MAX_JSON_BYTES)).toString('utf8')
      try {
        raw = JSON.parse(text)
      } catch (err) {
        ctx.fail(ctx.rel(f), undefined, jsonFailure(err))
      }
    }
    if (f === tokenizerFile) checkTokenizerIds(ctx, ctx.rel(f), raw, manifest.base.vocabSize)
    if (f === tokenizerConfigFile && typeof raw === 'object' && raw !== null)
      Object.assign(tokenizerConfig, {
        chat_template: (raw as typeof tokenizerConfig).chat_template
      })
  }
  const ids = new Set<string>(['base'])
  for (const [i, m] of manifest.donors.entries()) {
    if (ids.has(m.id) || m.id === manifest.base.id)
      ctx.fail('manifest.json', `donors.${i}.id`, `duplicate model id "${m.id}"`)
    ids.add(m.id)
  }
  const { bosTokenId, nullTokenId } = manifest.conventions
  for (const [field, v] of [
    ['conventions.bosTokenId', bosTokenId],
    ['conventions.nullTokenId', nullTokenId]
  ] as const) {
    if (v >= manifest.base.vocabSize)
      ctx.fail('manifest.json', field, `${v} ≥ vocabSize ${manifest.base.vocabSize}`)
  }
  const base = await checkModel(ctx, manifest.base, 'base')
  const donors: ResolvedModel[] = []
  for (const [i, m] of manifest.donors.entries())
    donors.push(await checkModel(ctx, m, `donors.${i}`))
  const lenses: ResolvedLens[] = []
  const lensIds = new Set<string>()
  for (const [i, rel] of manifest.lenses.entries()) {
    const lens = await checkLens(ctx, manifest, rel, i)
    if (lensIds.has(lens.manifest.id))
      ctx.fail(
        ctx.rel(path.join(lens.dir, 'lens.json')),
        'id',
        `duplicate lens id "${lens.manifest.id}"`
      )
    lensIds.add(lens.manifest.id)
    lenses.push(lens)
  }
  const contentHash = await contentHashOf(ctx, options.digests ?? sharedDigestCache())
  const weightBytes = ctx.weightBytes
  const b = manifest.base
  const estimate = estimateGroupBytes({
    weightBytes,
    base: b,
    lenses: lenses.map((l) => ({
      prefixRows: l.decoderPrefix.shape[0]!,
      tokens: l.manifest.explanationTokens,
      encoderRows:
        l.encoderPrefix.shape[0]! +
        (l.encoderSuffix?.shape[0] ?? 0) +
        (l.manifest.encoder.addCurrentToken ? 1 : 0)
    })),
    rowsPerBatch: manifest.rowsPerBatch
  })
  const summary: BundleSummary = {
    groupId: manifest.group.id,
    name: manifest.group.name,
    dir,
    contentHash,
    baseModel: {
      id: b.id,
      hiddenSize: b.hiddenSize,
      layers: b.layers,
      vocabSize: b.vocabSize,
      maxPositions: b.maxPositions,
      architecture: b.architecture,
      parameters: b.parameters ?? null,
      graphDtype: b.graphDtype,
      checkpointDtype: b.checkpoint?.dtype ?? null
    },
    lenses: lenses.map((l) => ({
      id: l.manifest.id,
      name: l.manifest.name,
      layer: l.manifest.layer,
      tokens: l.manifest.explanationTokens,
      origModel: l.manifest.orig === 'base' ? b.id : l.manifest.orig
    })),
    weightBytes,
    estimatedBytes: estimate.gpu,
    estimatedBytesByKind: estimate,
    hasChatTemplate:
      typeof tokenizerConfig.chat_template === 'string' && tokenizerConfig.chat_template.length > 0
  }
  return { dir, manifest, tokenizerFile, tokenizerConfigFile, base, donors, lenses, summary }
}
