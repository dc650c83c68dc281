/**
 * The bundle format's schemas (docs/bundle-format.md is the prose version). A group folder holds
 * manifest.json; each lens folder holds lens.json. Every path is relative to the folder of the
 * file that names it and must stay inside the bundle folder.
 */
import { z } from 'zod'

export const SCHEMA_VERSION = 1

const RelPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(p) && !p.includes('\\'), {
    message: 'must be a relative path with forward slashes'
  })

const Id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, 'letters, digits, . _ - (max 80)')

export const TensorRefSchema = z
  .object({
    file: RelPath,
    dtype: z.literal('float32'),
    shape: z.array(z.number().int().nonnegative()).min(1).max(4)
  })
  .strict()
export type TensorRef = z.infer<typeof TensorRefSchema>

export const ModelRefSchema = z
  .object({
    id: Id,
    name: z.string().min(1).optional(),
    file: RelPath,
    hiddenSize: z.number().int().positive(),
    layers: z.number().int().positive(),
    heads: z.number().int().positive(),
    vocabSize: z.number().int().positive(),
    maxPositions: z.number().int().positive(),
    /** Multiplier the graph applies to token-embedding rows (sqrt(d) for Gemma, 1 for GPT-2). */
    embeddingScale: z.number().positive().default(1)
  })
  .strict()
export type ModelRef = z.infer<typeof ModelRefSchema>

export const ManifestSchema = z
  .object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    group: z
      .object({ id: Id, name: z.string().min(1), description: z.string().optional() })
      .strict(),
    tokenizer: z
      .object({
        file: RelPath.default('tokenizer.json'),
        config: RelPath.default('tokenizer_config.json')
      })
      .strict(),
    conventions: z
      .object({
        bosTokenId: z.number().int().nonnegative(),
        /** Token that replaces an explanation token in salience ablations. */
        nullTokenId: z.number().int().nonnegative(),
        dtype: z.literal('float32'),
        /** Where activations are read: the residual stream after block L. */
        activationSite: z.literal('residual_after_block'),
        /** Final-logit softcapping is off in every role (the seed's decoder disables it). */
        logitSoftcap: z.null(),
        /** Logit lens applies the final norm before the unembedding. */
        logitLensFinalNorm: z.boolean().default(true)
      })
      .strict(),
    base: ModelRefSchema,
    donors: z.array(ModelRefSchema).default([]),
    lenses: z.array(RelPath).min(1),
    /** Decoder rows (positions × K) per batch by device kind; the engine's defaults otherwise. */
    rowsPerBatch: z
      .object({ cpu: z.number().int().positive(), gpu: z.number().int().positive() })
      .partial()
      .strict()
      .optional()
  })
  .strict()
export type Manifest = z.infer<typeof ManifestSchema>

export const LensManifestSchema = z
  .object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    id: Id,
    name: z.string().min(1),
    description: z.string().optional(),
    /** L: activations are the residual after block L (0-based). */
    layer: z.number().int().nonnegative(),
    /** T: explanation length in tokens. */
    explanationTokens: z.number().int().positive().max(256),
    /** Model id used for activations, KL and logit lens: 'base' or one of the donors. */
    orig: z.string().default('base'),
    decoder: z
      .object({
        /** Decoder prompt rows (P, d), already in residual-input space (embedding × scale). */
        prefix: TensorRefSchema,
        /** Index of the activation slot inside the prefix. */
        embedPos: z.number().int().nonnegative(),
        /** Np: the projection writes Np vectors; vector l overwrites embed_pos before block l. */
        patchLayers: z.number().int().positive(),
        /** ONNX: activations (B, d) → patch_vectors (B, Np, d). */
        projection: RelPath
      })
      .strict(),
    encoder: z
      .object({
        /** k: the reconstruction is the residual after block k at the last position. */
        outputLayer: z.number().int().nonnegative(),
        /** Soft prompt rows before the explanation (Pe, d). */
        prefix: TensorRefSchema,
        /** Soft prompt rows after the explanation (Q, d); optional. */
        suffix: TensorRefSchema.optional(),
        /** Append the analysed token after the explanation (seed add_current_token). */
        addCurrentToken: z.boolean(),
        /** Added to the last input row (seed special_last_token_vector), shape (d). */
        lastRowAdd: TensorRefSchema.optional(),
        /** ONNX: hidden (B, d), target (B, d) → recon (B, d), mse (B). */
        head: RelPath
      })
      .strict()
  })
  .strict()
export type LensManifest = z.infer<typeof LensManifestSchema>
