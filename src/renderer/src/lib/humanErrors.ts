import type { z } from 'zod'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import { GenerateOptionsSchema } from '@shared/domain/jobs'

/**
 * Errors in the words of the form a researcher filled in. Validation errors arrive from main with
 * the offending field's dotted path (`options.bestOfK`) and zod's own text (`sessions:run:
 * options.bestOfK: Too big: expected number to be <=512`); the sentence shown is built from the
 * field's label and the limits read from the same schema main validates with, so the two never
 * disagree.
 */

type Schema = z.ZodType

const positions = AnalyzeOptionsSchema.shape.positions.unwrap()
const optimise = AnalyzeOptionsSchema.shape.optimise.unwrap().shape

/** The console's number fields, by the path main names them with. */
export const NUMBER_FIELDS = {
  'options.bestOfK': { label: 'Best of K', schema: AnalyzeOptionsSchema.shape.bestOfK },
  'options.temperature': { label: 'Temperature', schema: AnalyzeOptionsSchema.shape.temperature },
  'options.seed': { label: 'Seed', schema: AnalyzeOptionsSchema.shape.seed },
  'options.lastNMessages': {
    label: 'N (last messages)',
    schema: AnalyzeOptionsSchema.shape.lastNMessages
  },
  'options.positions.start': { label: 'From (position)', schema: positions.shape.start },
  'options.positions.end': { label: 'To (position)', schema: positions.shape.end },
  'options.optimise.samplesPerIteration': {
    label: 'Samples per iteration',
    schema: optimise.samplesPerIteration
  },
  'options.optimise.salienceThreshold': {
    label: 'Salience threshold',
    schema: optimise.salienceThreshold
  },
  'options.optimise.maxTempIncreases': {
    label: 'Temperature increases',
    schema: optimise.maxTempIncreases
  },
  'options.optimise.tempIncreaseFactor': {
    label: 'Temperature factor',
    schema: optimise.tempIncreaseFactor
  },
  'generate.maxNewTokens': {
    label: 'New tokens',
    schema: GenerateOptionsSchema.shape.maxNewTokens
  },
  'generate.temperature': { label: 'Temperature', schema: GenerateOptionsSchema.shape.temperature },
  'generate.seed': { label: 'Seed', schema: GenerateOptionsSchema.shape.seed }
} as const satisfies Record<string, { label: string; schema: Schema }>

export type NumberFieldPath = keyof typeof NUMBER_FIELDS

/** Other fields main may name, and what the form calls them. */
const FIELD_LABELS: Record<string, string> = {
  'options.positions': 'Positions',
  messages: 'Messages',
  'input.messages': 'Messages',
  groupId: 'Group',
  lensId: 'Lens'
}

export interface NumberLimits {
  min: number | null
  max: number | null
  integer: boolean
}

interface NumberLike {
  minValue: number | null
  maxValue: number | null
  isInt: boolean
}

/** The number schema under defaults and optionals, read for its bounds. */
export function numberLimits(schema: Schema): NumberLimits {
  let inner: unknown = schema
  for (let i = 0; i < 4 && inner && typeof inner === 'object' && 'unwrap' in inner; i++) {
    inner = (inner as { unwrap(): unknown }).unwrap()
  }
  const n = inner as Partial<NumberLike>
  // An integer schema reports the safe-integer range as its bounds when none was set.
  const bound = (v: unknown): number | null =>
    typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < Number.MAX_SAFE_INTEGER ? v : null
  return { min: bound(n.minValue), max: bound(n.maxValue), integer: n.isInt === true }
}

function rangeSentence(label: string, limits: NumberLimits, wholeNumber: boolean): string {
  const what = wholeNumber ? 'a whole number ' : ''
  if (limits.min !== null && limits.max !== null)
    return `${label} must be ${what}between ${limits.min} and ${limits.max}`
  if (limits.min !== null) return `${label} must be ${what}at least ${limits.min}`
  if (limits.max !== null) return `${label} must be ${what}at most ${limits.max}`
  return wholeNumber ? `${label} must be a whole number` : `${label} needs a number`
}

/** What is wrong with one typed number field; the value when nothing is. */
export function checkNumberField(
  path: NumberFieldPath,
  raw: string
): { ok: true; value: number } | { ok: false; message: string } {
  const { label, schema } = NUMBER_FIELDS[path]
  const text = raw.trim()
  // A cleared field is not 0: Number('') is 0, and a run with seed 0 is not what was asked for.
  if (text === '') return { ok: false, message: `${label} needs a number` }
  const value = Number(text)
  if (!Number.isFinite(value)) return { ok: false, message: `${label} needs a number` }
  const limits = numberLimits(schema)
  const parsed = schema.safeParse(value)
  if (parsed.success) return { ok: true, value }
  const notWhole = limits.integer && !Number.isInteger(value)
  return { ok: false, message: rangeSentence(label, limits, notWhole) }
}

/** `sessions:run: options.bestOfK: Too big…` → `Too big…`: the channel and the path said once. */
function stripPrefixes(message: string, field: string | undefined): string {
  let m = message.replace(/^[a-z]+:[a-z-]+:\s*/, '')
  if (field && m.startsWith(`${field}: `)) m = m.slice(field.length + 2)
  return m
}

/** The message a person reads for an error from main, and the field it is about (if any). */
export function humanError(error: { code?: string; message: string; field?: string }): {
  message: string
  field?: string
} {
  const field = error.field
  if (field && field in NUMBER_FIELDS) {
    const { label, schema } = NUMBER_FIELDS[field as NumberFieldPath]
    const limits = numberLimits(schema)
    const notWhole = /\bint(eger)?\b/i.test(error.message)
    return { message: rangeSentence(label, limits, notWhole), field }
  }
  const stripped = stripPrefixes(error.message, field)
  if (field && FIELD_LABELS[field]) {
    const text = stripped.charAt(0).toLowerCase() + stripped.slice(1)
    return { message: `${FIELD_LABELS[field]}: ${text}`, field }
  }
  // A sentence of its own ("The text has 640 tokens; …"), unless it starts with a name that must
  // stay as written (a file name such as bad.json, an id).
  const message = /^[a-z]+\s/.test(stripped)
    ? stripped.charAt(0).toUpperCase() + stripped.slice(1)
    : stripped
  return field ? { message, field } : { message }
}
