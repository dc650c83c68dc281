/**
 * A job's output as the API shows it: the job's state, and its analysis in the public row and
 * metadata names (the same as every file the app and the command line write).
 */
import { z } from 'zod'
import { JobResultSchema, JobRowsSchema, type JobResult, type JobRows } from '../domain/jobs'
import { PublicMetadataSchema, PublicRowSchema, toPublicMetadata, toPublicRow } from './lensFrame'

export const PublicJobResultSchema = JobResultSchema.extend({
  metadata: PublicMetadataSchema.nullable().describe('Analysis metadata; null for other kinds'),
  rows: z.array(PublicRowSchema)
})
export type PublicJobResult = z.infer<typeof PublicJobResultSchema>

export function toPublicJobResult(result: JobResult): PublicJobResult {
  return {
    ...result,
    metadata: result.metadata ? toPublicMetadata(result.metadata) : null,
    rows: result.rows.map(toPublicRow)
  }
}

export const PublicJobRowsSchema = JobRowsSchema.extend({ rows: z.array(PublicRowSchema) })
export type PublicJobRows = z.infer<typeof PublicJobRowsSchema>

export function toPublicJobRows(rows: JobRows): PublicJobRows {
  return { ...rows, rows: rows.rows.map(toPublicRow) }
}
