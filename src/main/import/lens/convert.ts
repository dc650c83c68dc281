/**
 * A predecessor lens checkpoint → a bundle lens (docs/bundle-format.md "lens.json"), exactly as the
 * predecessor's analyzer ran it on the group's base family (docs/import.md "Lens checkpoints" has the
 * table). Pure: decisions are made from the config and the base's family alone (`decideDecoder`,
 * `decideEncoder`, table-tested), then the tensors are assembled (`convertLens`).
 *
 * The bundle's rows live in the base graph's input space: the graph multiplies token rows by its
 * embedding scale and adds GPT-2's learned positions; every other row the engine feeds is used as
 * given. So prompt rows are stored × the scale the predecessor applied to them (Gemma-2's model
 * scales every input row, Gemma-3's lens code scales them explicitly: √d either way; GPT-2 and
 * Llama/Qwen not at all), and patch vectors as the predecessor wrote them into the residual.
 */
import type { ArchFamily, LensSpec } from '../../engine'
import { CheckpointError } from '../errors'
import { splitEncoderPrompt } from '../torch/config'
import type { F32Tensor, LensCheckpoint, LensTrainingConfig } from '../torch'
import type { GroupBase } from './base'

const DEC = 'config.trainable_components.decoder'
const ENC = 'config.trainable_components.encoder'

/**
 * Which of the predecessor's decoder code paths a family took (its `_patched_forward` branches):
 * GPT-2's; Gemma-2, Gemma-3 and Qwen2's shared one; and the Llama-style fallback for every other
 * model type (Llama, Mistral, Qwen3), which skips the patch before block 0 and patches every later
 * block whatever an int `patch_all_layers` says.
 */
export type DecoderBranch = 'gpt2' | 'gemma' | 'qwen2' | 'llama-style'

export function decoderBranch(family: ArchFamily, file: string): DecoderBranch {
  switch (family) {
    case 'gpt2':
      return 'gpt2'
    case 'gemma2':
    case 'gemma3':
      return 'gemma'
    case 'qwen2':
      return 'qwen2'
    case 'llama':
    case 'mistral':
    case 'qwen3':
      return 'llama-style'
    case 'prenorm-gpt':
      throw CheckpointError.at(
        'base_mismatch',
        file,
        undefined,
        "the group's base is the Workbench's built-in pre-norm GPT (the demo or a synthetic bundle), " +
          'not a Hugging Face model a lens could have been trained on'
      )
  }
}

/** One vector the projection graph writes: projection `source` applied to A, times `scale`, plus the slot's learned position row. */
export interface SlotVector {
  /** Per-layer projection index, or the single `proj`. */
  source: number | 'single'
  /** The predecessor's embedding scale on an input-only slot (Gemma), else 1. */
  scale: number
  /** GPT-2 without patching: the model adds `wpe[embedPos]` to the slot's row. */
  addPositionRow: boolean
}

export interface DecoderDecision {
  /** Vector l overwrites the residual at the slot before block l (Np = length ≥ 1). */
  vectors: SlotVector[]
  /** Multiplier of the prompt rows (the family's embedding scale, or 1). */
  promptScale: number
  notes: string[]
}

/**
 * How the predecessor's decoder used the activation on this base (seed-system.md §1.5.5), as the
 * bundle's patch vectors. Throws (naming the field) where its own decoder failed.
 */
