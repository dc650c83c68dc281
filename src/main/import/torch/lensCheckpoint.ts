/**
 * Reads one of the predecessor's lens checkpoints (`torch.save` of `{"step", "models":
 * {decoder, encoder}, "optim", "rng_states", "config", …}`) without executing anything: the
 * archive is opened, `data.pkl` is unpickled into plain data and lazy tensor references, the
 * config and the decoder/encoder state dicts are validated against each other (keys, shapes, d,
 * layer indices) before a tensor byte is read, and only then are exactly the lens tensors read.
 * docs/lens-checkpoints.md is the prose version.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import {
  DEFAULT_ARCHIVE_LIMITS,
  TorchArchive,
  describeNonRegular,
  statRegularFile
} from './archive'
import { parseLensConfig, splitDecoderPrompt, splitEncoderPrompt, toJson } from './config'
import { CheckpointError, throwIfAborted } from '../errors'
import { PyDict, TensorRef, describe, unpickle, type PickleValue } from './pickle'
import {
  bytesToRead,
  checkView,
  readFloatTensor,
  readInt64Tensor,
  type FloatDtype
} from './tensors'
import type {
  F32Tensor,
  LensCheckpoint,
  LensTrainingConfig,
  ReadLensCheckpointOptions
} from './types'

/** The predecessor's training script saved `decoder`/`encoder`; its `checkpoint.save` docs say `dec`/`enc`. */
const MODEL_KEYS = { decoder: ['decoder', 'dec'], encoder: ['encoder', 'enc'] } as const
/** torch.compile'd modules prefix every key; the predecessor's loader stripped it. */
const COMPILED_PREFIX = '_orig_mod.'

const DECODER_TENSORS = new Set([
  'proj_weight',
  'proj_bias',
  'proj.weight',
  'proj.bias',
  'prompt_left_emb',
  'prompt_right_emb',
  'prompt_ids'
])
const ENCODER_TENSORS = new Set([
  'proj.weight',
  'proj.bias',
  'soft_prompt_embeddings',
  'soft_prompt_embeddings_postfix',
  'special_last_token_vector'
])

/** One state dict, keys without the compile prefix, each pointing back at its key as written. */
interface StateDict {
  /** `models.decoder` or `models.dec`, for messages. */
  path: string
  tensors: Map<string, { ref: TensorRef; written: string }>
}

type Fail = (reason: 'invalid' | 'unsupported', where: string, message: string) => never

/**
 * Reads and validates a lens checkpoint file. Throws `CheckpointError` (and nothing else) with
 * the file and the offending record, key or config field named.
 */
export async function readLensCheckpoint(
  file: string,
  options: ReadLensCheckpointOptions = {}
): Promise<LensCheckpoint> {
  const abs = path.resolve(file)
  try {
    return await readChecked(abs, options)
  } catch (err) {
    if (err instanceof CheckpointError) throw err
    // An error boundary: whatever slipped through is still reported as this file's problem.
    throw CheckpointError.at(
      'unreadable',
      abs,
      undefined,
      `unexpected error: ${(err as Error).message}`
    )
  }
}

