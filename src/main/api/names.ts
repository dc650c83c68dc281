/**
 * The one place where the seed's /api/v2 names meet the contract's: snake_case on the wire,
 * camelCase inside. Requests are renamed on the way in, responses on the way out, field paths of
 * errors on the way back, and the OpenAPI document is renamed with the same functions.
 */
import { z } from 'zod'
import { DeviceIdSchema } from '@shared/domain/system'
import { renameKeysDeep, snakeCase } from '@shared/public/names'

export { camelCase, renameKeysDeep, snakeCase } from '@shared/public/names'

/** A contract value as the API shows it. */
export function toWire(value: unknown): unknown {
  return renameKeysDeep(value, snakeCase)
}

/**
 * A copy of a contract object schema whose keys are snake_case: the same field schemas (ranges,
 * defaults, descriptions), so the API validates exactly what the contract validates.
 */
export function snakeObject<S extends z.ZodRawShape>(schema: z.ZodObject<S>): z.ZodObject {
  const shape: Record<string, z.ZodType> = {}
  for (const [key, field] of Object.entries(schema.shape))
    shape[snakeCase(key)] = field as z.ZodType
  return z.strictObject(shape)
}

/**
 * Seed option names accepted next to the contract's own (`options.calculate_token_salience` is
 * the seed's spelling of `options.salience`); `invert` flips a boolean (`no_kl` ↔ `kl`).
 */
export const SEED_ANALYSIS_OPTION_ALIASES: Record<string, { to: string; invert?: boolean }> = {
  calculate_token_salience: { to: 'salience' },
  logit_lens_analysis: { to: 'logitLens' },
  no_kl: { to: 'kl', invert: true }
}

/** Contract field names that the API spells differently (seed names), after snake-casing. */
const FIELD_RENAMES: Record<string, string> = {
  lens_id: 'model_id',
  text: 'prompt'
}

/**
 * A contract field path (`options.bestOfK`, `lensId`) as the API caller spelled it. `overrides`
 * renames paths for one endpoint (e.g. `group_id` → `model_id` where a lens was named), with the
 * paths below them.
 */
export function toWireField(
  field: string | undefined,
  overrides: Record<string, string> = {}
): string | undefined {
  if (field === undefined) return undefined
  const snake = field.split('.').map(snakeCase).join('.')
  if (overrides[snake]) return overrides[snake]
  // An override also renames the paths below it; renamed to '' it is dropped from them
  // (`intervention.positions.0` → `positions.0` where the body has the fields at the top level).
  for (const [from, to] of Object.entries(overrides)) {
    if (!snake.startsWith(`${from}.`)) continue
    const below = snake.slice(from.length + 1)
    return to ? `${to}.${below}` : below
  }
  return FIELD_RENAMES[snake] ?? snake
}

/**
 * `device_id` as the seed took it: an integer is a GPU index (`1` → `cuda:1`); a string is a
 * device id (`cpu`, `cpu:N`, `cuda:N`).
 */
export const DeviceRefSchema = z
  .union([z.number().int().min(0).max(1024), DeviceIdSchema])
  .describe('GPU index (integer) or device id: cpu, cpu:N, cuda:N')

export function toDeviceId(ref: number | string | undefined): string | undefined {
  if (ref === undefined) return undefined
  return typeof ref === 'number' ? `cuda:${ref}` : ref
}

/** Rewrites every `properties` / `required` name of a JSON Schema with `rename`. */
export function renameJsonSchema(schema: unknown, rename: (key: string) => string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => renameJsonSchema(s, rename))
  if (schema === null || typeof schema !== 'object') return schema
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(schema)) {
    if (key === 'properties' && v && typeof v === 'object' && !Array.isArray(v)) {
      out.properties = Object.fromEntries(
        Object.entries(v).map(([name, sub]) => [rename(name), renameJsonSchema(sub, rename)])
      )
    } else if (key === 'required' && Array.isArray(v)) {
      out.required = v.map((name) => (typeof name === 'string' ? rename(name) : name))
    } else if (key === 'default' || key === 'examples' || key === 'const' || key === 'enum') {
      out[key] = v
    } else {
      out[key] = renameJsonSchema(v, rename)
    }
  }
  return out
}
