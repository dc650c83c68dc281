import { z } from 'zod'
import { SerializedErrorSchema } from '../ipc/errors'
import { AnalysisMetadataSchema, AnalysisRowSchema, AnalyzeOptionsSchema } from './analysis'
import { ChatMessageSchema } from './chat'
import { GenerateOptionsSchema } from './jobs'
import { InterventionRequestSchema, InterventionRowSchema, SweepRequestSchema } from './research'

/**
 * An offline session: one analysis run as saved on disk while it streams, so a crash or a closed
 * window loses nothing that was shown. Files are `<id>.json` inside the sessions folder only.
 */
export const SessionIdSchema = z
  .string()
  .regex(/^s-[0-9a-z][0-9a-z-]{0,63}$/, 'session id looks like s-… (lower-case letters, digits, -)')
export type SessionId = z.infer<typeof SessionIdSchema>

export { ChatMessageSchema, type ChatMessage } from './chat'

/** What the researcher typed: plain text, or chat messages (kept as typed, plus the rendered text). */
export const SessionInputSchema = z.object({
  mode: z.enum(['text', 'chat']),
  /**
   * Plain mode: the exact text analysed. Chat mode: a readable summary of the messages; the engine
   * renders the messages themselves with the group's own chat template (the rows show the result).
   */
  text: z.string().max(200_000),
  messages: z.array(ChatMessageSchema).max(500).optional()
})
export type SessionInput = z.infer<typeof SessionInputSchema>

/** `interrupted`: the file says running but no job is streaming into it (the app stopped). */
export const SessionStatusSchema = z.enum([
  'running',
  'completed',
  'cancelled',
  'failed',
  'interrupted'
])
export type SessionStatus = z.infer<typeof SessionStatusSchema>

export const SessionKindSchema = z.enum(['analyze', 'generate-analyze', 'intervene', 'sweep'])
export type SessionKind = z.infer<typeof SessionKindSchema>

export const SESSION_FORMAT = 'talkative-session'

/** Where an imported session came from; sessions this app ran have none. */
export const ImportedFromSchema = z.object({
  /** The file's name as the user chose it. */
  fileName: z.string().max(300),
  /**
   * `talkative`: an export of this app (or a session file); `predecessor`: the predecessor's
   * `{metadata, data}` JSON or JSONL, whose metadata is kept as it was in `metadata`.
   */
  format: z.enum(['talkative', 'predecessor']),
  importedAt: z.number(),
  /** The predecessor's metadata, verbatim (it has no analysis metadata of this app). */
  metadata: z.record(z.string(), z.unknown()).optional()
})
export type ImportedFrom = z.infer<typeof ImportedFromSchema>

export const SessionSchema = z.object({
  format: z.literal(SESSION_FORMAT),
  version: z.literal(1),
  id: SessionIdSchema,
  name: z.string().min(1).max(200),
  createdAt: z.number(),
  updatedAt: z.number(),
  appVersion: z.string(),
  kind: SessionKindSchema,
  input: SessionInputSchema,
  groupId: z.string().min(1).max(200),
  lensId: z.string().min(1).max(200),
  /** Content hash of the bundle the rows came from; re-run needs the same one. */
  bundleHash: z.string().nullable(),
  /** Options as submitted, seed included, so a re-run is the same job. */
  options: AnalyzeOptionsSchema,
  generate: GenerateOptionsSchema.optional(),
  /** An intervene session's request (positions, strings, prediction position, lengths). */
  intervention: InterventionRequestSchema.optional(),
  /** A sweep session's request (position, layers, lens choice). */
  sweep: SweepRequestSchema.optional(),
  jobId: z.string().nullable(),
  status: SessionStatusSchema,
  error: SerializedErrorSchema.nullable(),
  metadata: AnalysisMetadataSchema.nullable(),
  rows: z.array(AnalysisRowSchema),
  completions: z.array(z.string()),
  /** Set by import only (absent in files saved before imports were marked). */
  importedFrom: ImportedFromSchema.optional(),
  /** An intervene session's rows (absent in files from before interventions: none). */
  interventions: z.array(InterventionRowSchema).default([])
})
export type Session = z.infer<typeof SessionSchema>

/** A history entry: everything but the rows. */
export const SessionSummarySchema = SessionSchema.omit({
  rows: true,
  metadata: true,
  interventions: true
}).extend({
  rowCount: z.number().int().nonnegative(),
  layer: z.number().int().nullable()
})
export type SessionSummary = z.infer<typeof SessionSummarySchema>

export function summarizeSession(session: Session): SessionSummary {
  const { rows, metadata, interventions, ...rest } = session
  return {
    ...rest,
    rowCount: session.kind === 'intervene' ? interventions.length : rows.length,
    layer: metadata?.layer ?? null
  }
}

export const ExportFormatSchema = z.enum(['json', 'jsonl', 'csv'])
export type ExportFormat = z.infer<typeof ExportFormatSchema>