async function readChecked(
  file: string,
  options: ReadLensCheckpointOptions
): Promise<LensCheckpoint> {
  const { signal, onProgress } = options
  const archive = await TorchArchive.open(file, { signal })
  try {
    const pickleRecord = 'data.pkl'
    const pickleBytes = archive.recordSize(pickleRecord) ?? 0
    onProgress?.({ phase: 'pickle', bytesRead: 0, bytesTotal: pickleBytes })
    const raw = await archive.readRecord(
      pickleRecord,
      DEFAULT_ARCHIVE_LIMITS.maxPickleBytes,
      signal
    )
    throwIfAborted(signal, file)
    const { value: root, placeholderTypes } = unpickle(raw, {
      file,
      record: archive.recordName(pickleRecord)
    })
    onProgress?.({ phase: 'pickle', bytesRead: pickleBytes, bytesTotal: pickleBytes })

    const fail: Fail = (reason, where, message) => {
      throw CheckpointError.at(reason, file, where, message)
    }
    if (!(root instanceof PyDict))
      fail('invalid', 'data.pkl', `holds ${describe(root)}, expected the checkpoint dict`)
    const config = parseLensConfig(root.get('config'), file)
    const configJson = toJson(root.get('config') ?? null, file)
    const step = readStep(root.get('step'), fail)

    const models = root.get('models')
    if (!(models instanceof PyDict)) {
      fail(
        'invalid',
        'models',
        models === undefined
          ? 'the checkpoint has no "models"'
          : `is ${describe(models)}, expected a dict`
      )
    }
    const decoder = stateDict(models, 'decoder', fail)
    const encoder = stateDict(models, 'encoder', fail)
    refuseUnknownKeys(decoder, DECODER_TENSORS, fail)
    refuseUnknownKeys(encoder, ENCODER_TENSORS, fail)

    let plan = planLens(config, decoder, encoder, undefined, fail)
    if (options.check) {
      await options.check({
        file,
        step,
        config,
        hiddenSize: plan.hiddenSize,
        layers: plan.layers
      })
    }
    if (options.base) plan = planLens(config, decoder, encoder, options.base, fail)
    for (const item of plan.reads) checkView(archive, item.ref, item.where)

    const bytesTotal = plan.reads.reduce((sum, item) => sum + bytesToRead(item.ref), 0)
    let done = 0
    const read = new Map<string, F32Tensor>()
    for (const item of plan.reads.filter((r) => r.kind === 'float')) {
      throwIfAborted(signal, file)
      onProgress?.({ phase: 'tensors', bytesRead: done, bytesTotal, key: item.where })
      const data = await readFloatTensor(archive, item.ref, item.where, {
        signal,
        onBytes: (n) => {
          done += n
        }
      })
      refuseNonFinite(data, item, fail)
      read.set(item.where, {
        data,
        shape: [...item.ref.shape],
        sourceDtype: item.ref.storage.dtype as FloatDtype
      })
    }
    let promptIds: number[] | null = null
    const idsItem = plan.reads.find((r) => r.kind === 'int64')
    if (idsItem) {
      promptIds = await readInt64Tensor(archive, idsItem.ref, idsItem.where, {
        signal,
        onBytes: (n) => {
          done += n
        }
      })
      if (promptIds.length === 0) promptIds = null
      else if (promptIds.length !== plan.embedPos + 1 + plan.promptRightRows) {
        fail(
          'invalid',
          idsItem.where,
          `holds ${promptIds.length} ids but the prompt tensors have ${plan.embedPos} + 1 + ` +
            `${plan.promptRightRows} rows`
        )
      }
    }
    onProgress?.({ phase: 'tensors', bytesRead: done, bytesTotal })

    const tensor = (key: string | undefined): F32Tensor | null =>
      key ? (read.get(key) ?? null) : null
    const decProjection = config.decoder.perLayerProjections
      ? {
          perLayer: true as const,
          weight: tensor(plan.keys.decProjWeight) as F32Tensor,
          bias: tensor(plan.keys.decProjBias) as F32Tensor
        }
      : {
          perLayer: false as const,
          weight: tensor(plan.keys.decProjWeight) as F32Tensor,
          bias: tensor(plan.keys.decProjBias) as F32Tensor
        }
    const encWeight = tensor(plan.keys.encProjWeight)
    const encBias = tensor(plan.keys.encProjBias)
    return {
      file,
      step,
      config,
      configJson,
      hiddenSize: plan.hiddenSize,
      layers: plan.layers,
      decoder: {
        projection: decProjection,
        patchLayers: plan.patchLayers,
        projectionOffset: config.decoder.newDecoder && config.decoder.perLayerProjections ? 1 : 0,
        promptLeft: tensor(plan.keys.promptLeft),
        promptRight: tensor(plan.keys.promptRight),
        embedPos: plan.embedPos,
        promptIds
      },
      encoder: {
        softPrompt: tensor(plan.keys.softPrompt),
        softPromptPostfix: tensor(plan.keys.softPromptPostfix),
        projection: encWeight && encBias ? { weight: encWeight, bias: encBias } : null,
        specialLastTokenVector: tensor(plan.keys.special),
        outputLayer: plan.outputLayer,
        addCurrentToken: config.encoder.addCurrentToken
      },
      stats: {
        bytesRead: archive.bytesRead,
        recordsRead: [...archive.recordsRead].sort(),
        placeholderTypes,
        formatVersion: archive.formatVersion
      }
    }
  } finally {
    await archive.close()
  }
}

