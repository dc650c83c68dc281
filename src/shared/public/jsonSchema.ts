/**
 * docs/public-schema.json: the public shapes as JSON Schema (draft 2020-12), generated from the
 * zod schemas every writer uses (`npm run gen:schema`; a test fails when the file is not current).
 */
import { z } from 'zod'
import {
  LensFrameSchema,
  PublicMetadataSchema,
  PublicOptionsSchema,
  PublicRowSchema
} from './lensFrame'
import { PublicRunRecordSchema } from './runRecord'
import { PublicSessionSchema, SessionExportSchema } from './sessionExport'

/** Definition name → schema; later ones refer to earlier ones by `$ref`. */
const DEFINITIONS: Record<string, z.ZodType> = {
  Row: PublicRowSchema,
  Options: PublicOptionsSchema,
  Metadata: PublicMetadataSchema,
  LensFrame: LensFrameSchema,
  Session: PublicSessionSchema,
  SessionExport: SessionExportSchema,
  RunRecord: PublicRunRecordSchema
}

export function publicJsonSchema(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>()
  for (const [id, schema] of Object.entries(DEFINITIONS)) registry.add(schema, { id })
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/$defs/${id}` })
  const defs: Record<string, unknown> = {}
  for (const id of Object.keys(DEFINITIONS)) {
    const { $schema: _schema, $id: _id, ...rest } = schemas[id] as Record<string, unknown>
    defs[id] = rest
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Talkative Workbench public analysis output',
    description:
      'Rows and metadata as the command line, `talkative run`, the app exports and the API write them (docs/public-schema.md). Generated from src/shared/public; do not edit.',
    $defs: defs
  }
}

/** The file's exact text. */
export function publicJsonSchemaText(): string {
  return JSON.stringify(publicJsonSchema(), null, 2) + '\n'
}
