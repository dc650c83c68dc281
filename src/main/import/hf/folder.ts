/**
 * A Hugging Face model folder, opened for import: `config.json`, the safetensors weights (one
 * `model.safetensors`, or shards named by `model.safetensors.index.json`), and the tokenizer and
 * generation files when present. Accepts a `save_pretrained` folder, a Hugging Face cache snapshot
 * (`models--org--name/snapshots/<hash>/`, whose files are symlinks into `../../blobs/`), and the
 * cache's `models--org--name` folder itself (the snapshot `refs/main` names).
 *
 * Only headers are read here. Every file must resolve inside the chosen folder (for the cache: inside
 * its `models--…` folder), be a regular file, and agree with the index; anything else is refused
 * with a `CheckpointError` naming the file (and the tensor or field).
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { checkpointFail, throwIfAborted } from '../errors'
import { isPlainObject, readJsonObject, readSmallFile, statRegularFile } from '../files'
import { locateHfFolder, resolveFile, type LocatedFolder } from './layout'
import {
  isReadableDtype,
  openSafetensors,
  readSafetensorsRaw,
  readSafetensorsTensor,
  type RawTensorBytes,
  type ReadTensorOptions,
  type SafetensorsDtype,
  type SafetensorsFile
} from '../safetensors'

export const CONFIG_FILE = 'config.json'
export const SINGLE_WEIGHTS_FILE = 'model.safetensors'
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json'

/** Optional files, by the key `HfFolder.files` uses, in order of preference for each key. */
const OPTIONAL_FILES = {
  tokenizer: ['tokenizer.json'],
  tokenizerConfig: ['tokenizer_config.json'],
  generationConfig: ['generation_config.json'],
  specialTokensMap: ['special_tokens_map.json'],
  chatTemplate: ['chat_template.jinja', 'chat_template.json']
} as const

const MAX_JSON_BYTES = 64 * 1024 * 1024
const MAX_TEXT_FILE_BYTES = 512 * 1024 * 1024

/** Real paths (symlinks resolved, inside `HfFolder.root`) of the folder's files. */
export interface HfFolderFiles {
  config: string
  tokenizer?: string
  tokenizerConfig?: string
  generationConfig?: string
  specialTokensMap?: string
  /** `chat_template.jinja` (the template itself) or `chat_template.json` (`{ "chat_template": … }`). */
  chatTemplate?: string
}

export type HfFolderFileKey = keyof HfFolderFiles

/** One tensor of the checkpoint, wherever it lives. */
export interface HfTensorEntry {
  name: string
  dtype: SafetensorsDtype
  shape: number[]
  numel: number
  /** The weights file holding it, named relative to `HfFolder.dir` (as the index names it). */
  file: string
  /** Absolute byte offset in that file. */
  offset: number
  byteLength: number
}

export interface HfShard {
  /** Relative to `HfFolder.dir`. */
  file: string
  /** Real path of the file (for the cache: the blob). */
  path: string
  size: number
  /** Sum of the byte lengths of its tensors. */
  tensorBytes: number
  safetensors: SafetensorsFile
}

export interface HfFolder extends LocatedFolder {
  /** `config.json`, parsed (not interpreted: the architecture is read elsewhere). */
  config: Record<string, unknown>
  files: HfFolderFiles
  /** The same files by name in `dir` (e.g. `chat_template.jinja`), for messages. */
  fileNames: Partial<Record<HfFolderFileKey, string>>
  tensors: ReadonlyMap<string, HfTensorEntry>
  /** Sum of every tensor's byte length: what reading every tensor once costs. */
  totalBytes: number
  shards: HfShard[]
  /** `model.safetensors.index.json`, for a sharded checkpoint. */
  index?: { file: string; metadata: Record<string, unknown> }
}

export interface OpenHfFolderOptions {
  signal?: AbortSignal
}