function readStep(step: PickleValue | undefined, fail: Fail): number | null {
  if (step === undefined || step === null) return null
  if (typeof step !== 'number' || !Number.isSafeInteger(step))
    fail('invalid', 'step', `is ${describe(step)}, expected an int`)
  return step
}

function stateDict(models: PyDict, which: 'decoder' | 'encoder', fail: Fail): StateDict {
  const present = MODEL_KEYS[which].filter((k) => models.has(k))
  if (present.length === 0) {
    fail(
      'invalid',
      `models.${which}`,
      `the checkpoint has no ${which} state dict (looked for models.${MODEL_KEYS[which].join(' / models.')})`
    )
  }
  if (present.length > 1)
    fail(
      'invalid',
      `models.${which}`,
      `both models.${present.join(' and models.')} are present: ambiguous`
    )
  const key = present[0]!
  const name = `models.${key}`
  const dict = models.get(key)
  if (!(dict instanceof PyDict))
    fail('invalid', name, `is ${describe(dict)}, expected a state dict`)
  const tensors = new Map<string, { ref: TensorRef; written: string }>()
  for (const [key, value] of dict.entries()) {
    if (typeof key !== 'string') fail('invalid', name, `has a key that is ${describe(key)}`)
    const stripped = key.startsWith(COMPILED_PREFIX) ? key.slice(COMPILED_PREFIX.length) : key
    if (!(value instanceof TensorRef))
      fail('invalid', `${name}.${key}`, `is ${describe(value)}, expected a tensor`)
    if (tensors.has(stripped))
      fail('invalid', `${name}.${key}`, 'appears both with and without the _orig_mod. prefix')
    tensors.set(stripped, { ref: value, written: `${name}.${key}` })
  }
  return { path: name, tensors }
}

function refuseUnknownKeys(dict: StateDict, known: ReadonlySet<string>, fail: Fail): void {
  for (const [key, { written }] of dict.tensors) {
    if (known.has(key)) continue
    if (key.startsWith('base.') || key.includes('.base.')) {
      fail(
        'unsupported',
        written,
        'the lens carries trained base-model weights (base_model / embedding_head / ' +
          "pos_embeddings were trainable); the Workbench runs the group's unchanged base"
      )
    }
    if (key.startsWith('activation_pos_embedder.')) {
      fail(
        'unsupported',
        written,
        'an activation positional embedder (subtract_add_pos_embeddings), which the Workbench does not reproduce'
      )
    }
    if (key.startsWith('out.'))
      fail('unsupported', written, 'a trained output head, which the Workbench does not reproduce')
    fail(
      'unsupported',
      written,
      `an unknown lens parameter; the reader knows ${[...known].join(', ')}`
    )
  }
}

interface PlannedRead {
  kind: 'float' | 'int64'
  ref: TensorRef
  /** The key as written, e.g. `models.decoder.proj_weight`. */
  where: string
}

interface Plan {
  reads: PlannedRead[]
  hiddenSize: number
  layers: number | null
  patchLayers: number | null
  embedPos: number
  promptRightRows: number
  outputLayer: number
  keys: Partial<
    Record<
      | 'decProjWeight'
      | 'decProjBias'
      | 'promptLeft'
      | 'promptRight'
      | 'softPrompt'
      | 'softPromptPostfix'
      | 'encProjWeight'
      | 'encProjBias'
      | 'special',
      string
    >
  >
}

/**
 * Matches the config with the state dicts and checks every shape before anything is read:
 * which keys must exist, which must not, d everywhere, n against patch_all_layers and the layer
 * count, the layer indices against the layer count.
 */
