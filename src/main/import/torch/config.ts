/**
 * The training config inside a lens checkpoint → `LensTrainingConfig`, with the predecessor's
 * defaults (its DecoderConfig / EncoderConfig dataclasses) and refusals for what the Workbench
 * cannot reproduce. Pure: no I/O; every error names the config field.
 */
import { CheckpointError } from '../errors'
import {
  GlobalRef,
  Placeholder,
  PyDict,
  PySet,
  PyTuple,
  StorageRef,
  TensorRef,
  describe,
  type PickleValue
} from './pickle'
import type { JsonValue, LensTrainingConfig } from './types'

class Fields {
  constructor(
    readonly file: string,
    readonly root: PyDict
  ) {}

  fail(reason: 'invalid' | 'unsupported', field: string, message: string): never {
    throw CheckpointError.at(reason, this.file, `config.${field}`, message)
  }

  /** The value at a dotted path, or undefined when a part is absent (or None on the way). */
  get(field: string): PickleValue | undefined {
    let node: PickleValue | undefined = this.root
    const parts = field.split('.')
    for (let i = 0; i < parts.length; i++) {
      if (node === undefined || node === null) return undefined
      if (!(node instanceof PyDict)) {
        this.fail('invalid', parts.slice(0, i).join('.'), `is ${describe(node)}, expected a dict`)
      }
      node = node.get(parts[i]!)
    }
    if (node instanceof Placeholder || node instanceof GlobalRef) {
      this.fail('invalid', field, `is ${describe(node)}, which the reader does not interpret`)
    }
    return node
  }

  string(field: string): string | null {
    const v = this.get(field)
    if (v === undefined || v === null) return null
    if (typeof v !== 'string') this.fail('invalid', field, `is ${describe(v)}, expected a string`)
    return v
  }

  int(field: string, fallback?: number): number {
    const v = this.get(field)
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail('invalid', field, 'is missing')
      return fallback
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      this.fail(
        'invalid',
        field,
        `is ${describe(v)}${typeof v === 'number' ? ` (${v})` : ''}, expected an int`
      )
    }
    return v
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.get(field)
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'boolean')
      this.fail('invalid', field, `is ${describe(v)}, expected true or false`)
    return v
  }

  number(field: string, fallback: number): number {
    const v = this.get(field)
    if (v === undefined || v === null) return fallback
    if (typeof v !== 'number') this.fail('invalid', field, `is ${describe(v)}, expected a number`)
    return v
  }
}

const DEC = 'trainable_components.decoder'
const ENC = 'trainable_components.encoder'

