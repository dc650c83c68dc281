import { z } from 'zod'
import { renameJsonSchema, snakeCase } from './names'
import { ApiErrorSchema } from './schemas'
import type { Endpoint } from './endpoint'

const REASONS: Record<number, string> = {
  400: 'Bad input; `error.field` names the offending field',
  401: 'No or wrong bearer token',
  404: 'Unknown id (lens, group, device, job)',
  409: 'Conflict (e.g. unloading a pinned group without force)',
  413: 'Body over the size limit',
  422: 'The model bundle is invalid',
  503: 'No device can take the job now; `error.message` says why'
}

/** JSON Schema of a zod schema as the wire shows it (snake_case names). */
function wireSchema(schema: z.ZodType, io: 'input' | 'output'): unknown {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'openapi-3.0' })
  const { $schema: _drop, ...rest } = json as Record<string, unknown>
  return renameJsonSchema(rest, snakeCase)
}

/** The OpenAPI 3 document of /api/v2, generated from the endpoint table's zod schemas. */
export function buildOpenApi(endpoints: readonly Endpoint[], version: string): unknown {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const e of endpoints) {
    const responses: Record<string, unknown> = {}
    for (const r of e.responses) {
      responses[String(r.status)] = {
        description: r.description,
        content: { 'application/json': { schema: wireSchema(r.schema, 'output') } }
      }
    }
    for (const status of e.errors) {
      responses[String(status)] = {
        description: REASONS[status] ?? 'Error',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } }
      }
    }
    const parameters = [...e.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' }
    }))
    const operation: Record<string, unknown> = { summary: e.summary, responses }
    if (parameters.length) operation.parameters = parameters
    if (e.request) {
      operation.requestBody = {
        required: true,
        content: { 'application/json': { schema: wireSchema(e.request, 'input') } }
      }
    }
    const path = (paths[`/api/v2${e.path}`] ??= {})
    path[e.method.toLowerCase()] = operation
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'Talkative Workbench scripting API',
      version,
      description:
        'The Workbench over HTTP: the same services as the app. WebSocket at /api/v2/ws: events, and analyze / generate / generate_and_analyze / cancel_request / status messages with the bodies of the endpoints below (docs/api.md).'
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: wireSchema(ApiErrorSchema, 'output') }
    },
    paths
  }
}
