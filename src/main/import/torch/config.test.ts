/** The training-config reader: defaults as the predecessor had them, and each refusal's field. */
import { describe, expect, it } from 'vitest'
import { parseLensConfig, splitDecoderPrompt, splitEncoderPrompt } from './config'
import { CheckpointError } from '../errors'
import { Placeholder, PyDict, type PickleValue } from './pickle'

/** Builds the PyDict a pickle would give for a plain object. */
function py(value: unknown): PickleValue {
  if (value instanceof Placeholder) return value
  if (Array.isArray(value)) return value.map(py)
  if (value !== null && typeof value === 'object') {
    const d = new PyDict(false)
    for (const [k, v] of Object.entries(value)) d.set(k, py(v))
    return d
  }
  return value as PickleValue
}

const minimal = {
  layer_l: 3,
  t_text: 8,
  trainable_components: { decoder: { patch_all_layers: 2 }, encoder: {} }
}

function withField(path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(minimal) as Record<string, unknown>
  const parts = path.split('.')
  let node = copy
  for (const p of parts.slice(0, -1)) {
    node[p] ??= {}
    node = node[p] as Record<string, unknown>
  }
  const last = parts[parts.length - 1]!
  if (value === undefined) delete node[last]
  else node[last] = value
  return copy
}

describe('parseLensConfig', () => {
  it('applies the predecessor defaults', () => {
    expect(parseLensConfig(py(minimal), 'x.pt')).toEqual({
      layer: 3,
      modelName: 'gpt2',
      tokenizerName: 'gpt2',
      origModelName: null,
      differentActivationsOrig: null,
      explanationTokens: 8,
      modelDtype: 'float32',
      decoderPrompt: null,
      encoderPromptText: null,
      attnImplementation: null,
      gumbelTauEnd: 1,
      decoder: { patchAllLayers: 2, perLayerProjections: false, newDecoder: false },
      encoder: {
        outputLayer: -1,
        useProjectionLayer: true,
        addCurrentToken: false,
        specialLastTokenVector: false,
        softPromptLength: 0
      }
    })
  })

  it('reads what is there', () => {
    const cfg = parseLensConfig(
      py({
        ...minimal,
        model_name: 'google/gemma-3-27b-pt',
        tokenizer_name: 'google/gemma-3-27b-pt',
        orig_model_name: 'google/gemma-3-27b-it',
        model_dtype: 'bfloat16',
        decoder_prompt: '',
        gumbel_tau_schedule: { end_value: 0.1 },
        trainable_components: {
          decoder: { patch_all_layers: true, per_layer_projections: true },
          encoder: { output_layer: 45, add_current_token: true, special_last_token_vector: true }
        }
      }),
      'x.pt'
    )
    expect(cfg.decoderPrompt).toBeNull()
    expect(cfg.decoder.patchAllLayers).toBe(true)
    expect(cfg.encoder).toMatchObject({
      outputLayer: 45,
      addCurrentToken: true,
      specialLastTokenVector: true
    })
    expect(cfg.origModelName).toBe('google/gemma-3-27b-it')
    expect(cfg.gumbelTauEnd).toBe(0.1)
  })

  const DEC = 'trainable_components.decoder'
  const ENC = 'trainable_components.encoder'
  it.each<[string, unknown, string, string]>([
    ['layer_l', undefined, 'invalid', 'config.layer_l: is missing'],
    ['layer_l', -1, 'invalid', 'config.layer_l: is -1; a block index is ≥ 0'],
    ['layer_l', 2.5, 'invalid', 'config.layer_l: is a float (2.5), expected an int'],
    ['layer_l', '3', 'invalid', 'config.layer_l: is a str, expected an int'],
    ['t_text', 0, 'invalid', 'config.t_text: is 0; the Workbench reads 1–256 explanation tokens'],
    ['t_text', 300, 'invalid', 'config.t_text: is 300'],
    ['model_name', 7, 'invalid', 'config.model_name: is an int, expected a string'],
    [
      `${DEC}.patch_all_layers`,
      -2,
      'invalid',
      `config.${DEC}.patch_all_layers: is an int (-2); expected true, false, "just_input" or an int ≥ 0`
    ],
    [
      `${DEC}.patch_all_layers`,
      'all',
      'invalid',
      `config.${DEC}.patch_all_layers: is a str; expected true, false, "just_input" or an int ≥ 0`
    ],
    [
      `${DEC}.subtract_add_pos_embeddings`,
      true,
      'unsupported',
      `config.${DEC}.subtract_add_pos_embeddings: is true`
    ],
    [
      `${DEC}.output_head`,
      true,
      'unsupported',
      `config.${DEC}.output_head: is true: a trained output head`
    ],
    [
      `${ENC}.subtract_add_pos_embeddings`,
      true,
      'unsupported',
      `config.${ENC}.subtract_add_pos_embeddings: is true`
    ],
    [`${ENC}.use_base_model`, false, 'unsupported', `config.${ENC}.use_base_model: is false`],
    [
      `${ENC}.add_current_token`,
      1,
      'invalid',
      `config.${ENC}.add_current_token: is an int, expected true or false`
    ],
    [`${ENC}.soft_prompt_length`, -1, 'invalid', `config.${ENC}.soft_prompt_length: is -1`],
    [
      'trainable_components',
      [1],
      'invalid',
      'config.trainable_components: is a list, expected a dict'
    ],
    [
      'decoder_prompt',
      new Placeholder('numpy.str_', 'call'),
      'invalid',
      'config.decoder_prompt: is an object of type numpy.str_ (not read), which the reader does not interpret'
    ]
  ])('%s = %o is refused', (field, value, reason, message) => {
    let err: unknown
    try {
      parseLensConfig(py(withField(field, value)), 'x.pt')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(CheckpointError)
    expect((err as CheckpointError).problem).toBe(reason)
    expect((err as CheckpointError).message).toContain(`x.pt: ${message}`)
  })

  it.each<[string, unknown, boolean | number]>([
    ['absent (the predecessor defaulted to false)', undefined, false],
    ['false', false, false],
    ['0', 0, 0],
    ['"just_input" (the predecessor read it as 0)', 'just_input', 0]
  ])('patch_all_layers %s without per-layer projections: input only', (_, value, read) => {
    const cfg = parseLensConfig(py(withField(`${DEC}.patch_all_layers`, value)), 'x.pt')
    expect(cfg.decoder.patchAllLayers).toBe(read)
  })

  it.each<[unknown, boolean]>([
    [false, false],
    [0, false],
    [false, true]
  ])(
    'patch_all_layers %o with per-layer projections (new_decoder %o) is refused: the predecessor had no projection',
    (value, newDecoder) => {
      const cfg = withField(`${DEC}.patch_all_layers`, value)
      const decoder = (cfg.trainable_components as Record<string, Record<string, unknown>>).decoder!
      decoder.per_layer_projections = true
      decoder.new_decoder = newDecoder
      expect(() => parseLensConfig(py(cfg), 'x.pt')).toThrow(
        `x.pt: config.${DEC}.patch_all_layers: is ${JSON.stringify(value)} with per_layer_projections`
      )
    }
  )

  it('patch_all_layers 0 with per-layer projections and new_decoder reads projection 0 as the input', () => {
    const cfg = withField(`${DEC}.patch_all_layers`, 0)
    const decoder = (cfg.trainable_components as Record<string, Record<string, unknown>>).decoder!
    decoder.per_layer_projections = true
    decoder.new_decoder = true
    expect(parseLensConfig(py(cfg), 'x.pt').decoder).toEqual({
      patchAllLayers: 0,
      perLayerProjections: true,
      newDecoder: true
    })
  })

  it('output_layer -2 (the input to the first block) is read as written', () => {
    const cfg = parseLensConfig(py(withField(`${ENC}.output_layer`, -2)), 'x.pt')
    expect(cfg.encoder.outputLayer).toBe(-2)
  })

  it('new_decoder with per-layer projections on every layer is refused', () => {
    const cfg = withField(`${DEC}.patch_all_layers`, true)
    const decoder = (cfg.trainable_components as Record<string, Record<string, unknown>>).decoder!
    decoder.per_layer_projections = true
    decoder.new_decoder = true
    expect(() => parseLensConfig(py(cfg), 'x.pt')).toThrow(
      `config.${DEC}.new_decoder: with patch_all_layers true`
    )
  })

  it('a checkpoint without a config is refused', () => {
    expect(() => parseLensConfig(undefined, 'x.pt')).toThrow(
      'x.pt: config: the checkpoint has no training config ("config")'
    )
  })
})

describe('prompt splitting, as the predecessor split them', () => {
  it.each([
    [null, '', ''],
    ['<bos>Short explanation of <embed>. Style:', '<bos>Short explanation of ', '. Style:'],
    ['no slot', 'no slot', ''],
    ['<embed>after', '', 'after'],
    ['a<embed>b<embed>c', 'a', 'b']
  ])('decoder %j', (prompt, left, right) => {
    expect(splitDecoderPrompt(prompt)).toEqual({ left, right })
  })

  it.each([
    [null, '', ''],
    ['<bos>Summary:<text>', '<bos>Summary:', ''],
    ['Summary:<text> Done.', 'Summary:', ' Done.']
  ])('encoder %j', (text, prefix, postfix) => {
    expect(splitEncoderPrompt(text)).toEqual({ prefix, postfix })
  })
})
