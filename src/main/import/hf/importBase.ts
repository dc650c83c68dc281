/**
 * A Hugging Face model folder → a new model group with only its base (docs/import.md):
 *
 *   config.json ─ readHfArchitecture ─▶ ArchSpec ─ planHfWeights ─▶ weight plan
 *   safetensors ─ one tensor (or row block) at a time ─▶ transform ─▶ base.onnx.data
 *   tokenizer files ─ prepareTokenizer (a worker thread, while the weights stream) ─▶
 *     tokenizer.json, tokenizer_config.json
 *   manifest.json (schema 2: architecture, parameters, checkpoint dtype, graph dtype)
 *
 * Everything is written into a hidden staging folder next to the target, validated as a bundle,
 * and renamed into place only then (staging.ts): a failed, cancelled or killed import leaves
 * nothing that looks like a group. Every refusal is a CheckpointError naming the file and the
 * tensor or field (the CLI exits 3).
 *
 * Memory: the weights stream through a few reused buffers (weightStream.ts): two output buffers,
 * as large as the two largest weights that must be built whole (transposed, joined), and one
 * read block, whatever the checkpoint's size.
 */
import { createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import type { ImportProgress, ImportedGroup } from '@shared/domain/imports'
import { AppError } from '@shared/ipc/errors'
import {
  SCHEMA_VERSION,
  modelRefFor,
  noteBundleMoved,
  openBundle,
  planBaseModel,
  rememberWrittenDigest,
  type ArchSpec,
  type CheckpointSource,
  type ManifestFile
} from '../../engine'
import { CheckpointError, throwIfAborted } from '../errors'
import { ProgressMeter } from '../progress'
import { isReadableDtype, unsupportedDtype } from '../safetensors'
import { checkTargetFree, createStaging } from '../staging'
import { readHfArchitecture, type HfArchitecture } from './config'
import { SINGLE_WEIGHTS_FILE, openHfFolder, type HfFolder } from './folder'
import { prepareTokenizerBeside, type ThreadPreparedTokenizer } from './tokenizerThread'
import type { WriteOutcome } from './directWrites'
import { NonFiniteTally, writeCheckpointWeights } from './weightStream'
import { planHfWeights, type WeightPlan } from './weights'

export const BASE_MODEL_FILE = 'base.onnx'

export interface ImportBaseOptions {
  /** The Hugging Face folder: save_pretrained output, a cache snapshot, or a `models--…` folder. */
  source: string
  /** The group folder to create (absent, or an empty folder). */
  out: string
  /** Display name; default the repository (`org/name` of a cache folder) or the folder name. */
  name?: string
  /** Group id; default the target folder's name (made a valid id). */
  groupId?: string
  /**
   * NaN or infinite weights: `warn` (default) imports and reports each tensor by name (some real
   * checkpoints hold NaN in embedding rows no text reaches); `refuse` makes it a checkpoint error.
   */
  nonFinite?: 'warn' | 'refuse'
  /** How errors name the target argument (`--out` on the command line, `folder` in the app). */
  outField?: string
  signal?: AbortSignal
  onProgress?: (p: ImportProgress) => void
  /** Each warning as it is found (they are also in the result). */
  onWarning?: (message: string) => void
}

export interface ImportBaseResult extends ImportedGroup {
  /** The group folder (absolute). */
  dir: string
  warnings: string[]
  /** Checkpoint bytes read. */
  bytesRead: number
  /** Wall time of the whole import, and of the weights alone (read, convert, write). */
  seconds: number
  weightSeconds: number
  /**
   * Whether `base.onnx.data` was written past the page cache (O_DIRECT), and why not when not
   * (the filesystem refused it: the same bytes went through ordinary writes).
   */
  weightWrites: WriteOutcome
}

/** A group id from a folder name: invalid characters become `-`, at most 80. */
export function groupIdFrom(name: string): string {
  const cleaned = name
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 80)
  return cleaned || 'imported-model'
}

/** The name a user would recognise: `org/name` for a cache folder, else the folder's name. */
export function displayNameOf(folder: Pick<HfFolder, 'dir' | 'root' | 'layout'>): string {
  if (folder.layout === 'hf-cache') {
    const repo = path.basename(folder.root)
    const m = /^models--(.+)$/.exec(repo)
    if (m) return m[1]!.split('--').join('/')
  }
  return path.basename(folder.dir)
}

/** The dtype the checkpoint stores the imported weights in (`mixed` when they differ). */
function checkpointDtypeOf(folder: HfFolder, plan: WeightPlan): CheckpointSource['dtype'] {
  const dtypes = new Set<string>()
  for (const w of plan.weights) {
    for (const s of w.sources) dtypes.add(folder.tensors.get(s.tensor)!.dtype)
  }
  if (dtypes.size !== 1) return 'mixed'
  const only = [...dtypes][0]
  return only === 'F32' || only === 'F16' || only === 'BF16' ? only : 'mixed'
}

