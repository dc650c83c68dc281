import { z } from 'zod'

/**
 * Best-of-K when a request names none: 8, the predecessor's default in every entry point. The
 * app's console, the command line and the API all start from this one constant.
 */
export const DEFAULT_BEST_OF_K = 8

/**
 * The iterative explanation optimiser (the predecessor's `optimize_explanation_for_mse`): start
 * from the best of `samplesPerIteration` rollouts, then, token by token, regenerate the tail after
 * a token whose salience is below the threshold (raising the temperature when that fails), replace
 * tokens that still hurt by the null token, and finally drop null tokens and regenerate the freed
 * tail. Defaults are the predecessor's.
 */
export const OptimiseOptionsSchema = z
  .object({
    /** Rollouts per regeneration (and for the starting candidate). */
    samplesPerIteration: z.number().int().min(1).max(512).default(16),
    /** A token whose salience is below this is regenerated (salience_pct_threshold). */
    salienceThreshold: z.number().min(-10).max(10).default(0),
    /** Retries of a failed regeneration, each at a higher temperature. */
    maxTempIncreases: z.number().int().min(0).max(10).default(2),
    /** Temperature multiplier per retry. */
    tempIncreaseFactor: z.number().min(1).max(10).default(1.5)
  })
  .strict()
export type OptimiseOptions = z.output<typeof OptimiseOptionsSchema>
export type OptimiseOptionsInput = z.input<typeof OptimiseOptionsSchema>

/**
 * Analysis options, defaults as in the seed's web path but correct (KL on and real).
 * Field names are camelCase across the app; the /api/v2 layer maps the seed's snake_case names.
 */
export const AnalyzeOptionsSchema = z
  .object({
    /** Rollouts per position; the explanation with the lowest MSE is kept. */
    bestOfK: z.number().int().min(1).max(512).default(DEFAULT_BEST_OF_K),
    /** Decoder sampling temperature; 0 means greedy argmax. */
    temperature: z.number().min(0).max(5).default(1),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(42),
    /** Max decoder rows (positions × K) per batch; omitted = the device's automatic budget. */
    rowsPerBatch: z.number().int().min(1).max(65536).optional(),
    salience: z.boolean().default(true),
    logitLens: z.boolean().default(false),
    kl: z.boolean().default(true),
    /** Analyse only [start, end) token positions; omitted = all. */
    positions: z
      .object({ start: z.number().int().min(0), end: z.number().int().min(1) })
      .refine((p) => p.end > p.start, { message: 'end must be greater than start' })
      .optional(),
    /** Analyse only the last N chat messages (start-of-turn detection). */
    lastNMessages: z.number().int().min(1).optional(),
    /** Optimise each explanation iteratively instead of best-of-K (bestOfK is then unused). */
    optimise: OptimiseOptionsSchema.optional()
  })
  .strict()
export type AnalyzeOptions = z.output<typeof AnalyzeOptionsSchema>
export type AnalyzeOptionsInput = z.input<typeof AnalyzeOptionsSchema>

/** One analysed position: the seed's columns, with KL that is actually computed. */
export const AnalysisRowSchema = z.object({
  position: z.number().int(),
  /** The token the model received, decoded (`<unk>` for a word its vocabulary does not have). */
  token: z.string(),
  /** Null only in sessions imported from files that do not record it. */
  tokenId: z.number().int().nullable(),
  /**
   * The text the tokenizer read where it differs from `token`: the word behind an `<unk>` (as the
   * tokenizer's normaliser left it, e.g. lower-cased). Absent where the token is the text.
   */
  sourceText: z.string().optional(),
  explanation: z.string(),
  explanationStructured: z.array(z.string()),
  mse: z.number(),
  relativeRmse: z.number(),
  /** KL(P‖Q) in nats; null when KL was not requested. */
  klDivergence: z.number().nullable(),
  /** One value per explanation token; empty when salience is off. */
  tokenSalience: z.array(z.number()),
  /** Top tokens of the unembedded residual, space-joined; null when logit lens is off. */
  logitLensTop: z.string().nullable(),
  /** Layer sweep: the layer whose residual this row explains (an analysis's layer is its lens's). */
  layer: z.number().int().optional(),
  /** Layer sweep: the lens that explained it, the layer it was trained at, and whether that is `layer`. */
  lensId: z.string().optional(),
  lensLayer: z.number().int().optional(),
  trainedAtLayer: z.boolean().optional(),
  /** Optimised explanations: the starting candidate's MSE (best of samplesPerIteration). */
  mseBefore: z.number().optional(),
  /** Optimised explanations: decoder rollouts spent on this row. */
  rollouts: z.number().int().optional()
})
export type AnalysisRow = z.infer<typeof AnalysisRowSchema>

export const AnalysisStatusSchema = z.enum(['completed', 'cancelled', 'failed'])

export const AnalysisMetadataSchema = z.object({
  groupId: z.string(),
  lensId: z.string(),
  layer: z.number().int(),
  bundleHash: z.string(),
  engineVersion: z.string(),
  executionProvider: z.string(),
  options: z.record(z.string(), z.unknown()),
  seed: z.number().int(),
  numTokens: z.number().int(),
  analysedPositions: z.number().int(),
  timings: z.record(z.string(), z.number()),
  status: AnalysisStatusSchema,
  // What the predecessor's result metadata named (docs/public-schema.md). Optional: sessions saved
  // before these were recorded do not have them.
  /** The lens's display name. */
  lensName: z.string().optional(),
  /** The group's base model (its name, else its id). */
  baseModel: z.string().optional(),
  /** The model whose activations are explained: the lens's donor, else the base model. */
  origModel: z.string().optional(),
  /** The donor model when the lens reads a model other than the base; null when it does not. */
  donorModel: z.string().nullable().optional(),
  /** The model group folder the lens came from. */
  checkpointPath: z.string().optional(),
  /** Where it ran: `cpu`, `cuda:N`, or the device manager's device ids, comma-separated. */
  device: z.string().optional()
})
export type AnalysisMetadata = z.infer<typeof AnalysisMetadataSchema>

export const AnalysisResultSchema = z.object({
  metadata: AnalysisMetadataSchema,
  rows: z.array(AnalysisRowSchema)
})
export type AnalysisResult = z.infer<typeof AnalysisResultSchema>

export const AnalysisProgressSchema = z.object({
  batch: z.number().int(),
  totalBatches: z.number().int(),
  rowsDone: z.number().int(),
  rowsTotal: z.number().int(),
  etaSeconds: z.number().nullable()
})

/** Where the iterative optimiser is inside the current batch (its own progress). */
export const OptimiserProgressSchema = z.object({
  batch: z.number().int(),
  totalBatches: z.number().int(),
  /** Steps of this batch: one per explanation token, then the removal and the tail pass. */
  step: z.number().int(),
  steps: z.number().int(),
  /** What the step does, in words (e.g. `token 3 of 8: 5 positions regenerate`). */
  message: z.string()
})
export type OptimiserProgress = z.infer<typeof OptimiserProgressSchema>
export type AnalysisProgress = z.infer<typeof AnalysisProgressSchema>
