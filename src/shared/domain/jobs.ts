import { z } from 'zod'
import { SerializedErrorSchema } from '../ipc/errors'
import { ChatMessageSchema, type ChatMessage } from './chat'
import { AnalysisMetadataSchema, AnalysisRowSchema, AnalyzeOptionsSchema } from './analysis'
import { InterventionRequestSchema, InterventionRowSchema, SweepRequestSchema } from './research'
import { DeviceIdSchema } from './system'

/**
 * `analyze`: explain every token of a text with a lens; `load`: place a group on a device;
 * `generate` / `generate-analyze`: continuations (then their analysis); `intervene`: a causal
 * intervention at token positions; `sweep`: one position explained at every layer.
 */
export const JobKindSchema = z.enum([
  'analyze',
  'load',
  'generate',
  'generate-analyze',
  'intervene',
  'sweep'
])
export type JobKind = z.infer<typeof JobKindSchema>

/** queued → loading → running → done | failed | cancelled. */
export const JobStatusSchema = z.enum([
  'queued',
  'loading',
  'running',
  'done',
  'failed',
  'cancelled'
])
export type JobStatus = z.infer<typeof JobStatusSchema>

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ['done', 'failed', 'cancelled']

export const JobIdSchema = z.string().regex(/^job-[0-9a-z-]+$/, 'job id looks like job-…')

/** Options of a continuation; the engine's generation work owns the meaning. */
export const GenerateOptionsSchema = z
  .object({
    maxNewTokens: z.number().int().min(1).max(4096).default(32),
    temperature: z.number().min(0).max(5).default(1),
    topP: z.number().gt(0).max(1).default(1),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(42),
    completions: z.number().int().min(1).max(64).default(1),
    /** false: exactly maxNewTokens (end-of-turn suppressed); true: stop at the first end of turn. */
    stopAtEndOfTurn: z.boolean().default(false)
  })
  .strict()

/** One chat turn (the contract's one chat message schema); rendered with the group's template. */
export const JobChatMessageSchema = ChatMessageSchema
export type JobChatMessage = ChatMessage

export const JobSubmitSchema = z
  .object({
    kind: JobKindSchema,
    groupId: z.string().min(1).max(200),
    /** Required for analyze / generate-analyze; default: the group's first lens. */
    lensId: z.string().min(1).max(200).optional(),
    text: z.string().max(200_000).optional(),
    /**
     * A conversation instead of `text`: rendered with the group's chat template (system merged into
     * the first user turn where the template has no system role; generation prompt after a user
     * turn; a final assistant turn left open to be continued).
     */
    messages: z.array(JobChatMessageSchema).min(1).max(1000).optional(),
    options: AnalyzeOptionsSchema.optional(),
    generate: GenerateOptionsSchema.optional(),
    /** What an `intervene` job replaces and observes (required for that kind). */
    intervention: InterventionRequestSchema.optional(),
    /** Which position and layers a `sweep` job explains (required for that kind). */
    sweep: SweepRequestSchema.optional(),
    /** Run only on this device (no data-parallel split); default: the manager chooses. */
    deviceId: DeviceIdSchema.optional()
  })
  .strict()
  .refine((j) => j.kind !== 'intervene' || j.intervention !== undefined, {
    message: 'intervention is required for an intervene job',
    path: ['intervention']
  })
  .refine((j) => j.kind !== 'sweep' || j.sweep !== undefined, {
    message: 'sweep is required for a sweep job',
    path: ['sweep']
  })
  .refine((j) => j.kind === 'load' || typeof j.text === 'string' || j.messages !== undefined, {
    message: 'text (or messages) is required for this job kind',
    path: ['text']
  })
  .refine((j) => j.text === undefined || j.messages === undefined, {
    message: 'give text or messages, not both',
    path: ['messages']
  })
export type JobSubmit = z.output<typeof JobSubmitSchema>
export type JobSubmitInput = z.input<typeof JobSubmitSchema>

export const JobProgressSchema = z.object({
  rowsDone: z.number().int().nonnegative(),
  rowsTotal: z.number().int().nonnegative()
})

export const JobStateSchema = z.object({
  id: JobIdSchema,
  kind: JobKindSchema,
  /** Who submitted it (fairness is round robin between clients). */
  clientId: z.string(),
  groupId: z.string(),
  lensId: z.string().nullable(),
  /** The device asked for, if any. */
  requestedDeviceId: DeviceIdSchema.nullable(),
  /** Devices that ran (or run) part of it; more than one for a data-parallel analysis. */
  devices: z.array(DeviceIdSchema),
  status: JobStatusSchema,
  /** 1-based place in the fair queue while queued, else null. */
  queuePosition: z.number().int().positive().nullable(),
  /** What a loading job is doing (e.g. `evicting demo`, `creating sessions`). */
  stage: z.string().nullable(),
  progress: JobProgressSchema.nullable(),
  etaSeconds: z.number().nullable(),
  createdAt: z.number(),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  error: SerializedErrorSchema.nullable(),
  /** Times a crashed worker's share of this job was handed to another try (at most one). */
  retries: z.number().int().nonnegative(),
  /** Plain-language notes (e.g. `cpu:1 crashed; 12 positions retried on cpu:0`). */
  notes: z.array(z.string())
})
export type JobState = z.infer<typeof JobStateSchema>

/**
 * Rows streamed in order (position order; a sweep's in layer order); `startIndex` is the index of
 * `rows[0]` in the job's rows. An intervene job streams `interventions` instead (rows stays empty)
 * and `startIndex` counts those.
 */
export const JobRowsSchema = z.object({
  jobId: JobIdSchema,
  startIndex: z.number().int().nonnegative(),
  rows: z.array(AnalysisRowSchema),
  interventions: z.array(InterventionRowSchema).optional()
})
export type JobRows = z.infer<typeof JobRowsSchema>

export const JobResultSchema = z.object({
  job: JobStateSchema,
  /** Analysis metadata (merged over devices for a data-parallel run), null for other kinds. */
  metadata: AnalysisMetadataSchema.nullable(),
  rows: z.array(AnalysisRowSchema),
  /**
   * Output of generate jobs, one string per completion: the full text (the prompt as rendered,
   * special tokens kept, then the continuation).
   */
  completions: z.array(z.string()),
  /**
   * The new text of each completion without its closing end-of-turn token: the reply a chat
   * shows. Empty for other kinds.
   */
  replies: z.array(z.string()).default([]),
  /** Output of intervene jobs: one row per position and string. */
  interventions: z.array(InterventionRowSchema).default([])
})
export type JobResult = z.infer<typeof JobResultSchema>

export const QueueSummarySchema = z.object({
  queued: z.number().int().nonnegative(),
  running: z.number().int().nonnegative(),
  /** Active jobs plus the most recent finished ones. */
  jobs: z.array(JobStateSchema)
})
export type QueueSummary = z.infer<typeof QueueSummarySchema>
