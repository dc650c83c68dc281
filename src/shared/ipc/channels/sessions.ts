import { z } from 'zod'
import { AnalyzeOptionsSchema } from '../../domain/analysis'
import { GenerateOptionsSchema } from '../../domain/jobs'
import { InterventionRequestSchema, SweepRequestSchema } from '../../domain/research'
import {
  ExportFormatSchema,
  SessionIdSchema,
  SessionInputSchema,
  SessionKindSchema,
  SessionSchema,
  SessionSummarySchema
} from '../../domain/sessions'
import { defineEvent, defineInvoke } from '../define'

export const SessionProblemSchema = z.object({ file: z.string(), message: z.string() })

export const SessionListSchema = z.object({
  folder: z.string(),
  /** Newest first. */
  sessions: z.array(SessionSummarySchema),
  /** Files that could not be read (corrupt, wrong shape): reported and skipped. */
  problems: z.array(SessionProblemSchema)
})
export type SessionList = z.infer<typeof SessionListSchema>

export const SessionRunSchema = z
  .object({
    kind: SessionKindSchema.default('analyze'),
    groupId: z.string().min(1).max(200),
    lensId: z.string().min(1).max(200).optional(),
    input: SessionInputSchema,
    options: AnalyzeOptionsSchema.prefault({}),
    generate: GenerateOptionsSchema.optional(),
    /** Required for an `intervene` run. */
    intervention: InterventionRequestSchema.optional(),
    /** Required for a `sweep` run. */
    sweep: SweepRequestSchema.optional(),
    name: z.string().min(1).max(200).optional()
  })
  .strict()
  .refine((r) => r.kind !== 'intervene' || r.intervention !== undefined, {
    message: 'intervention is required for an intervene run',
    path: ['intervention']
  })
  .refine((r) => r.kind !== 'sweep' || r.sweep !== undefined, {
    message: 'sweep is required for a sweep run',
    path: ['sweep']
  })
export type SessionRunInput = z.input<typeof SessionRunSchema>

export const SessionRunResultSchema = z.object({
  session: SessionSummarySchema,
  jobId: z.string(),
  queuePosition: z.number().int().nullable()
})

export const RerunCheckSchema = z.object({ possible: z.boolean(), reason: z.string() })

const IdInput = z.object({ id: SessionIdSchema }).strict()

/** Sessions domain: every analysis run saved as it streams; history, export, import, re-run. */
export const sessionsInvokes = {
  'sessions:list': defineInvoke(z.object({}).strict().optional(), SessionListSchema),
  /** A saved session with its rows (reopened without recomputing). */
  'sessions:get': defineInvoke(IdInput, SessionSchema),
  /** Submit an analysis job and record it as a new session that fills as rows stream. */
  'sessions:run': defineInvoke(SessionRunSchema, SessionRunResultSchema),
  'sessions:rename': defineInvoke(
    z.object({ id: SessionIdSchema, name: z.string().trim().min(1).max(200) }).strict(),
    SessionSummarySchema
  ),
  'sessions:delete': defineInvoke(IdInput, z.object({ id: SessionIdSchema })),
  /** The file content of an export; the client saves it. */
  'sessions:export': defineInvoke(
    z.object({ id: SessionIdSchema, format: ExportFormatSchema }).strict(),
    z.object({ fileName: z.string(), mimeType: z.string(), content: z.string() })
  ),
  /**
   * Import a file: this app's exports (JSON, JSONL) and session files, or the predecessor's
   * `{metadata, data}` JSON and JSONL (one session per analysis). Validated, each saved under a
   * new id and marked `importedFrom`.
   */
  'sessions:import': defineInvoke(
    z.object({ fileName: z.string().max(300), content: z.string().max(100_000_000) }).strict(),
    z.object({ sessions: z.array(SessionSummarySchema).min(1) })
  ),
  /** Whether a re-run would reproduce the session exactly (same bundle content hash), and why not. */
  'sessions:rerun-check': defineInvoke(IdInput, RerunCheckSchema),
  /** Run the session's job again with the same inputs, options and seed, as a new session. */
  'sessions:rerun': defineInvoke(IdInput, SessionRunResultSchema)
} as const

export const sessionsEvents = {
  /** A session was created, filled, finished or renamed (`summary`), or deleted (`summary: null`). */
  'sessions:changed': defineEvent(
    z.object({ id: SessionIdSchema, summary: SessionSummarySchema.nullable() })
  )
} as const

export { SessionSchema }