function planLens(
  config: LensTrainingConfig,
  decoder: StateDict,
  encoder: StateDict,
  base: { hiddenSize: number; layers: number } | undefined,
  fail: Fail
): Plan {
  const reads: PlannedRead[] = []
  const keys: Plan['keys'] = {}
  const take = (dict: StateDict, key: string, required: boolean, why: string): TensorRef | null => {
    const entry = dict.tensors.get(key)
    if (!entry) {
      if (required) fail('invalid', `${dict.path}.${key}`, `is missing (${why})`)
      return null
    }
    if (!required) fail('invalid', entry.written, `is present but ${why}`)
    return entry.ref
  }
  const use = (dict: StateDict, key: string, slot: keyof Plan['keys']): void => {
    const entry = dict.tensors.get(key)
    if (!entry) return
    reads.push({ kind: 'float', ref: entry.ref, where: entry.written })
    keys[slot] = entry.written
  }
  const written = (dict: StateDict, key: string): string =>
    dict.tensors.get(key)?.written ?? `${dict.path}.${key}`
  const rank = (dict: StateDict, key: string, ref: TensorRef, n: number, what: string): void => {
    if (ref.shape.length !== n) {
      fail('invalid', written(dict, key), `has shape [${ref.shape.join(', ')}], expected ${what}`)
    }
  }

  // d comes from the decoder projection; every other tensor must agree with it.
  const perLayer = config.decoder.perLayerProjections
  const weightKey = perLayer ? 'proj_weight' : 'proj.weight'
  const biasKey = perLayer ? 'proj_bias' : 'proj.bias'
  const otherWeight = perLayer ? 'proj.weight' : 'proj_weight'
  const otherBias = perLayer ? 'proj.bias' : 'proj_bias'
  const perLayerWhy = `per_layer_projections is ${perLayer}`
  take(decoder, otherWeight, false, `${perLayerWhy}`)
  take(decoder, otherBias, false, `${perLayerWhy}`)
  const projWeight = take(decoder, weightKey, true, perLayerWhy) as TensorRef
  const projBias = take(decoder, biasKey, true, perLayerWhy) as TensorRef
  rank(decoder, weightKey, projWeight, perLayer ? 3 : 2, perLayer ? '(n, d, d)' : '(d, d)')
  const d = projWeight.shape[projWeight.shape.length - 1]!
  if (d < 1) fail('invalid', written(decoder, weightKey), 'has a zero hidden size')
  if (projWeight.shape[projWeight.shape.length - 2] !== d) {
    fail(
      'invalid',
      written(decoder, weightKey),
      `has shape [${projWeight.shape.join(', ')}]: not square`
    )
  }
  if (base && base.hiddenSize !== d) {
    fail(
      'invalid',
      written(decoder, weightKey),
      `has hidden size ${d} but the base has ${base.hiddenSize}`
    )
  }
  const expectBias = perLayer ? [projWeight.shape[0], d] : [d]
  if (projBias.shape.join(',') !== expectBias.join(',')) {
    fail(
      'invalid',
      written(decoder, biasKey),
      `has shape [${projBias.shape.join(', ')}], expected [${expectBias.join(', ')}]`
    )
  }

  // Layer count: given by the base, else implied by one projection per layer with patch-all.
  let layers = base?.layers ?? null
  const hasLayers = (): string =>
    base ? `the base has ${layers} layers` : `its per-layer projections imply ${layers} layers`
  const patch = config.decoder.patchAllLayers
  let patchLayers: number | null = patch === true ? layers : patch === false ? 0 : patch
  if (perLayer) {
    const n = projWeight.shape[0]!
    const offset = config.decoder.newDecoder ? 1 : 0
    if (patch === false) {
      // parseLensConfig refuses per-layer projections without patching.
      fail('unsupported', 'config.trainable_components.decoder.patch_all_layers', 'is false')
    } else if (patch === true) {
      if (layers === null) layers = n
      else if (n !== layers) {
        fail(
          'invalid',
          written(decoder, weightKey),
          `holds ${n} projections but patch_all_layers is true and ${hasLayers()}`
        )
      }
      patchLayers = layers
    } else if (n !== patch + offset) {
      fail(
        'invalid',
        written(decoder, weightKey),
        `holds ${n} projections but patch_all_layers is ${patch}` +
          (offset ? ' and new_decoder adds one' : '')
      )
    }
  }
  if (layers !== null) {
    if (patchLayers !== null && patchLayers > layers) {
      fail(
        'invalid',
        'config.trainable_components.decoder.patch_all_layers',
        `is ${patchLayers} but ${hasLayers()}`
      )
    }
    if (config.layer >= layers) {
      fail('invalid', 'config.layer_l', `is ${config.layer} but ${hasLayers()}`)
    }
  }
  use(decoder, weightKey, 'decProjWeight')
  use(decoder, biasKey, 'decProjBias')

  // Decoder prompt: a tensor on each side of <embed> exactly when the prompt has text there.
  const { left, right } = splitDecoderPrompt(config.decoderPrompt)
  const promptWhy = (side: string, has: boolean): string =>
    has ? `decoder_prompt has text ${side} <embed>` : `decoder_prompt has no text ${side} <embed>`
  const promptLeft = take(decoder, 'prompt_left_emb', left !== '', promptWhy('before', left !== ''))
  const promptRight = take(
    decoder,
    'prompt_right_emb',
    right !== '',
    promptWhy('after', right !== '')
  )
  const rows = (dict: StateDict, key: string, ref: TensorRef | null): number => {
    if (!ref) return 0
    rank(dict, key, ref, 2, '(rows, d)')
    if (ref.shape[1] !== d)
      fail('invalid', written(dict, key), `has width ${ref.shape[1]} but d is ${d}`)
    const n = ref.shape[0]!
    if (n < 1) fail('invalid', written(dict, key), 'has no rows')
    return n
  }
  const embedPos = rows(decoder, 'prompt_left_emb', promptLeft)
  const promptRightRows = rows(decoder, 'prompt_right_emb', promptRight)
  use(decoder, 'prompt_left_emb', 'promptLeft')
  use(decoder, 'prompt_right_emb', 'promptRight')
  const ids = decoder.tensors.get('prompt_ids')
  if (ids) {
    rank(decoder, 'prompt_ids', ids.ref, 1, '(n)')
    reads.push({ kind: 'int64', ref: ids.ref, where: ids.written })
  }

  // Encoder soft prompts: prefix from the init text (or a random one of soft_prompt_length).
  const enc = config.encoder
  const { prefix, postfix } = splitEncoderPrompt(config.encoderPromptText)
  const hasPrefix = config.encoderPromptText !== null ? prefix !== '' : enc.softPromptLength > 0
  const prefixWhy = hasPrefix
    ? 'the encoder has a soft prompt (soft_prompt_init_text / soft_prompt_length)'
    : 'the encoder config has no soft prompt'
  const softPrompt = take(encoder, 'soft_prompt_embeddings', hasPrefix, prefixWhy)
  rows(encoder, 'soft_prompt_embeddings', softPrompt)
  const hasPostfix = config.encoderPromptText !== null && postfix !== ''
  const postfixRef = take(
    encoder,
    'soft_prompt_embeddings_postfix',
    hasPostfix,
    hasPostfix
      ? 'soft_prompt_init_text has text after <text>'
      : 'soft_prompt_init_text has no text after <text>'
  )
  rows(encoder, 'soft_prompt_embeddings_postfix', postfixRef)
  use(encoder, 'soft_prompt_embeddings', 'softPrompt')
  use(encoder, 'soft_prompt_embeddings_postfix', 'softPromptPostfix')

  const projWhy = `use_projection_layer is ${enc.useProjectionLayer}`
  const encWeight = take(encoder, 'proj.weight', enc.useProjectionLayer, projWhy)
  const encBias = take(encoder, 'proj.bias', enc.useProjectionLayer, projWhy)
  if (encWeight && encBias) {
    if (encWeight.shape.join(',') !== `${d},${d}`) {
      fail(
        'invalid',
        written(encoder, 'proj.weight'),
        `has shape [${encWeight.shape.join(', ')}], expected [${d}, ${d}]`
      )
    }
    if (encBias.shape.join(',') !== `${d}`) {
      fail(
        'invalid',
        written(encoder, 'proj.bias'),
        `has shape [${encBias.shape.join(', ')}], expected [${d}]`
      )
    }
    use(encoder, 'proj.weight', 'encProjWeight')
    use(encoder, 'proj.bias', 'encProjBias')
  }
  const special = take(
    encoder,
    'special_last_token_vector',
    enc.specialLastTokenVector,
    `special_last_token_vector is ${enc.specialLastTokenVector}`
  )
  if (special && special.shape.join(',') !== `${d}`) {
    fail(
      'invalid',
      written(encoder, 'special_last_token_vector'),
      `has shape [${special.shape.join(', ')}], expected [${d}]`
    )
  }
  use(encoder, 'special_last_token_vector', 'special')

  let outputLayer = enc.outputLayer
  if (layers !== null && outputLayer !== -2) {
    const resolved = outputLayer < 0 ? layers + outputLayer : outputLayer
    if (resolved < 0 || resolved >= layers) {
      fail(
        'invalid',
        'config.trainable_components.encoder.output_layer',
        `is ${outputLayer} but ${hasLayers()}`
      )
    }
    outputLayer = resolved
  }
  return { reads, hiddenSize: d, layers, patchLayers, embedPos, promptRightRows, outputLayer, keys }
}