/** Opens a Hugging Face model folder: validates config, index and every shard header. */
export async function openHfFolder(
  dirArg: string,
  options: OpenHfFolderOptions = {}
): Promise<HfFolder> {
  const located = await locateHfFolder(dirArg)
  const { dir, root } = located
  throwIfAborted(options.signal, dir)

  const configPath = await resolveFile(dir, root, CONFIG_FILE, { file: CONFIG_FILE })
  if (!configPath) {
    const hint = (await looksLikePeftAdapter(dir))
      ? ' This is a PEFT adapter folder (adapter_config.json): import it as a donor adapter on its base model.'
      : ''
    checkpointFail('missing_file', { file: CONFIG_FILE }, `missing in ${dir}.${hint}`)
  }
  const config = await readJsonObject(configPath, { file: CONFIG_FILE }, MAX_JSON_BYTES)
  refuseQuantized(config)

  const files: HfFolderFiles = { config: configPath }
  const fileNames: HfFolder['fileNames'] = { config: CONFIG_FILE }
  for (const [key, names] of Object.entries(OPTIONAL_FILES) as [
    HfFolderFileKey,
    readonly string[]
  ][]) {
    for (const name of names) {
      const p = await resolveFile(dir, root, name, { file: name })
      if (p) {
        await statRegularFile(p, { file: name })
        files[key] = p
        fileNames[key] = name
        break
      }
    }
  }

  const weights = await openWeights(dir, root, options)
  return { ...located, config, files, fileNames, ...weights }
}

/** Reads one tensor as float32 from whichever shard holds it (streamed; see readSafetensorsTensor). */
export async function readTensor(
  folder: HfFolder,
  name: string,
  options: ReadTensorOptions = {}
): Promise<Float32Array> {
  return readSafetensorsTensor(shardOf(folder, name), name, options)
}

/** One tensor's stored bytes (or rows of it), unconverted, into `into` (readSafetensorsRaw). */
export async function readTensorRaw(
  folder: HfFolder,
  name: string,
  into: Uint8Array,
  options: Omit<ReadTensorOptions, 'into'> = {}
): Promise<RawTensorBytes> {
  return readSafetensorsRaw(shardOf(folder, name), name, into, options)
}

function shardOf(folder: HfFolder, name: string): SafetensorsFile {
  const entry = folder.tensors.get(name)
  if (!entry) {
    checkpointFail(
      'missing_tensor',
      { file: folder.index?.file ?? SINGLE_WEIGHTS_FILE, tensor: name },
      'not in this checkpoint'
    )
  }
  return folder.shards.find((s) => s.file === entry.file)!.safetensors
}

/** One step of `streamTensors`. */
export interface StreamedTensor {
  entry: HfTensorEntry
  /**
   * The tensor as float32 (length = numel). A window of one scratch array that the next step
   * overwrites: copy (or write out) what must outlive the step.
   */
  values: Float32Array
}

/**
 * Reads tensors one after another into one reused scratch array, sized for the largest of them.
 * This is the fast way to import: a new multi-hundred-megabyte array per tensor costs a page fault
 * per 4 KiB on first touch, several times the read and conversion themselves (bench/safetensors.ts
 * measures both), and the scratch array bounds memory at one float32 tensor. `names` defaults to
 * every tensor of a readable dtype (F32, F16, BF16), in shard and header order.
 */
export async function* streamTensors(
  folder: HfFolder,
  names?: Iterable<string>,
  options: Omit<ReadTensorOptions, 'into' | 'rows'> = {}
): AsyncGenerator<StreamedTensor> {
  const wanted = names
    ? [...names].map((n) => {
        const e = folder.tensors.get(n)
        if (!e) {
          checkpointFail(
            'missing_tensor',
            { file: folder.index?.file ?? SINGLE_WEIGHTS_FILE, tensor: n },
            'not in this checkpoint'
          )
        }
        return e
      })
    : [...folder.tensors.values()].filter((e) => isReadableDtype(e.dtype))
  let largest = 0
  for (const e of wanted) largest = Math.max(largest, e.numel)
  const scratch = new Float32Array(largest)
  for (const entry of wanted) {
    const values = await readTensor(folder, entry.name, {
      ...options,
      into: scratch.subarray(0, entry.numel)
    })
    yield { entry, values }
  }
}

