import { z } from 'zod'
import {
  ImportBaseRequestSchema,
  ImportIdSchema,
  ImportJobSchema,
  ImportLensRequestSchema
} from '../../domain/imports'
import { defineEvent, defineInvoke } from '../define'

/**
 * Imports domain: checkpoints converted into model groups as jobs with progress and cancel. Every
 * import kind (`imports:base`, `imports:lens`) answers at once with its job; follow
 * `imports:changed` for progress and the outcome. Paths are on the host's disk (in a browser on
 * the headless host: the server's).
 */
export const importsInvokes = {
  /** Import a Hugging Face model folder as a new group in the models folder. */
  'imports:base': defineInvoke(ImportBaseRequestSchema, ImportJobSchema),
  /** Import a lens training checkpoint (`*.pt`) into a group of the models folder. */
  'imports:lens': defineInvoke(ImportLensRequestSchema, ImportJobSchema),
  /** Cancel a running import: it stops at the next tensor and leaves nothing behind. */
  'imports:cancel': defineInvoke(z.object({ importId: ImportIdSchema }).strict(), ImportJobSchema),
  /** Running imports and the most recent finished ones, newest first. */
  'imports:list': defineInvoke(z.object({}).strict().optional(), z.array(ImportJobSchema))
} as const

export const importsEvents = {
  /** An import's stage, progress (at most a few times a second) or status changed. */
  'imports:changed': defineEvent(ImportJobSchema)
} as const