export function decideDecoder(
  config: LensTrainingConfig,
  base: Pick<GroupBase, 'architecture' | 'layers' | 'embeddingScale'>,
  file: string
): DecoderDecision {
  const branch = decoderBranch(base.architecture, file)
  const { patchAllLayers: patch, perLayerProjections: perLayer, newDecoder } = config.decoder
  const L = base.layers
  const gemma = branch === 'gemma'
  const promptScale = gemma ? base.embeddingScale : 1
  const offset = perLayer && newDecoder ? 1 : 0
  // The slot's own row: `_apply_projection(layer_idx=-1)` = projection 0 (also with new_decoder).
  const slotSource: number | 'single' = perLayer ? 0 : 'single'
  const patched = (l: number): SlotVector => ({
    source: perLayer ? l + offset : 'single',
    scale: 1,
    addPositionRow: false
  })
  const notes: string[] = []

  if (patch === false || patch === 0) {
    if (branch === 'llama-style' && patch === 0) {
      // An int takes the patched path, whose Llama-style branch patches every block anyway.
      if (perLayer) {
        throw CheckpointError.at(
          'unsupported',
          file,
          `${DEC}.patch_all_layers`,
          `is 0 with per-layer projections on a ${base.architecture} base: the predecessor's ` +
            'Llama-style decoder indexed a projection for every block and failed, so there is nothing to reproduce'
        )
      }
      notes.push(
        `patch_all_layers is 0, but the predecessor's decoder patched every block of a ${base.architecture} base: all ${L} are patched`
      )
      return {
        vectors: Array.from({ length: L }, () => patched(0)),
        promptScale,
        notes
      }
    }
    if (base.architecture === 'gemma3' && patch === false) {
      throw CheckpointError.at(
        'unsupported',
        file,
        `${DEC}.patch_all_layers`,
        "is false on a Gemma-3 base: the predecessor's unpatched decoder path did not run for " +
          'Gemma-3 (it read hidden states the model does not return), so there is nothing to reproduce'
      )
    }
    // Input only: the slot's row enters block 0 as the model would see it — scaled by Gemma's
    // normaliser (Gemma-2's model, or Gemma-3's patched path with no block patched), with GPT-2's
    // learned position added.
    notes.push(
      `patch_all_layers is ${JSON.stringify(patch)}: the activation enters only as the slot's input row` +
        (gemma ? ' (× √d, as the model scales it)' : '') +
        (branch === 'gpt2' ? " (plus GPT-2's learned position at the slot)" : '')
    )
    return {
      vectors: [{ source: slotSource, scale: promptScale, addPositionRow: branch === 'gpt2' }],
      promptScale,
      notes
    }
  }

  if (patch === true) {
    return { vectors: Array.from({ length: L }, (_, l) => patched(l)), promptScale, notes }
  }
  if (branch !== 'llama-style' || patch === L) {
    if (branch === 'llama-style' && perLayer && newDecoder) {
      // The fallback never patches block 0, so the slot keeps projection 0 there.
      return {
        vectors: Array.from({ length: L }, (_, l) => (l === 0 ? patched(-1) : patched(l))),
        promptScale,
        notes
      }
    }
    return { vectors: Array.from({ length: patch }, (_, l) => patched(l)), promptScale, notes }
  }
  if (perLayer) {
    throw CheckpointError.at(
      'unsupported',
      file,
      `${DEC}.patch_all_layers`,
      `is ${patch} with per-layer projections on a ${base.architecture} base of ${L} layers: the ` +
        "predecessor's Llama-style decoder indexed a projection for every block and failed past the " +
        `${patch + offset} it had, so there is nothing to reproduce`
    )
  }
  notes.push(
    `patch_all_layers is ${patch}, but the predecessor's decoder patched every block of a ${base.architecture} base: all ${L} are patched`
  )
  return { vectors: Array.from({ length: L }, () => patched(0)), promptScale, notes }
}

export interface EncoderDecision {
  /** The block whose output is the reconstruction; −1 = the residual entering block 0. */
  outputLayer: number
  /** Multiplier of the soft prompt rows and the special last-token vector. */
  rowScale: number
  notes: string[]
}

/** How the predecessor's encoder ran on this base (seed-system.md §1.5.7). */
export function decideEncoder(
  config: LensTrainingConfig,
  base: Pick<GroupBase, 'architecture' | 'layers' | 'embeddingScale'>,
  file: string
): EncoderDecision {
  const gemma = base.architecture === 'gemma2' || base.architecture === 'gemma3'
  const written = config.encoder.outputLayer
  const L = base.layers
  const notes: string[] = []
  // −2 is the predecessor's pre-hook on block 0; other negatives index from the end.
  const outputLayer = written === -2 ? -1 : written < 0 ? L + written : written
  if (written !== -2 && (outputLayer < 0 || outputLayer >= L)) {
    throw CheckpointError.at(
      'invalid',
      file,
      `${ENC}.output_layer`,
      `is ${written} but the base has ${L} layers`
    )
  }
  if (written === -2)
    notes.push('encoder output_layer -2: the reconstruction is the input to block 0')
  const { postfix } = splitEncoderPrompt(config.encoderPromptText)
  if (config.encoder.addCurrentToken && config.encoderPromptText !== null && postfix !== '') {
    throw CheckpointError.at(
      'unsupported',
      file,
      `${ENC}.add_current_token`,
      'is true and soft_prompt_init_text has text after <text>: the predecessor put the current ' +
        "token after the postfix soft prompt, the Workbench's encoder puts it before (docs/bundle-format.md)"
    )
  }
  return { outputLayer, rowScale: gemma ? base.embeddingScale : 1, notes }
}

/** Options the conversion needs besides the checkpoint and the base. */
export interface ConvertLensOptions {
  id: string
  name: string
  description?: string
  /** `base` or the donor id the lens reads activations from. */
  orig: string
  /**
   * GPT-2 without patching: the base's learned position row at the slot (`wpe[embedPos]`), which
   * the predecessor's model added to the slot's row. `needsSlotPositionRow` says when.
   */
  slotPositionRow?: Float32Array
}

/** Whether `convertLens` needs the base's learned position row at the slot. */
export function needsSlotPositionRow(decision: DecoderDecision): boolean {
  return decision.vectors.some((v) => v.addPositionRow)
}