/** Reads one of the folder's small files as text (undefined when the folder does not have it). */
export async function readHfFolderFile(
  folder: Pick<HfFolder, 'files' | 'fileNames'>,
  key: HfFolderFileKey
): Promise<string | undefined> {
  return (await readHfFolderBytes(folder, key))?.toString('utf8')
}

/** The bytes of one of the folder's small files, or undefined when the folder has none. */
export async function readHfFolderBytes(
  folder: Pick<HfFolder, 'files' | 'fileNames'>,
  key: HfFolderFileKey
): Promise<Buffer | undefined> {
  const p = folder.files[key]
  if (!p) return undefined
  return readSmallFile(p, { file: folder.fileNames[key] ?? key }, MAX_TEXT_FILE_BYTES)
}

// ── config ────────────────────────────────────────────────────────────────────────────────────────

function refuseQuantized(config: Record<string, unknown>): void {
  const nested = isPlainObject(config.text_config) ? config.text_config : undefined
  for (const [obj, field] of [
    [config, 'quantization_config'],
    [nested, 'text_config.quantization_config']
  ] as const) {
    const q = obj?.quantization_config
    if (q === undefined || q === null) continue
    const method =
      isPlainObject(q) && typeof q.quant_method === 'string' ? ` (${q.quant_method})` : ''
    checkpointFail(
      'quantized',
      { file: CONFIG_FILE, field },
      `quantised checkpoints${method} are not supported; import the unquantised float32, float16 or bfloat16 model`
    )
  }
}

async function looksLikePeftAdapter(dir: string): Promise<boolean> {
  try {
    await fs.lstat(path.join(dir, 'adapter_config.json'))
    return true
  } catch {
    return false
  }
}

// ── weights ─────────────────────────────────────────────────────────────────────────────────────

type Weights = Pick<HfFolder, 'tensors' | 'totalBytes' | 'shards' | 'index'>

const CONVERT_HINT =
  'convert it once with transformers: AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT, safe_serialization=True)'

async function openWeights(
  dir: string,
  root: string,
  options: OpenHfFolderOptions
): Promise<Weights> {
  const single = await resolveFile(dir, root, SINGLE_WEIGHTS_FILE, { file: SINGLE_WEIGHTS_FILE })
  if (single) {
    const shard = await openShard(single, SINGLE_WEIGHTS_FILE, options)
    const tensors = new Map<string, HfTensorEntry>()
    for (const info of shard.safetensors.tensors.values()) {
      tensors.set(info.name, { ...info, shape: info.shape, file: SINGLE_WEIGHTS_FILE })
    }
    return { tensors, totalBytes: shard.tensorBytes, shards: [shard] }
  }
  const indexPath = await resolveFile(dir, root, WEIGHTS_INDEX_FILE, { file: WEIGHTS_INDEX_FILE })
  if (indexPath) return openSharded(dir, root, indexPath, options)
  return refuseOtherWeights(dir)
}

async function openShard(
  real: string,
  label: string,
  options: OpenHfFolderOptions
): Promise<HfShard> {
  const safetensors = await openSafetensors(real, { label, signal: options.signal })
  let tensorBytes = 0
  for (const t of safetensors.tensors.values()) tensorBytes += t.byteLength
  return { file: label, path: real, size: safetensors.size, tensorBytes, safetensors }
}