/** Reads and validates the fields the analysis needs. */
export function parseLensConfig(config: PickleValue | undefined, file: string): LensTrainingConfig {
  if (!(config instanceof PyDict)) {
    throw CheckpointError.at(
      'invalid',
      file,
      'config',
      config === undefined
        ? 'the checkpoint has no training config ("config"), so its layer and prompts are unknown'
        : `is ${describe(config)}, expected a dict`
    )
  }
  const f: Fields = new Fields(file, config)

  const layer = f.int('layer_l')
  if (layer < 0) f.fail('invalid', 'layer_l', `is ${layer}; a block index is ≥ 0`)
  const explanationTokens = f.int('t_text')
  if (explanationTokens < 1 || explanationTokens > 256) {
    f.fail(
      'invalid',
      't_text',
      `is ${explanationTokens}; the Workbench reads 1–256 explanation tokens`
    )
  }
  const modelName = f.string('model_name') ?? 'gpt2'

  // Decoder --------------------------------------------------------------------------------
  // The predecessor's DecoderConfig: default false; "just_input" means 0; true = every block,
  // n = blocks 0..n−1, false / 0 = the activation only enters as the slot's input row.
  const patchRaw = f.get(`${DEC}.patch_all_layers`)
  let patchAllLayers: boolean | number
  if (patchRaw === undefined || patchRaw === null) patchAllLayers = false
  else if (typeof patchRaw === 'boolean') patchAllLayers = patchRaw
  else if (patchRaw === 'just_input') patchAllLayers = 0
  else if (typeof patchRaw === 'number' && Number.isSafeInteger(patchRaw) && patchRaw >= 0) {
    patchAllLayers = patchRaw
  } else {
    f.fail(
      'invalid',
      `${DEC}.patch_all_layers`,
      `is ${describe(patchRaw)}${typeof patchRaw === 'number' ? ` (${patchRaw})` : ''}; expected true, false, "just_input" or an int ≥ 0`
    )
  }
  const perLayerProjections = f.bool(`${DEC}.per_layer_projections`, false)
  const newDecoder = f.bool(`${DEC}.new_decoder`, false)
  if (newDecoder && perLayerProjections && patchAllLayers === true) {
    f.fail(
      'invalid',
      `${DEC}.new_decoder`,
      'with patch_all_layers true the predecessor indexed past its last projection'
    )
  }
  if (perLayerProjections && (patchAllLayers === false || (patchAllLayers === 0 && !newDecoder))) {
    f.fail(
      'unsupported',
      `${DEC}.patch_all_layers`,
      `is ${JSON.stringify(patchRaw ?? false)} with per_layer_projections: the predecessor's decoder ` +
        'then has no projection for the activation and fails when it analyses, so there is nothing to reproduce'
    )
  }
  if (f.bool(`${DEC}.subtract_add_pos_embeddings`, false)) {
    f.fail(
      'unsupported',
      `${DEC}.subtract_add_pos_embeddings`,
      'is true: the decoder subtracts a learned positional embedding from the activation, which the Workbench does not reproduce'
    )
  }
  if (f.bool(`${DEC}.output_head`, false)) {
    f.fail(
      'unsupported',
      `${DEC}.output_head`,
      'is true: a trained output head (the predecessor itself refused it)'
    )
  }

  // Encoder --------------------------------------------------------------------------------
  if (!f.bool(`${ENC}.use_base_model`, true)) {
    f.fail(
      'unsupported',
      `${ENC}.use_base_model`,
      'is false: the encoder projects the last embedding row without running the base, which the Workbench does not reproduce'
    )
  }
  if (f.bool(`${ENC}.subtract_add_pos_embeddings`, false)) {
    f.fail(
      'unsupported',
      `${ENC}.subtract_add_pos_embeddings`,
      'is true: the encoder adds a learned positional embedding to its output, which the Workbench does not reproduce'
    )
  }
  // −1 = the last block, −2 = the input to the first block (a pre-hook), other negatives count
  // from the end as Python indexes.
  const outputLayer = f.int(`${ENC}.output_layer`, -1)
  const softPromptLength = f.int(`${ENC}.soft_prompt_length`, 0)
  if (softPromptLength < 0) f.fail('invalid', `${ENC}.soft_prompt_length`, `is ${softPromptLength}`)

  const decoderPrompt = f.string('decoder_prompt')
  return {
    layer,
    modelName,
    tokenizerName: f.string('tokenizer_name') ?? modelName,
    origModelName: f.string('orig_model_name'),
    differentActivationsOrig: f.string('different_activations_orig'),
    explanationTokens,
    modelDtype: f.string('model_dtype') ?? 'float32',
    decoderPrompt: decoderPrompt === '' ? null : decoderPrompt,
    encoderPromptText: f.string(`${ENC}.soft_prompt_init_text`),
    attnImplementation: f.string('attn_implementation'),
    gumbelTauEnd: f.number('gumbel_tau_schedule.end_value', 1.0),
    decoder: { patchAllLayers, perLayerProjections, newDecoder },
    encoder: {
      outputLayer,
      useProjectionLayer: f.bool(`${ENC}.use_projection_layer`, true),
      addCurrentToken: f.bool(`${ENC}.add_current_token`, false),
      specialLastTokenVector: f.bool(`${ENC}.special_last_token_vector`, false),
      softPromptLength
    }
  }
}

/** Splits a decoder prompt like the predecessor: left of the first `<embed>`, up to the next. */
export function splitDecoderPrompt(prompt: string | null): { left: string; right: string } {
  if (prompt === null) return { left: '', right: '' }
  const parts = prompt.split('<embed>')
  return { left: parts[0] ?? '', right: parts[1] ?? '' }
}

/** Splits an encoder prompt like the predecessor: prefix and postfix around `<text>`. */
export function splitEncoderPrompt(text: string | null): { prefix: string; postfix: string } {
  if (text === null) return { prefix: '', postfix: '' }
  const parts = text.split('<text>')
  return { prefix: parts[0] ?? '', postfix: parts[1] ?? '' }
}

const JSON_NODE_BUDGET = 200_000
const JSON_MAX_DEPTH = 64

/** The config as JSON for provenance; bounded, so shared or cyclic references cannot explode it. */
export function toJson(value: PickleValue, file: string): JsonValue {
  let nodes = 0
  const walk = (v: PickleValue, depth: number): JsonValue => {
    if (++nodes > JSON_NODE_BUDGET || depth > JSON_MAX_DEPTH) {
      throw CheckpointError.at(
        'too_large',
        file,
        'config',
        'too large or too deeply nested to record'
      )
    }
    if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
    if (typeof v === 'number') return Number.isFinite(v) ? v : String(v)
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Uint8Array) return { $bytes: v.length }
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1))
    if (v instanceof PyTuple) return v.items.map((x) => walk(x, depth + 1))
    if (v instanceof PySet) return [...v.values()].map((x) => walk(x, depth + 1))
    if (v instanceof PyDict) {
      const out: { [key: string]: JsonValue } = {}
      for (const [k, x] of v.entries()) {
        const key = typeof k === 'string' ? k : JSON.stringify(walk(k, depth + 1))
        // defineProperty: a key like "__proto__" stays a plain key.
        Object.defineProperty(out, key, {
          value: walk(x, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true
        })
      }
      return out
    }
    if (v instanceof GlobalRef) return { $name: v.qualified }
    if (v instanceof Placeholder) return { $object: v.typeName }
    if (v instanceof TensorRef) return { $tensor: [...v.shape] }
    if (v instanceof StorageRef) return { $storage: v.key }
    return null
  }
  return walk(value, 0)
}
