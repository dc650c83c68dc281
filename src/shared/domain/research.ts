import { z } from 'zod'

/**
 * The research modes beyond an analysis (the predecessor's analyzer entry points its web app never
 * exposed): a causal intervention at token positions, and a layer sweep at one position. The
 * iterative optimiser is an analysis option (OptimiseOptionsSchema in ./analysis).
 */

/** Most rows one intervention job may ask for (positions × strings). */
export const MAX_INTERVENTION_ROWS = 256

/**
 * A causal intervention: at each position t, the residual after the lens's layer L is replaced by
 * A (unchanged), A_int (the encoder's reconstruction from an intervention string) and Â (from the
 * position's own explanation); the orig model's predictions after `nextPosition` and a greedy
 * continuation from each of the three runs are compared. One row per position and string.
 */
export const InterventionRequestSchema = z
  .object({
    /** Token positions to intervene at (0-based, as the analysis rows number them). */
    positions: z.array(z.number().int().min(0)).min(1).max(64),
    /**
     * Texts that replace the explanation, one row each. Tokenised as the predecessor did: with the
     * tokenizer's own specials, cut from the left or left-padded with id 0 to the lens's T tokens.
     */
    strings: z.array(z.string().max(4000)).min(1).max(32),
    /**
     * Predictions are read after this position (≥ every intervened position). Omitted: each
     * intervened position itself, i.e. the prediction of the next token.
     */
    nextPosition: z.number().int().min(0).optional(),
    /** Predicted tokens listed per run (the predecessor listed at least 10). */
    topK: z.number().int().min(1).max(100).default(10),
    /** Greedy continuation length per run, from the text up to the intervened position; 0 = none. */
    maxNewTokens: z.number().int().min(0).max(512).default(20)
  })
  .strict()
  .refine((r) => r.positions.length * r.strings.length <= MAX_INTERVENTION_ROWS, {
    message: `at most ${MAX_INTERVENTION_ROWS} rows (positions × strings) per intervention`,
    path: ['strings']
  })
export type InterventionRequest = z.output<typeof InterventionRequestSchema>
export type InterventionRequestInput = z.input<typeof InterventionRequestSchema>

export const PredictionSchema = z.object({
  token: z.string(),
  tokenId: z.number().int(),
  probability: z.number()
})
export type Prediction = z.infer<typeof PredictionSchema>

/**
 * One intervention: the predecessor's `causal_intervention` keys (in camelCase; the API and the
 * command line write them in its snake_case), plus the continuations of the two patched runs.
 */
export const InterventionRowSchema = z.object({
  /** Index of the row in its job (position-major, then string). */
  index: z.number().int().nonnegative(),
  interventionPosition: z.number().int(),
  intervenedToken: z.string(),
  intervenedTokenId: z.number().int(),
  nextTokenPosition: z.number().int(),
  /** The token whose next-token prediction is compared. */
  predictionContextToken: z.string(),
  /** The string as given. */
  interventionText: z.string(),
  /** The string as encoded: its kept ids decoded (the left padding left out, specials kept). */
  interventionString: z.string(),
  /** The T ids encoded (left padding included). */
  interventionIds: z.array(z.number().int()),
  /** Tokens cut from the string's start to fit T (0 when it fits). */
  truncatedTokens: z.number().int().nonnegative(),
  /** Pad ids (0) added before the string to fill T. */
  paddedTokens: z.number().int().nonnegative(),
  /** The position's own explanation as its analysis row shows it (best-of-K or optimised). */
  explanationOriginal: z.string(),
  explanationStructured: z.array(z.string()),
  /** KL(P_A ‖ P_int) in nats at the prediction position. */
  klDivergence: z.number(),
  /** KL(P_A ‖ P_Â). */
  klDivOrigDecoded: z.number(),
  /** MSE(A, A_int). */
  mse: z.number(),
  /** MSE(A, Â). */
  mseOrigDecoded: z.number(),
  topPredictionsOriginal: z.array(PredictionSchema),
  topPredictionsIntervention: z.array(PredictionSchema),
  topPredictionsOriginalDecoded: z.array(PredictionSchema),
  /** Greedy continuations of the text up to the intervened position, from each run. */
  continuationOriginal: z.string(),
  continuationIntervention: z.string(),
  continuationOriginalDecoded: z.string()
})
export type InterventionRow = z.infer<typeof InterventionRowSchema>

/**
 * A layer sweep: the residual at one position explained at every layer (or the listed ones), one
 * analysis row per layer. `trained`: at a layer where the group has a lens trained there, that
 * lens; elsewhere the job's lens. `fixed`: the job's lens at every layer (as the predecessor did).
 */
export const SweepRequestSchema = z
  .object({
    position: z.number().int().min(0),
    /** Layers to explain (0-based blocks); omitted = every layer of the orig model. */
    layers: z.array(z.number().int().min(0)).min(1).max(1024).optional(),
    lenses: z.enum(['trained', 'fixed']).default('trained')
  })
  .strict()
export type SweepRequest = z.output<typeof SweepRequestSchema>
export type SweepRequestInput = z.input<typeof SweepRequestSchema>