async function openSharded(
  dir: string,
  root: string,
  indexPath: string,
  options: OpenHfFolderOptions
): Promise<Weights> {
  const indexWhere = { file: WEIGHTS_INDEX_FILE }
  const index = await readJsonObject(indexPath, indexWhere, MAX_JSON_BYTES)
  const weightMap = index.weight_map
  if (!isPlainObject(weightMap) || Object.keys(weightMap).length === 0) {
    checkpointFail(
      'index_invalid',
      { ...indexWhere, field: 'weight_map' },
      'must map tensor names to shard files'
    )
  }
  const shardNames: string[] = []
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file === '' || file.includes('\0')) {
      checkpointFail(
        'index_invalid',
        { ...indexWhere, field: `weight_map.${tensor}`, tensor },
        `names ${JSON.stringify(file)}, not a file name`
      )
    }
    if (!shardNames.includes(file)) shardNames.push(file)
  }
  // In file-name order (model-00001-of-…, model-00002-of-…), whatever order the index lists them.
  shardNames.sort()

  const shards: HfShard[] = []
  for (const name of shardNames) {
    throwIfAborted(options.signal, WEIGHTS_INDEX_FILE)
    const firstTensor = Object.keys(weightMap).find((t) => weightMap[t] === name)
    const where = { ...indexWhere, field: `weight_map.${firstTensor}`, tensor: firstTensor }
    let real: string | undefined
    try {
      real = await resolveFile(dir, root, name, where)
    } catch (err) {
      if ((err as { problem?: string }).problem === 'missing_file') real = undefined
      else throw err
    }
    if (!real) {
      checkpointFail(
        'missing_shard',
        { file: name },
        `shard named in ${WEIGHTS_INDEX_FILE} is missing`
      )
    }
    shards.push(await openShard(real, name, options))
  }

  const tensors = new Map<string, HfTensorEntry>()
  for (const shard of shards) {
    for (const info of shard.safetensors.tensors.values()) {
      const seen = tensors.get(info.name)
      if (seen) {
        checkpointFail(
          'duplicate_tensor',
          { file: shard.file, tensor: info.name },
          `also in ${seen.file}; a tensor may be in one shard only`
        )
      }
      tensors.set(info.name, { ...info, file: shard.file })
    }
  }
  for (const [tensor, file] of Object.entries(weightMap) as [string, string][]) {
    const entry = tensors.get(tensor)
    if (!entry || entry.file !== file) {
      const elsewhere = entry ? ` (it is in ${entry.file})` : ''
      checkpointFail(
        'missing_tensor',
        { file, tensor },
        `listed in ${WEIGHTS_INDEX_FILE} for this shard, which does not hold it${elsewhere}`
      )
    }
  }
  let totalBytes = 0
  for (const s of shards) totalBytes += s.tensorBytes
  const metadata = isPlainObject(index.metadata) ? index.metadata : {}
  return { tensors, totalBytes, shards, index: { file: WEIGHTS_INDEX_FILE, metadata } }
}

async function refuseOtherWeights(dir: string): Promise<never> {
  let names: string[] = []
  try {
    names = await fs.readdir(dir)
  } catch {
    names = []
  }
  const where = { file: SINGLE_WEIGHTS_FILE }
  const has = (re: RegExp): string | undefined => names.find((n) => re.test(n))
  const shard = has(/^model-\d+-of-\d+\.safetensors$/)
  if (shard) {
    checkpointFail(
      'missing_file',
      { file: WEIGHTS_INDEX_FILE },
      `missing: found shard ${shard} but not the index that lists the shards' tensors`
    )
  }
  if (names.includes('adapter_model.safetensors') || names.includes('adapter_config.json')) {
    checkpointFail(
      'missing_file',
      where,
      'missing: this is a PEFT adapter folder (adapter_config.json), not a full model; import it as a donor adapter on its base model'
    )
  }
  const other =
    has(/^pytorch_model.*\.bin(\.index\.json)?$/) ??
    has(/\.(bin|pt|pth|ckpt|h5|msgpack|gguf)$/) ??
    has(/^model\.ckpt/)
  if (other) {
    checkpointFail(
      'not_safetensors',
      { file: other },
      `weights in this format cannot be read: safetensors are needed (model.safetensors or shards with ${WEIGHTS_INDEX_FILE}); ${CONVERT_HINT}`
    )
  }
  const someSafetensors = has(/\.safetensors$/)
  if (someSafetensors) {
    checkpointFail(
      'missing_file',
      where,
      `missing (found ${someSafetensors}); the folder must be laid out as save_pretrained writes it: ${SINGLE_WEIGHTS_FILE}, or shards with ${WEIGHTS_INDEX_FILE}`
    )
  }
  checkpointFail(
    'missing_file',
    where,
    `missing, and no ${WEIGHTS_INDEX_FILE} either: no model weights in ${dir}`
  )
}
