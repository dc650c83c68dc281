import { z } from 'zod'
import { SerializedErrorSchema } from '../ipc/errors'

/**
 * Imports: a checkpoint converted into a model group (`base`: a Hugging Face model folder → a new
 * group with only its base) or into an existing group (`lens`: a lens checkpoint). Each runs as a
 * job with progress and cancel, in the main process, writing into a temporary folder that is
 * renamed into place only when complete (docs/import.md).
 */
export const ImportKindSchema = z.enum(['base', 'lens'])
export type ImportKind = z.infer<typeof ImportKindSchema>

export const ImportStatusSchema = z.enum(['running', 'done', 'failed', 'cancelled'])
export type ImportStatus = z.infer<typeof ImportStatusSchema>

export const ImportIdSchema = z
  .string()
  .regex(/^import-[0-9a-z-]+$/, 'import id looks like import-…')

/** Where an import stands: tensors and checkpoint bytes done, with the rate and what is left. */
export const ImportProgressSchema = z.object({
  /** What it is doing now (`reading headers`, `writing weights`, `tokenizer`, `validating`). */
  stage: z.string(),
  tensorsDone: z.number().int().nonnegative(),
  tensorsTotal: z.number().int().nonnegative(),
  /** Checkpoint bytes read (as stored: BF16 counts two bytes per value). */
  bytesDone: z.number().nonnegative(),
  bytesTotal: z.number().nonnegative(),
  /** Checkpoint megabytes (10⁶ bytes) read per second so far; null before the first tensor. */
  mbPerSecond: z.number().nonnegative().nullable(),
  /** Seconds left at that rate; null until it is known. */
  etaSeconds: z.number().nonnegative().nullable()
})
export type ImportProgress = z.infer<typeof ImportProgressSchema>

/** What a finished base import made, as the library will show it. */
export const ImportedGroupSchema = z.object({
  groupId: z.string(),
  name: z.string(),
  /** The group folder's name inside the models folder (or its path, for the command line). */
  folder: z.string(),
  architecture: z.string(),
  /** `model_type` of config.json. */
  modelType: z.string(),
  parameters: z.number().int().nonnegative(),
  /** The checkpoint's dtype (`mixed` when its tensors differ). */
  checkpointDtype: z.string(),
  /** The dtype the bundle's graph runs in. */
  graphDtype: z.string(),
  /** Bytes of the written weights (float32). */
  weightBytes: z.number().nonnegative(),
  estimatedBytes: z.number().nonnegative()
})
export type ImportedGroup = z.infer<typeof ImportedGroupSchema>

/** A lens id inside a group: one path segment (the lens folder is `lenses/<id>`). */
export const LensIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/,
    'letters, digits, . _ - (max 80), starting with a letter or digit'
  )

/** What a finished lens import added: the lens, where its activations come from, how it was trained. */
export const ImportedLensSchema = z.object({
  lensId: z.string(),
  name: z.string(),
  /** The lens folder, relative to the group. */
  lensDir: z.string(),
  /** The checkpoint file read (a folder gives its newest readable `*.pt`). */
  checkpoint: z.string(),
  /** Which file a folder gave and what was passed over; null for a file. */
  choiceNote: z.string().nullable(),
  layer: z.number().int(),
  explanationTokens: z.number().int(),
  step: z.number().int().nullable(),
  /** `model_name` and `orig_model_name` of the training config. */
  modelName: z.string(),
  origModelName: z.string().nullable(),
  /** The model activations come from: `base` or a donor id. */
  orig: z.string(),
  /** The donor this import wrote, if any. */
  donorId: z.string().nullable(),
  /** What the conversion noted (e.g. a model name checked by shape only). */
  notes: z.array(z.string())
})
export type ImportedLens = z.infer<typeof ImportedLensSchema>

export const ImportJobSchema = z.object({
  id: ImportIdSchema,
  kind: ImportKindSchema,
  /** The folder or file imported from, as the user gave it. */
  source: z.string(),
  /** The group the import writes (a new one for `base`, an existing one for `lens`). */
  groupId: z.string().nullable(),
  /** The group folder's name inside the models folder. */
  folder: z.string(),
  status: ImportStatusSchema,
  progress: ImportProgressSchema.nullable(),
  startedAt: z.number(),
  finishedAt: z.number().nullable(),
  error: SerializedErrorSchema.nullable(),
  /** Things the user should know that did not stop the import (e.g. NaN in a named tensor). */
  warnings: z.array(z.string()),
  result: ImportedGroupSchema.nullable(),
  /** What a finished lens import added to its group (null for other kinds). */
  lens: ImportedLensSchema.nullable()
})
export type ImportJob = z.infer<typeof ImportJobSchema>

/** A group folder name inside the models folder: one path segment, not hidden. */
export const GroupFolderNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/,
    'letters, digits, . _ - (max 80), starting with a letter or digit'
  )

/** `imports:base`: a Hugging Face model folder on the host's disk → a new group. */
export const ImportBaseRequestSchema = z
  .object({
    /** Absolute path of the model folder (save_pretrained, or a Hugging Face cache folder). */
    source: z.string().min(1).max(4096),
    /** Folder name for the new group inside the models folder; default from the model's name. */
    folder: GroupFolderNameSchema.optional(),
    /** Display name; default the repository or folder name. */
    name: z.string().min(1).max(200).optional()
  })
  .strict()
export type ImportBaseRequest = z.infer<typeof ImportBaseRequestSchema>

/**
 * `imports:lens`: a training checkpoint on the host's disk → a lens of a group in the models
 * folder (docs/lens-checkpoints.md). The checkpoint is read as data; nothing in it is executed.
 */
export const ImportLensRequestSchema = z
  .object({
    /** Absolute path of a `*.pt` file, or of a training run's folder (its newest readable one). */
    checkpoint: z.string().min(1).max(4096),
    /** The group's folder name inside the models folder. */
    folder: GroupFolderNameSchema,
    /** Lens id; default from the training run's folder and the layer. */
    id: LensIdSchema.optional(),
    /** Display name; default from the id, layer, T and step. */
    name: z.string().min(1).max(200).optional(),
    /**
     * Absolute path of the model the lens reads activations from when it is not the base
     * (`orig_model_name`): a Hugging Face folder or a PEFT adapter folder.
     */
    orig: z.string().min(1).max(4096).optional(),
    /** With an adapter as `orig`: the folder of the model it adapts. */
    origBase: z.string().min(1).max(4096).optional()
  })
  .strict()
export type ImportLensRequest = z.infer<typeof ImportLensRequestSchema>
