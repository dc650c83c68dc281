import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { AppError, describeZodError } from '@shared/ipc/errors'
import { ChatMessagesSchema, type ChatMessage } from '../chat/messages'

/** One dataset record: a text to analyse, or a conversation to format with the chat template. */
export type DatasetRecord =
  | { id: string | number; key: string; line: number; text: string }
  | { id: string | number; key: string; line: number; messages: ChatMessage[] }

export interface BadLine {
  /** 1-based line number in the input file. */
  line: number
  message: string
  field?: string
}

export type BadLinePolicy = 'skip' | 'fail'

const IdSchema = z.union([
  z.string().min(1, 'must be a non-empty string'),
  z.number().int('must be an integer or a string')
])

// Extra keys (labels, metadata) are allowed and ignored: datasets carry them.
const RecordSchema = z
  .object({
    id: IdSchema,
    text: z.string().optional(),
    messages: ChatMessagesSchema.optional()
  })
  .loose()
  .superRefine((r, ctx) => {
    const has = Number(r.text !== undefined) + Number(r.messages !== undefined)
    if (has !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          has === 0 ? 'needs "text" or "messages"' : 'has both "text" and "messages"; give one',
        path: []
      })
    }
  })

/** The key an id is matched by on resume: output formats (CSV) keep no type, so 7 and "7" are one id. */
export function recordKey(id: string | number): string {
  return String(id)
}

export interface ParsedDataset {
  records: DatasetRecord[]
  badLines: BadLine[]
}

/**
 * Parses JSON Lines: one record per line, blank lines ignored. Malformed lines are collected with
 * their line number; with the 'fail' policy the first one throws instead.
 */
export function parseDataset(content: string, policy: BadLinePolicy, file?: string): ParsedDataset {
  const records: DatasetRecord[] = []
  const badLines: BadLine[] = []
  const seen = new Map<string, number>()
  const lines = content.split('\n')
  const reject = (bad: BadLine): void => {
    if (policy === 'fail') {
      throw new AppError('invalid_input', `${file ?? 'dataset'} line ${bad.line}: ${bad.message}`, {
        field: bad.field,
        file
      })
    }
    badLines.push(bad)
  }
  lines.forEach((raw, index) => {
    const line = index + 1
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (text.trim() === '') return
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (err) {
      reject({
        line,
        message: `not valid JSON (${err instanceof Error ? err.message : String(err)})`
      })
      return
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      reject({ line, message: 'a record must be a JSON object with "id" and "text" or "messages"' })
      return
    }
    const parsed = RecordSchema.safeParse(value)
    if (!parsed.success) {
      const { message, field } = describeZodError(parsed.error)
      reject({ line, message, field })
      return
    }
    const r = parsed.data
    const key = recordKey(r.id)
    const earlier = seen.get(key)
    if (earlier !== undefined) {
      reject({
        line,
        message: `duplicate id ${JSON.stringify(r.id)} (first on line ${earlier})`,
        field: 'id'
      })
      return
    }
    seen.set(key, line)
    if (r.messages) records.push({ id: r.id, key, line, messages: r.messages })
    else records.push({ id: r.id, key, line, text: r.text ?? '' })
  })
  return { records, badLines }
}

export function readDataset(file: string, policy: BadLinePolicy): ParsedDataset {
  let content: string
  try {
    content = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new AppError(
      code === 'ENOENT' ? 'not_found' : 'invalid_input',
      code === 'ENOENT'
        ? `dataset file not found: ${file}`
        : `cannot read dataset ${file}: ${String(err)}`,
      { field: 'dataset', file }
    )
  }
  return parseDataset(content, policy, file)
}
