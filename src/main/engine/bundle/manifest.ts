/**
 * The bundle format's schemas (docs/bundle-format.md is the prose version). A group folder holds
 * manifest.json; each lens folder holds lens.json. Every path is relative to the folder of the
 * file that names it and must stay inside the bundle folder.
 *
 * manifest.json schema 2 says per model what its graph is (architecture family, graph dtype,
 * key/value heads, head width) and which roles apply the model's final-logit softcap. Schema 1
 * manifests (every model the pre-norm GPT, no softcap anywhere) keep loading: they are read as
 * the schema 2 manifest they are equivalent to.
 */
import { z } from 'zod'
import { ARCH_FAMILIES } from '../arch/spec'

/** manifest.json's current schema version. */
export const SCHEMA_VERSION = 2
/** Versions of manifest.json that load (older ones are upgraded in memory). */
export const READABLE_SCHEMA_VERSIONS = [1, 2] as const
/** lens.json's schema version (unchanged by manifest schema 2). */
export const LENS_SCHEMA_VERSION = 1

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

const ModelRefV1 = {
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
}

const Softcap = z.number().positive().nullable()

/**
 * The checkpoint an imported model was converted from: its format, `model_type`, and the dtype its
 * weights were stored in (`mixed` when tensors differ; the graph's own dtype is `graphDtype`).
 */
export const CheckpointSourceSchema = z
  .object({
    format: z.literal('huggingface-safetensors'),
    modelType: z.string().min(1),
    dtype: z.enum(['F32', 'F16', 'BF16', 'mixed']),
    /** Hugging Face cache snapshot (commit hash), when imported from the cache. */
    revision: z.string().optional(),
    /** Parameters stored in the checkpoint's weights that the graph reads (tied heads once). */
    parameters: z.number().int().nonnegative()
  })
  .strict()
export type CheckpointSource = z.infer<typeof CheckpointSourceSchema>

export const ModelRefSchema = z
  .object({
    ...ModelRefV1,
    /** The architecture the graph computes (src/main/engine/arch/spec.ts ArchFamily). */
    architecture: z.enum(ARCH_FAMILIES),
    /** Key/value heads (grouped-query attention when fewer than `heads`). */
    kvHeads: z.number().int().positive(),
    /** Per-head width (not always hiddenSize / heads). */
    headDim: z.number().int().positive(),
    /** Dtype of the graph's weights and activations; float16 graphs for GPUs may follow. */
    graphDtype: z.literal('float32'),
    /**
     * The final-logit softcap each role's graph applies (null: none). The model's own predictions
     * (KL, logit lens, generate) keep the model's cap; the lens decoder (decode) never has one.
     */
    logitSoftcap: z
      .object({ decode: z.null(), kl: Softcap, logitLens: Softcap, generate: Softcap })
      .strict(),
    /** Parameters of the graph (a tied head counted once), for display and memory estimates. */
    parameters: z.number().int().nonnegative().optional(),
    /** Where an imported model came from (absent for generated bundles). */
    checkpoint: CheckpointSourceSchema.optional()
  })
  .strict()
export type ModelRef = z.infer<typeof ModelRefSchema>

/** A schema 1 model reference read as schema 2: the pre-norm GPT, no softcap. */
function upgradeModelRef(ref: z.output<z.ZodObject<typeof ModelRefV1>>): ModelRef {
  return {
    ...ref,
    architecture: 'prenorm-gpt',
    kvHeads: ref.heads,
    headDim: ref.hiddenSize / ref.heads,
    graphDtype: 'float32',
    logitSoftcap: { decode: null, kl: null, logitLens: null, generate: null }
  }
}

const ConventionsV2 = {
  bosTokenId: z.number().int().nonnegative(),
  /** Token that replaces an explanation token in salience ablations. */
  nullTokenId: z.number().int().nonnegative(),
  /** Dtype of every tensor the engine feeds or reads. */
  dtype: z.literal('float32'),
  /** Where activations are read: the residual stream after block L. */
  activationSite: z.literal('residual_after_block'),
  /** Logit lens applies the final norm before the unembedding. */
  logitLensFinalNorm: z.boolean().default(true)
}