function refuseUnreadableSources(folder: HfFolder, plan: WeightPlan): void {
  for (const w of plan.weights) {
    for (const s of w.sources) {
      const e = folder.tensors.get(s.tensor)!
      if (!isReadableDtype(e.dtype)) {
        const shard = folder.shards.find((x) => x.file === e.file)!
        unsupportedDtype(e.file, shard.safetensors.tensors.get(s.tensor)!)
      }
    }
  }
}

/** What the import will read: the plan's source tensors and their checkpoint bytes. */
function plannedReads(folder: HfFolder, plan: WeightPlan): { tensors: number; bytes: number } {
  let tensors = 0
  let bytes = 0
  for (const w of plan.weights) {
    for (const s of w.sources) {
      tensors++
      bytes += folder.tensors.get(s.tensor)!.byteLength
    }
  }
  return { tensors, bytes }
}

function asCancelled(err: unknown, source: string): unknown {
  if (err instanceof CheckpointError) return err
  if ((err as { name?: string })?.name === 'AbortError') {
    return new CheckpointError('cancelled', `${source}: import cancelled`, { file: source })
  }
  return err
}

/** Imports a Hugging Face model folder as a new group at `options.out` (see the file comment). */
export async function importHfBase(options: ImportBaseOptions): Promise<ImportBaseResult> {
  const started = Date.now()
  const warnings: string[] = []
  const warn = (message: string): void => {
    warnings.push(message)
    options.onWarning?.(message)
  }
  const report = options.onProgress ?? (() => undefined)
  report({
    stage: 'reading headers',
    tensorsDone: 0,
    tensorsTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
    mbPerSecond: null,
    etaSeconds: null
  })

  const outField = options.outField ?? 'out'
  // Before reading anything: a taken target or one inside the source is the caller's mistake.
  checkImportTarget(options.source, options.out, outField)
  await checkTargetFree(options.out, outField)
  const folder = await openHfFolder(options.source, { signal: options.signal })
  const arch = readHfArchitecture(folder.config, 'config.json')
  const spec: ArchSpec = arch.spec
  const missingFile = folder.index?.file ?? SINGLE_WEIGHTS_FILE
  const fileOf = (tensor: string): string => folder.tensors.get(tensor)?.file ?? missingFile
  const plan = planHfWeights(
    spec,
    arch.multimodal,
    [...folder.tensors.values()].map((t) => ({ name: t.name, shape: t.shape })),
    fileOf
  )
  refuseUnreadableSources(folder, plan)
  // The tokenizer is read and checked beside the weights (on a thread when it is large: they do
  // not need it); its failure stops the weights at once and is the import's error.
  const stop = new AbortController()
  const onAbort = (): void => stop.abort()
  options.signal?.addEventListener('abort', onAbort)
  throwIfAborted(options.signal, options.source)
  const tokenizer = prepareTokenizerBeside(folder, spec.vocabSize, { signal: stop.signal })
  let tokenizerFailure: unknown
  tokenizer.catch((err: unknown) => {
    tokenizerFailure = err
    stop.abort()
  })
  try {
    return await importWithTokenizer(options, {
      folder,
      arch,
      plan,
      fileOf,
      tokenizer,
      signal: stop.signal,
      warn,
      warnings,
      started
    })
  } catch (err) {
    // Weights stopped by a failed tokenizer: the tokenizer's error is the one that explains it.
    const stoppedHere = err instanceof CheckpointError && err.problem === 'cancelled'
    if (stoppedHere && tokenizerFailure !== undefined && !options.signal?.aborted) {
      throw tokenizerFailure
    }
    throw err
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
    stop.abort()
  }
}

/** What the import has when the weights start, the tokenizer still on its way. */
interface ImportStart {
  folder: HfFolder
  arch: HfArchitecture
  plan: WeightPlan
  /** The checkpoint file that holds (or should hold) a tensor. */
  fileOf: (tensor: string) => string
  tokenizer: Promise<ThreadPreparedTokenizer>
  /** The caller's signal, or a failed tokenizer. */
  signal: AbortSignal
  warn: (message: string) => void
  warnings: string[]
  started: number
}

