/**
 * Is this lens checkpoint for this group? The checkpoint names its base (`model_name`) and its
 * shapes say d and (with per-layer projections on every block) the layer count; the group's
 * manifest says the same of its base. Pure: every refusal names both models.
 */
import type { ArchFamily } from '../../engine'
import { CheckpointError } from '../errors'
import type { LensTrainingConfig } from '../torch'

/** What the conversion needs to know of the group's base (its manifest reference). */
export interface GroupBase {
  /** The group's id, for messages. */
  groupId: string
  /** The model id inside the group (`base`, or a donor id). */
  id: string
  /** The Hugging Face name recorded at import (`name` in manifest.json), when there is one. */
  name: string | null
  architecture: ArchFamily
  hiddenSize: number
  layers: number
  vocabSize: number
  /** What the base graph multiplies token-embedding rows by (√d as float32 for Gemma, else 1). */
  embeddingScale: number
}

/**
 * A model name reduced to what two spellings of the same model share: the last path segment,
 * lower-cased (`google/gemma-2-9b`, `/models/gemma-2-9b/` and the Hugging Face cache folder
 * `…/models--google--gemma-2-9b/snapshots/<rev>` all give `gemma-2-9b`).
 */
export function canonicalModelName(name: string): string {
  const parts = name
    .trim()
    .split(/[\\/]+/)
    .filter((p) => p !== '')
  const cache = parts.findLast((p) => /^models--.+--.+$/.test(p))
  if (cache) return cache.slice(cache.lastIndexOf('--') + 2).toLowerCase()
  return (parts[parts.length - 1] ?? '').toLowerCase()
}

export function sameModelName(a: string, b: string): boolean {
  const ca = canonicalModelName(a)
  return ca !== '' && ca === canonicalModelName(b)
}

function describeBase(base: GroupBase): string {
  return `${base.name ?? `an unnamed ${base.architecture} model`} (d ${base.hiddenSize}, ${base.layers} layers)`
}

/**
 * Refuses a checkpoint whose base is not the group's: `model_name` against the recorded name (when
 * the group has one), d, and the layer count the projections imply. `layers` is null when the
 * checkpoint does not say.
 */
export function checkLensBase(
  planned: { file: string; config: LensTrainingConfig; hiddenSize: number; layers: number | null },
  base: GroupBase
): void {
  const { config } = planned
  const lens = `${config.modelName}${planned.layers !== null ? ` (d ${planned.hiddenSize}, ${planned.layers} layers)` : ` (d ${planned.hiddenSize})`}`
  const refuse = (field: string, why: string): never => {
    throw CheckpointError.at(
      'base_mismatch',
      planned.file,
      field,
      `the lens was trained on ${lens} but group "${base.groupId}" has ${describeBase(base)}: ${why}; ` +
        'import it into a group of its own base'
    )
  }
  if (base.name !== null && !sameModelName(config.modelName, base.name)) {
    refuse('config.model_name', 'the model names differ')
  }
  if (planned.hiddenSize !== base.hiddenSize) refuse('models.decoder', 'the hidden sizes differ')
  if (planned.layers !== null && planned.layers !== base.layers) {
    refuse('models.decoder.proj_weight', 'the layer counts differ')
  }
  if (config.layer >= base.layers) {
    refuse('config.layer_l', `layer ${config.layer} does not exist in the group's base`)
  }
}

/** The decoder's saved prompt ids must be tokens of the base's vocabulary. */
export function checkPromptIds(
  file: string,
  promptIds: readonly number[] | null,
  config: LensTrainingConfig,
  base: GroupBase
): void {
  if (!promptIds) return
  const bad = promptIds.find((id) => id < 0 || id >= base.vocabSize)
  if (bad === undefined) return
  throw CheckpointError.at(
    'base_mismatch',
    file,
    'models.decoder.prompt_ids',
    `holds token id ${bad} but the base of group "${base.groupId}" (${base.name ?? base.architecture}) ` +
      `has a ${base.vocabSize}-token vocabulary: the lens was trained with another tokenizer (${config.tokenizerName})`
  )
}