function manifestShape<V extends 1 | 2, M extends z.ZodType, C extends z.ZodRawShape>(
  version: V,
  model: M,
  conventions: C
) {
  return z
    .object({
      schemaVersion: z.literal(version),
      group: z
        .object({ id: Id, name: z.string().min(1), description: z.string().optional() })
        .strict(),
      tokenizer: z
        .object({
          file: RelPath.default('tokenizer.json'),
          config: RelPath.default('tokenizer_config.json')
        })
        .strict(),
      conventions: z.object(conventions).strict(),
      base: model,
      donors: z.array(model).default([]),
      /** Lens folders; none for a group with only a base (generation and chat run on it). */
      lenses: z.array(RelPath).default([]),
      /** Decoder rows (positions × K) per batch by device kind; the engine's defaults otherwise. */
      rowsPerBatch: z
        .object({ cpu: z.number().int().positive(), gpu: z.number().int().positive() })
        .partial()
        .strict()
        .optional()
    })
    .strict()
}

const ManifestV2Schema = manifestShape(2, ModelRefSchema, ConventionsV2)

const ManifestV1Schema = manifestShape(1, z.object(ModelRefV1).strict(), {
  ...ConventionsV2,
  /** Schema 1: final-logit softcapping was off in every role. */
  logitSoftcap: z.null()
})

/**
 * manifest.json as the engine uses it (schema 2). A schema 1 file is read as the equivalent
 * schema 2 manifest; any other version is refused, naming the versions that load.
 */
export const ManifestSchema = z
  .discriminatedUnion('schemaVersion', [ManifestV2Schema, ManifestV1Schema], {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? `unsupported schema version ${JSON.stringify((issue.input as { schemaVersion?: unknown } | undefined)?.schemaVersion)} (this Workbench reads ${READABLE_SCHEMA_VERSIONS.join(' and ')}); re-import the model with this version`
        : undefined
  })
  .transform((m): z.output<typeof ManifestV2Schema> => {
    if (m.schemaVersion === 2) return m
    const { logitSoftcap: _off, ...conventions } = m.conventions
    void _off
    return {
      ...m,
      schemaVersion: 2,
      conventions,
      base: upgradeModelRef(m.base),
      donors: m.donors.map(upgradeModelRef)
    }
  })
export type Manifest = z.output<typeof ManifestSchema>
/** manifest.json as written (schema 2). */
export type ManifestFile = z.input<typeof ManifestV2Schema>

/**
 * Where an imported lens came from and how it was trained (display and reproducibility; the
 * engine computes nothing from it). `source: 'lens-checkpoint'`: the predecessor's training
 * checkpoint, with the config fields its analyzer read and the whole training config.
 */
export const LensProvenanceSchema = z
  .object({
    source: z.literal('lens-checkpoint'),
    /** The checkpoint's file name (not its path: bundles move between machines). */
    file: z.string().min(1),
    /** ISO 8601 time of the import. */
    importedAt: z.string().min(1),
    /** Training step (`step`), when the checkpoint has one. */
    step: z.number().int().nullable(),
    /** `model_name`: the base the decoder and encoder ran on. */
    modelName: z.string(),
    /** `orig_model_name`: the model the training activations came from, when recorded. */
    origModelName: z.string().nullable(),
    tokenizerName: z.string(),
    /** `model_dtype` of the training run. */
    modelDtype: z.string(),
    layer: z.number().int().nonnegative(),
    explanationTokens: z.number().int().positive(),
    /** `patch_all_layers` as written: true (every block), false (input only) or n. */
    patchAllLayers: z.union([z.boolean(), z.number().int().nonnegative()]),
    perLayerProjections: z.boolean(),
    /** The encoder's `output_layer` as written (−1 last block, −2 the input to block 0). */
    encoderOutputLayer: z.number().int(),
    /** Decisions the importer made that a reader of the bundle should know (one sentence each). */
    notes: z.array(z.string()),
    /** The whole training config as JSON (objects the reader does not interpret are marked). */
    trainingConfig: z.unknown()
  })
  .strict()
export type LensProvenance = z.infer<typeof LensProvenanceSchema>

export const LensManifestSchema = z
  .object({
    schemaVersion: z.literal(LENS_SCHEMA_VERSION),
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
        /**
         * k: the reconstruction is the residual after block k at the last position; −1: the
         * residual entering block 0 (no block runs; the predecessor's `output_layer: -2`).
         */
        outputLayer: z.number().int().min(-1),
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
      .strict(),
    provenance: LensProvenanceSchema.optional()
  })
  .strict()
export type LensManifest = z.infer<typeof LensManifestSchema>
