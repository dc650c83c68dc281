/**
 * Random seed-style lenses for a reference model: the predecessor's tensors (prompt rows copied
 * from the embedding table, identity-plus-noise projections, soft prompts, a special last-token
 * vector) at the model's width. Test-only.
 */
import type { HfReferenceModel } from './model'
import { createPrng } from './prng'
import type { Affine, SeedLens } from './lens'

export interface RandomSeedLensOptions {
  seed?: number
  layer: number
  explanationTokens?: number
  /** `patch_all_layers`; default true. */
  patchAllLayers?: boolean | number
  perLayerProjections?: boolean
  newDecoder?: boolean
  leftIds?: number[]
  rightIds?: number[]
  softPromptIds?: number[]
  postfixIds?: number[]
  outputLayer?: number
  addCurrentToken?: boolean
  specialLastTokenVector?: boolean
  encoderProjection?: boolean
}

export function randomSeedLens(base: HfReferenceModel, opts: RandomSeedLensOptions): SeedLens {
  const prng = createPrng(opts.seed ?? 1)
  const d = base.config.hiddenSize
  const noisyIdentity = (scale: number): Affine => ({
    weight: Array.from({ length: d }, (_, o) =>
      Array.from(
        { length: d },
        (_, i) => (o === i ? 1 : 0) + (scale * prng.normal()) / Math.sqrt(d)
      )
    ),
    bias: Array.from({ length: d }, () => 0.1 * prng.normal())
  })
  // Trained prompts start as embedding-table rows (set_prompt / set_soft_prompt_from_text) and drift.
  const rows = (ids: number[]): Float64Array[] =>
    ids.map((id) => base.tableRow(id).map((x) => x + 0.05 * prng.normal()))
  const patch = opts.patchAllLayers ?? true
  const perLayer = opts.perLayerProjections ?? true
  const count = perLayer
    ? (patch === true ? base.config.layers : patch === false ? 1 : Math.max(patch, 1)) +
      (opts.newDecoder ? 1 : 0)
    : 1
  return {
    layer: opts.layer,
    explanationTokens: opts.explanationTokens ?? 4,
    decoder: {
      promptLeft: rows(opts.leftIds ?? [1, 5, 9]),
      promptRight: rows(opts.rightIds ?? [7, 3]),
      patchAllLayers: patch,
      perLayerProjections: perLayer,
      newDecoder: opts.newDecoder,
      projections: Array.from({ length: count }, () => noisyIdentity(0.3))
    },
    encoder: {
      softPrompt: rows(opts.softPromptIds ?? [2, 4, 6]),
      softPromptPostfix: opts.postfixIds ? rows(opts.postfixIds) : undefined,
      specialLastTokenVector:
        (opts.specialLastTokenVector ?? true)
          ? Array.from({ length: d }, () => 0.3 * prng.normal())
          : undefined,
      projection: (opts.encoderProjection ?? true) ? noisyIdentity(0.3) : undefined,
      outputLayer: opts.outputLayer ?? opts.layer,
      addCurrentToken: opts.addCurrentToken ?? true
    }
  }
}