export interface ConvertedLens {
  spec: Omit<LensSpec, 'provenance'>
  notes: string[]
}

function scaled(t: F32Tensor | null, scale: number): Float32Array {
  if (!t) return new Float32Array(0)
  if (scale === 1) return Float32Array.from(t.data)
  return Float32Array.from(t.data, (x) => x * scale)
}

/** torch's (out, in) matrix → the (in, out) layout the projection and head graphs take. */
function transposed(m: Float32Array, d: number): Float32Array {
  const t = new Float32Array(d * d)
  for (let o = 0; o < d; o++) for (let i = 0; i < d; i++) t[i * d + o] = m[o * d + i]!
  return t
}

/** Builds the lens's tensors for the group's base. Throws `CheckpointError` naming the field. */
export function convertLens(
  checkpoint: LensCheckpoint,
  base: GroupBase,
  options: ConvertLensOptions
): ConvertedLens {
  const { config, file } = checkpoint
  const d = checkpoint.hiddenSize
  if (d !== base.hiddenSize) {
    throw CheckpointError.at(
      'base_mismatch',
      file,
      'models.decoder',
      `has hidden size ${d} but the group's base has ${base.hiddenSize}`
    )
  }
  const decoder = decideDecoder(config, base, file)
  const encoder = decideEncoder(config, base, file)

  // Decoder prefix: [left | slot | right], the slot's row a placeholder (vector 0 overwrites it).
  const left = scaled(checkpoint.decoder.promptLeft, decoder.promptScale)
  const right = scaled(checkpoint.decoder.promptRight, decoder.promptScale)
  const prefix = new Float32Array(left.length + d + right.length)
  prefix.set(left, 0)
  prefix.set(right, left.length + d)

  const projection = checkpoint.decoder.projection
  const matrix = (source: number | 'single'): { w: Float32Array; b: Float32Array } => {
    if (source === 'single' || !projection.perLayer) {
      return { w: projection.weight.data, b: projection.bias.data }
    }
    const n = projection.weight.shape[0]!
    if (source < 0 || source >= n) {
      throw CheckpointError.at(
        'invalid',
        file,
        'models.decoder.proj_weight',
        `holds ${n} projections; projection ${source} is needed`
      )
    }
    return {
      w: projection.weight.data.subarray(source * d * d, (source + 1) * d * d),
      b: projection.bias.data.subarray(source * d, (source + 1) * d)
    }
  }
  const np = decoder.vectors.length
  const allSingle = decoder.vectors.every(
    (v) => v.source === 'single' && v.scale === 1 && !v.addPositionRow
  )
  let weights: Float32Array
  let bias: Float32Array
  if (allSingle) {
    // One projection for every block: stored once (the projection graph repeats its vector).
    const { w, b } = matrix('single')
    weights = transposed(w, d)
    bias = Float32Array.from(b)
  } else {
    weights = new Float32Array(np * d * d)
    bias = new Float32Array(np * d)
    decoder.vectors.forEach((v, l) => {
      const { w, b } = matrix(v.source)
      const t = transposed(w, d)
      if (v.scale !== 1) for (let i = 0; i < t.length; i++) t[i] = t[i]! * v.scale
      weights.set(t, l * d * d)
      for (let j = 0; j < d; j++) bias[l * d + j] = b[j]! * v.scale
      if (v.addPositionRow) {
        const row = options.slotPositionRow
        if (!row || row.length !== d) {
          throw new Error(
            "convertLens: the base's learned position row at the slot is needed (needsSlotPositionRow)"
          )
        }
        for (let j = 0; j < d; j++) bias[l * d + j] = bias[l * d + j]! + row[j]!
      }
    })
  }

  const enc = checkpoint.encoder
  const head = enc.projection
    ? {
        weight: transposed(enc.projection.weight.data, d),
        bias: Float32Array.from(enc.projection.bias.data)
      }
    : undefined
  const suffix = enc.softPromptPostfix ? scaled(enc.softPromptPostfix, encoder.rowScale) : undefined
  const lastRowAdd = enc.specialLastTokenVector
    ? scaled(enc.specialLastTokenVector, encoder.rowScale)
    : undefined
  return {
    spec: {
      id: options.id,
      name: options.name,
      description: options.description,
      layer: config.layer,
      explanationTokens: config.explanationTokens,
      orig: options.orig,
      decoder: {
        prefix,
        embedPos: checkpoint.decoder.embedPos,
        patchLayers: np,
        weights,
        bias
      },
      encoder: {
        outputLayer: encoder.outputLayer,
        prefix: scaled(enc.softPrompt, encoder.rowScale),
        suffix,
        addCurrentToken: enc.addCurrentToken,
        lastRowAdd,
        head
      }
    },
    notes: [...decoder.notes, ...encoder.notes]
  }
}
