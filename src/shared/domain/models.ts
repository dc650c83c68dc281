import { z } from 'zod'
import { SerializedErrorSchema } from '../ipc/errors'
import { GroupSettingsSchema } from './devices'

export const LibraryLensSchema = z.object({
  id: z.string(),
  name: z.string(),
  layer: z.number().int(),
  tokens: z.number().int()
})
export type LibraryLens = z.infer<typeof LibraryLensSchema>

/** What the library shows of a group's base model. */
export const LibraryBaseSchema = z.object({
  /** The architecture the graph computes (`gpt2`, `llama`, `qwen3`, `gemma3`, `prenorm-gpt`, …). */
  architecture: z.string(),
  /** Parameters of the graph (a tied head counted once); null when the bundle does not say. */
  parameters: z.number().nullable(),
  /** The dtype of the checkpoint it was imported from; null for generated bundles. */
  checkpointDtype: z.string().nullable(),
  /** The dtype the graph runs in. */
  graphDtype: z.string(),
  hiddenSize: z.number().int(),
  layers: z.number().int(),
  vocabSize: z.number().int()
})
export type LibraryBase = z.infer<typeof LibraryBaseSchema>

/**
 * One model group of the library. A broken bundle stays listed with its errors (it never just
 * vanishes); its `groupId` is then the folder name.
 */
export const LibraryGroupSchema = z.object({
  groupId: z.string(),
  name: z.string(),
  /** `demo`: the built-in demo group (always present); `folder`: found in the models folder. */
  source: z.enum(['demo', 'folder']),
  /** Folder name inside the models folder (or the demo cache folder's name). */
  folder: z.string(),
  status: z.enum(['ok', 'broken']),
  errors: z.array(SerializedErrorSchema),
  contentHash: z.string().nullable(),
  weightBytes: z.number().nullable(),
  /** The bundle's own memory estimate. */
  estimatedBytes: z.number().nullable(),
  /** The estimate by device kind (weights as loaded + one batch at that kind's rows budget). */
  estimatedBytesByKind: z.object({ cpu: z.number(), gpu: z.number() }).nullable(),
  /** The base model (null for a broken bundle). */
  base: LibraryBaseSchema.nullable(),
  /** The estimate corrected from the last measured load (any device), or null. */
  measuredBytes: z.number().nullable(),
  /** Tokens the tokenizer knows (words outside it become `<unk>`); null for a broken bundle. */
  vocabSize: z.number().int().nullable().optional(),
  /** The longest text, in tokens, the base model takes; null for a broken bundle. */
  maxTokens: z.number().int().nullable().optional(),
  lenses: z.array(LibraryLensSchema),
  /** Devices where the group is loaded (or loading). */
  loadedOn: z.array(z.string()),
  /** The base model's id (a Hugging Face id or the bundle's name for it), when readable. */
  baseModel: z.string().nullable().optional(),
  /** Replicas and preload (absent from a manager that keeps no settings). */
  settings: GroupSettingsSchema.optional()
})
export type LibraryGroup = z.infer<typeof LibraryGroupSchema>

export const ModelLibrarySchema = z.object({
  /** The models folder (configurable); only bundles inside it are read. */
  folder: z.string(),
  groups: z.array(LibraryGroupSchema),
  scannedAt: z.number(),
  /** Why the folder cannot be read or watched (the demo group is still listed). */
  folderError: z.string().optional()
})
export type ModelLibrary = z.infer<typeof ModelLibrarySchema>

/**
 * What an analysis of a group without a lens answers: a group with only a base is valid
 * (generation and chat run on it), and this says how to give it a lens (docs/import.md).
 */
export function noLensMessage(groupId: string): string {
  return `group ${groupId} has no lens yet: generation and chat run on its base model; to analyse, import a lens checkpoint into it (\`talkative import lens\`, see docs/import.md)`
}
