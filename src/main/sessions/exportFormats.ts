import { AppError } from '@shared/ipc/errors'
import { SessionSchema, type ExportFormat, type Session } from '@shared/domain/sessions'
import { describeZodError } from '@shared/ipc/errors'
import { csvLine } from '../engine'

/** CSV columns in the seed's snake_case, so existing notebooks read the file unchanged. */
export const CSV_COLUMNS = [
  'position',
  'token',
  'explanation',
  'mse',
  'relative_rmse',
  'kl_divergence',
  'logit_lens_top',
  'token_salience',
  'explanation_structured'
] as const

export interface ExportedFile {
  fileName: string
  mimeType: string
  content: string
}

function safeBaseName(session: Session): string {
  const slug = session.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
  return slug ? `${slug}-${session.id}` : session.id
}

/** JSON: the session file itself; JSONL: a header line, then one line per row; CSV: the rows. */
export function exportSession(session: Session, format: ExportFormat): ExportedFile {
  const base = safeBaseName(session)
  if (format === 'json') {
    return {
      fileName: `${base}.json`,
      mimeType: 'application/json',
      content: JSON.stringify(session, null, 2) + '\n'
    }
  }
  if (format === 'jsonl') {
    const { rows, ...header } = session
    const lines = [JSON.stringify({ type: 'session', ...header })]
    for (const row of rows) lines.push(JSON.stringify({ type: 'row', ...row }))
    return {
      fileName: `${base}.jsonl`,
      mimeType: 'application/x-ndjson',
      content: lines.join('\n') + '\n'
    }
  }
  let content = csvLine(CSV_COLUMNS)
  for (const r of session.rows) {
    content += csvLine([
      r.position,
      r.token,
      r.explanation,
      r.mse,
      r.relativeRmse,
      r.klDivergence,
      r.logitLensTop,
      r.tokenSalience.join(' '),
      // As a JSON array: explanation tokens carry their own spaces (' cat'), so joining them with
      // spaces could not be split back into one token per salience value.
      JSON.stringify(r.explanationStructured)
    ])
  }
  return { fileName: `${base}.csv`, mimeType: 'text/csv', content }
}

/**
 * Reads a session from an exported JSON or JSONL file. Throws `invalid_input` naming the file and
 * the first offending field (or line) when it is not one.
 */
export function parseSessionFile(fileName: string, content: string): Session {
  const trimmed = content.trim()
  if (!trimmed) throw new AppError('invalid_input', `${fileName} is empty`, { file: fileName })
  let candidate: unknown
  if (isJsonlHeader(trimmed.split(/\r?\n/, 1)[0] ?? '')) {
    const lines = trimmed.split(/\r?\n/)
    const rows: unknown[] = []
    let header: Record<string, unknown> | undefined
    for (const [i, line] of lines.entries()) {
      if (!line.trim()) continue
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch (err) {
        throw new AppError(
          'invalid_input',
          `${fileName} line ${i + 1}: ${(err as Error).message}`,
          {
            file: fileName,
            field: `line ${i + 1}`
          }
        )
      }
      const { type, ...rest } = (value ?? {}) as Record<string, unknown>
      if (type === 'session' && !header) header = rest
      else if (type === 'row') rows.push(rest)
      else
        throw new AppError('invalid_input', `${fileName} line ${i + 1}: expected a row line`, {
          file: fileName,
          field: `line ${i + 1}`
        })
    }
    candidate = { ...header, rows }
  } else {
    try {
      candidate = JSON.parse(trimmed)
    } catch (err) {
      throw new AppError('invalid_input', `${fileName} is not JSON: ${(err as Error).message}`, {
        file: fileName
      })
    }
  }
  const parsed = SessionSchema.safeParse(candidate)
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error)
    throw new AppError('invalid_input', `${fileName} is not a session file: ${message}`, {
      file: fileName,
      field
    })
  }
  return parsed.data
}

/**
 * A JSONL export starts with its session line, and a run that stopped before its first row has
 * nothing else, so the file is one line; a JSON export's first line is never a whole object.
 */
function isJsonlHeader(firstLine: string): boolean {
  try {
    const value: unknown = JSON.parse(firstLine)
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { type?: unknown }).type === 'session'
    )
  } catch {
    return false
  }
}