/** The import from the weights on (staging, weights, tokenizer files, manifest, validation). */
async function importWithTokenizer(
  options: ImportBaseOptions,
  { folder, arch, plan, fileOf, tokenizer, signal, warn, warnings, started }: ImportStart
): Promise<ImportBaseResult> {
  const report = options.onProgress ?? (() => undefined)
  const outField = options.outField ?? 'out'
  const spec = arch.spec
  const reads = plannedReads(folder, plan)
  const meter = new ProgressMeter({
    tensorsTotal: reads.tensors,
    bytesTotal: reads.bytes,
    report
  })
  checkImportTarget(folder.dir, options.out, outField)
  const staging = await createStaging(options.out, outField)
  const target = staging.target
  const groupId = options.groupId ?? groupIdFrom(path.basename(target))
  const name = options.name ?? displayNameOf(folder)
  const tally = new NonFiniteTally()
  let weightSeconds = 0
  try {
    meter.stage('writing weights')
    const layout = planBaseModel(spec, `${BASE_MODEL_FILE}.data`)
    const weightsStarted = Date.now()
    const dataPath = path.join(staging.dir, layout.dataFile)
    const written = await writeCheckpointWeights(dataPath, layout, {
      folder,
      plan,
      meter,
      tally,
      signal
    })
    weightSeconds = (Date.now() - weightsStarted) / 1000
    // The validation below takes the digest computed as the bytes went out instead of reading
    // 1–2 GB back; it still answers only for the file exactly as written (bundle/digests.ts).
    if (written.sha256) rememberWrittenDigest(dataPath, written.sha256, written.written)
    await fs.writeFile(path.join(staging.dir, BASE_MODEL_FILE), layout.model)

    meter.stage('tokenizer')
    const prepared = await tokenizer
    for (const w of prepared.warnings) warn(w)
    throwIfAborted(options.signal, options.source)

    const nonFinite = tally.messages(fileOf, (t) =>
      folder.tensors.get(t)!.shape.reduce((a, b) => a * b, 1)
    )
    if (nonFinite.length > 0) {
      if (options.nonFinite === 'refuse') {
        const tensor = tally.first!
        throw new CheckpointError(
          'non_finite',
          `${nonFinite.join('; ')}: non-finite weights make every output untrustworthy`,
          { file: fileOf(tensor), tensor }
        )
      }
      for (const m of nonFinite) {
        warn(`${m}: imported as is; outputs that reach these values will be NaN and refused`)
      }
    }

    const tokenizerPath = path.join(staging.dir, 'tokenizer.json')
    await writeHashed(tokenizerPath, prepared.tokenizerJson)
    await fs.writeFile(
      path.join(staging.dir, 'tokenizer_config.json'),
      JSON.stringify(prepared.tokenizerConfig, null, 2) + '\n'
    )

    const checkpoint: CheckpointSource = {
      format: 'huggingface-safetensors',
      modelType: arch.modelType,
      dtype: checkpointDtypeOf(folder, plan),
      parameters: plan.weights.reduce(
        (n, w) => n + w.sources.reduce((m, s) => m + s.shape.reduce((a, b) => a * b, 1), 0),
        0
      ),
      ...(folder.revision ? { revision: folder.revision } : {})
    }
    const manifest: ManifestFile = {
      schemaVersion: SCHEMA_VERSION,
      group: {
        id: groupId,
        name,
        description: `${arch.modelType} imported from ${folder.dir}`
      },
      tokenizer: { file: 'tokenizer.json', config: 'tokenizer_config.json' },
      conventions: {
        bosTokenId: prepared.bosTokenId,
        nullTokenId: prepared.nullTokenId,
        dtype: 'float32',
        activationSite: 'residual_after_block',
        logitLensFinalNorm: true
      },
      base: {
        ...modelRefFor(spec, { id: 'base', name, file: BASE_MODEL_FILE }),
        checkpoint
      },
      donors: [],
      lenses: []
    }
    // The manifest last: until it exists, the staging folder is not a bundle at all.
    await fs.writeFile(
      path.join(staging.dir, 'manifest.json'),
      JSON.stringify(manifest, null, 2) + '\n'
    )

    meter.stage('validating')
    throwIfAborted(options.signal, options.source)
    // Every check runs; tokenizer.json is handed on as parsed (or, from the thread that parsed
    // it, as the parts of it the check reads) rather than parsed again.
    const summary = await openBundle(staging.dir, {
      writtenJson: new Map([[path.resolve(tokenizerPath), prepared.validationView]])
    })
    throwIfAborted(options.signal, options.source)
    await staging.commit()
    await noteBundleMoved(staging.dir, target)
    meter.stage('done')
    return {
      dir: target,
      groupId,
      name,
      folder: target,
      architecture: spec.family,
      modelType: arch.modelType,
      parameters: manifest.base.parameters ?? checkpoint.parameters,
      checkpointDtype: checkpoint.dtype,
      graphDtype: manifest.base.graphDtype,
      weightBytes: summary.weightBytes,
      estimatedBytes: summary.estimatedBytes,
      warnings,
      bytesRead: meter.bytesDone,
      seconds: (Date.now() - started) / 1000,
      weightSeconds,
      weightWrites: written.writes
    }
  } catch (err) {
    await staging.discard()
    throw asCancelled(err, options.source)
  }
}

/** Writes `bytes` to a new file and remembers their digest for the validation that follows. */
async function writeHashed(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await fs.open(file, 'w')
  try {
    for (let at = 0; at < bytes.byteLength;) {
      const { bytesWritten } = await handle.write(bytes, at, bytes.byteLength - at, at)
      at += bytesWritten
    }
    const written = await handle.stat({ bigint: true })
    rememberWrittenDigest(file, createHash('sha256').update(bytes).digest('hex'), written)
  } finally {
    await handle.close()
  }
}

/** Refuses a target the import must not write (the source itself, or a folder inside it). */
export function checkImportTarget(source: string, out: string, field: string): void {
  const src = path.resolve(source)
  const dst = path.resolve(out)
  const rel = path.relative(src, dst)
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw new AppError(
      'invalid_input',
      `${dst} is inside the model folder being imported; choose a folder elsewhere`,
      { field }
    )
  }
}
