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
  result: ImportedGroupSchema.nullable()
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