function refuseNonFinite(data: Float32Array, item: PlannedRead, fail: Fail): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      fail('invalid', item.where, `element ${i} is ${data[i]}: the lens weights cannot be trusted`)
    }
  }
}

export interface FoundCheckpoint {
  /** The checkpoint file to read. */
  path: string
  /** Newer `*.pt` files that were skipped, and why. */
  skipped: { path: string; reason: string }[]
  /** A sentence for the user when a choice was made (folder → newest readable), else null. */
  note: string | null
}

/**
 * A file → itself. A folder → its newest `*.pt` by modification time; when that one cannot be
 * opened as a torch archive (the predecessor fell back on "PytorchStreamReader failed", e.g. a
 * checkpoint still being written), the next newest, and so on, saying which were skipped.
 * FIFOs and other non-regular files are refused (or skipped) before anything opens them.
 */
export async function findCheckpoint(
  dirOrFile: string,
  options: { signal?: AbortSignal } = {}
): Promise<FoundCheckpoint> {
  const abs = path.resolve(dirOrFile)
  let stats
  try {
    stats = await fs.stat(abs)
  } catch (err) {
    throw CheckpointError.at('unreadable', abs, undefined, (err as Error).message)
  }
  if (!stats.isDirectory()) {
    await statRegularFile(abs)
    return { path: abs, skipped: [], note: null }
  }
  const names = await fs.readdir(abs)
  const candidates: { path: string; mtimeMs: number }[] = []
  const skipped: { path: string; reason: string }[] = []
  for (const name of names) {
    if (!name.endsWith('.pt')) continue
    const p = path.join(abs, name)
    try {
      const s = await fs.stat(p)
      const bad = describeNonRegular(s)
      if (bad) skipped.push({ path: p, reason: bad })
      else candidates.push({ path: p, mtimeMs: s.mtimeMs })
    } catch (err) {
      skipped.push({ path: p, reason: (err as Error).message })
    }
  }
  if (candidates.length === 0) {
    throw CheckpointError.at(
      'unreadable',
      abs,
      undefined,
      `no *.pt checkpoint files in this folder${skipped.length ? ` (${skipped.length} skipped: ${skipped[0]!.reason})` : ''}`
    )
  }
  candidates.sort((a, b) => b.mtimeMs - a.mtimeMs || a.path.localeCompare(b.path))
  const unreadable: { path: string; reason: string }[] = []
  const newestUnreadable = (): string => unreadable[0]?.reason ?? 'unknown'
  for (const candidate of candidates) {
    throwIfAborted(options.signal, abs)
    try {
      const archive = await TorchArchive.open(candidate.path, options)
      await archive.close()
    } catch (err) {
      if (err instanceof CheckpointError && err.problem === 'cancelled') throw err
      unreadable.push({
        path: candidate.path,
        reason: err instanceof Error ? err.message : String(err)
      })
      continue
    }
    const note = unreadable.length
      ? `newest checkpoint ${path.basename(unreadable[0]!.path)} is unreadable (${newestUnreadable()}); ` +
        `using ${path.basename(candidate.path)}` +
        (unreadable.length > 1 ? ` after skipping ${unreadable.length} unreadable files` : '')
      : candidates.length > 1
        ? `using the newest of ${candidates.length} checkpoints: ${path.basename(candidate.path)}`
        : null
    return { path: candidate.path, skipped: [...unreadable, ...skipped], note }
  }
  throw CheckpointError.at(
    'unreadable',
    abs,
    undefined,
    `none of the ${candidates.length} *.pt files opens as a torch checkpoint; the newest: ${newestUnreadable()}`
  )
}
