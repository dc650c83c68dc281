import { z } from 'zod'
import {
  JobIdSchema,
  JobResultSchema,
  JobRowsSchema,
  JobStateSchema,
  JobStatusSchema,
  JobSubmitSchema
} from '../../domain/jobs'
import { defineEvent, defineInvoke } from '../define'

/** Jobs domain: analyses, generations and loads queued fairly across clients and run on devices. */
export const jobsInvokes = {
  /** Queue a job; answers at once with its id and queue position (follow `jobs:changed`). */
  'jobs:submit': defineInvoke(
    JobSubmitSchema,
    z.object({ jobId: JobIdSchema, queuePosition: z.number().int().nullable() })
  ),
  /** Cancel: a queued job at once, a running one at its next batch boundary (rows so far are kept). */
  'jobs:cancel': defineInvoke(z.object({ jobId: JobIdSchema }).strict(), JobStateSchema),
  'jobs:get': defineInvoke(z.object({ jobId: JobIdSchema }).strict(), JobStateSchema),
  /** Active jobs and recent finished ones, optionally only this caller's or one status. */
  'jobs:list': defineInvoke(
    z
      .object({ mine: z.boolean().default(false), status: JobStatusSchema.optional() })
      .strict()
      .optional(),
    z.array(JobStateSchema)
  ),
  /** Rows (in position order), metadata and completions of a job so far (finished jobs are kept for a while). */
  'jobs:result': defineInvoke(z.object({ jobId: JobIdSchema }).strict(), JobResultSchema)
} as const

export const jobsEvents = {
  /** A job's status, queue position, stage, progress or ETA changed. */
  'jobs:changed': defineEvent(JobStateSchema),
  /** New rows of an analysis, in position order (a data-parallel run is merged before sending). */
  'jobs:rows': defineEvent(JobRowsSchema)
} as const
