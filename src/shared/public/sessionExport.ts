/**
 * A saved session as the app exports it: `{metadata, data, session}`, the public `{metadata, data}`
 * of its analysis plus what only a session has (its input, name, status, completions), so an
 * export read back is the same session.
 */
import { z } from 'zod'
import { ChatMessageSchema } from '../domain/chat'
import { GenerateOptionsSchema } from '../domain/jobs'
import {
  InterventionRequestSchema,
  InterventionRowSchema,
  SweepRequestSchema
} from '../domain/research'
import {
  SESSION_FORMAT,
  SessionKindSchema,
  SessionStatusSchema,
  type Session
} from '../domain/sessions'
import { SerializedErrorSchema } from '../ipc/errors'
import {
  LensFrameSchema,
  fromPublicMetadata,
  fromPublicOptions,
  fromPublicRow,
  toPublicMetadata,
  toPublicOptions,
  toPublicRow
} from './lensFrame'
import { camelCase, renameKeysDeep, snakeCase } from './names'

export const PublicSessionSchema = z
  .strictObject({
    format: z.literal(SESSION_FORMAT),
    version: z.literal(1),
    id: z.string(),
    name: z.string(),
    created_at: z.number().describe('Milliseconds since 1970'),
    updated_at: z.number(),
    app_version: z.string(),
    kind: SessionKindSchema,
    input: z
      .strictObject({
        mode: z.enum(['text', 'chat']),
        text: z.string(),
        messages: z.array(ChatMessageSchema).optional()
      })
      .describe('What was typed: a text, or chat messages (and a readable summary of them)'),
    generation: z
      .strictObject({
        max_new_tokens: z.number().int(),
        temperature: z.number(),
        top_p: z.number(),
        seed: z.number().int(),
        completions: z.number().int(),
        stop_at_end_of_turn: z.boolean()
      })
      .nullable()
      .describe('Continuation options of a generate-then-analyse run; null otherwise'),
    completions: z.array(z.string()),
    intervention: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('An intervention run’s request (positions, strings, next_position, top_k, …)'),
    sweep: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('A layer sweep’s request (position, layers, lenses)'),
    interventions: z
      .array(z.record(z.string(), z.unknown()))
      .optional()
      .describe('An intervention run’s results, one per position and string (docs/api.md keys)'),
    job_id: z.string().nullable(),
    status: SessionStatusSchema,
    error: SerializedErrorSchema.nullable(),
    imported_from: z
      .strictObject({
        file_name: z.string(),
        format: z.enum(['talkative', 'predecessor']),
        imported_at: z.number(),
        metadata: z.record(z.string(), z.unknown()).optional()
      })
      .nullable()
  })
  .describe('What only a saved session has: its input, name, status and continuations')
export type PublicSession = z.infer<typeof PublicSessionSchema>

export const SessionExportSchema = LensFrameSchema.extend({
  session: PublicSessionSchema
}).describe('A session exported from the app: {metadata, data} plus the session')
export type SessionExport = z.infer<typeof SessionExportSchema>

export function toSessionExport(s: Session): SessionExport {
  const metadata = toPublicMetadata(s.metadata, {
    groupId: s.groupId,
    lensId: s.lensId,
    options: s.options,
    bundleHash: s.bundleHash,
    status: s.status,
    analysedPositions: s.rows.length
  })
  return {
    // The options as submitted: the effective batch figures are `rows_per_batch` / `batch_size`.
    metadata: { ...metadata, options: toPublicOptions(s.options) },
    data: s.rows.map(toPublicRow),
    session: {
      format: s.format,
      version: s.version,
      id: s.id,
      name: s.name,
      created_at: s.createdAt,
      updated_at: s.updatedAt,
      app_version: s.appVersion,
      kind: s.kind,
      input: s.input,
      generation: s.generate
        ? (renameKeysDeep(s.generate, snakeCase) as PublicSession['generation'])
        : null,
      completions: s.completions,
      ...(s.intervention ? { intervention: snake(s.intervention) } : {}),
      ...(s.sweep ? { sweep: snake(s.sweep) } : {}),
      ...(s.interventions.length > 0 ? { interventions: s.interventions.map(snake) } : {}),
      job_id: s.jobId,
      status: s.status,
      error: s.error,
      imported_from: s.importedFrom
        ? (renameKeysDeep(s.importedFrom, snakeCase) as PublicSession['imported_from'])
        : null
    }
  }
}

export function fromSessionExport(e: SessionExport): Session {
  const s = e.session
  const metadata = fromPublicMetadata(e.metadata)
  const importedFrom = s.imported_from
    ? {
        fileName: s.imported_from.file_name,
        format: s.imported_from.format,
        importedAt: s.imported_from.imported_at,
        ...(s.imported_from.metadata ? { metadata: s.imported_from.metadata } : {})
      }
    : undefined
  return {
    format: s.format,
    version: s.version,
    id: s.id as Session['id'],
    name: s.name,
    createdAt: s.created_at,
    updatedAt: s.updated_at,
    appVersion: s.app_version,
    kind: s.kind,
    input: s.input,
    groupId: e.metadata.group_id,
    lensId: e.metadata.lens_id,
    bundleHash: e.metadata.bundle_hash,
    options: fromPublicOptions(e.metadata.options),
    ...(s.generation
      ? { generate: GenerateOptionsSchema.parse(renameKeysDeep(s.generation, camelCase)) }
      : {}),
    jobId: s.job_id,
    status: s.status,
    error: s.error,
    metadata,
    rows: e.data.map(fromPublicRow),
    completions: s.completions,
    ...(s.intervention
      ? { intervention: InterventionRequestSchema.parse(camel(s.intervention)) }
      : {}),
    ...(s.sweep ? { sweep: SweepRequestSchema.parse(camel(s.sweep)) } : {}),
    interventions: (s.interventions ?? []).map((r) => InterventionRowSchema.parse(camel(r))),
    ...(importedFrom ? { importedFrom } : {})
  }
}

function snake(value: object): Record<string, unknown> {
  return renameKeysDeep(value, snakeCase) as Record<string, unknown>
}

function camel(value: Record<string, unknown>): unknown {
  return renameKeysDeep(value, camelCase)
}
