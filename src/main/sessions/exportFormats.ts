/**
 * Session files in and out. Exports use the public shape (docs/public-schema.md): JSON is
 * `{metadata, data, session}`, JSONL the same object on one line (the predecessor's JSONL held one
 * `{metadata, data}` per line), CSV the public row columns. Imports read those, the session files
 * and JSONL exports of earlier versions, and the predecessor's `{metadata, data}` JSON and JSONL
 * (and bare row arrays), one session per analysis.
 */
import { z } from 'zod'
import { AnalyzeOptionsSchema, type AnalysisRow } from '@shared/domain/analysis'
import {
  SESSION_FORMAT,
  SessionSchema,
  type ExportFormat,
  type Session
} from '@shared/domain/sessions'
import { AppError, describeZodError } from '@shared/ipc/errors'
import { rowCsvHeader, rowCsvLine } from '@shared/public/csv'
import { toPublicRow } from '@shared/public/lensFrame'
import {
  SessionExportSchema,
  fromSessionExport,
  toSessionExport
} from '@shared/public/sessionExport'

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

export function exportSession(session: Session, format: ExportFormat): ExportedFile {
  const base = safeBaseName(session)
  if (format === 'json') {
    return {
      fileName: `${base}.json`,
      mimeType: 'application/json',
      content: JSON.stringify(toSessionExport(session), null, 2) + '\n'
    }
  }
  if (format === 'jsonl') {
    return {
      fileName: `${base}.jsonl`,
      mimeType: 'application/x-ndjson',
      content: JSON.stringify(toSessionExport(session)) + '\n'
    }
  }
  let content = rowCsvHeader()
  for (const r of session.rows) content += rowCsvLine(toPublicRow(r))
  return { fileName: `${base}.csv`, mimeType: 'text/csv', content }
}

/** A session as read from a file, before the import gives it an id of this app. */
export type ImportedSession = Omit<Session, 'importedFrom'> & {
  importedFrom: NonNullable<Session['importedFrom']>
}

function invalid(fileName: string, message: string, field?: string): AppError {
  return new AppError('invalid_input', `${fileName}${message}`, {
    file: fileName,
    ...(field ? { field } : {})
  })
}

function zodProblem(
  fileName: string,
  where: string,
  what: string,
  error: z.ZodError,
  root?: string
): AppError {
  const { message, field } = describeZodError(error, root)
  return invalid(fileName, `${where} is not ${what}: ${message}`, field)
}

// ---------------------------------------------------------------- the predecessor's files

/** A predecessor row: `to_json` drops `explanation`, and KL −1.0 means "not computed". */
const PredecessorRowSchema = z.looseObject({
  position: z.number().int().nonnegative(),
  token: z.string(),
  token_id: z.number().int().nullable().optional(),
  explanation: z.string().optional(),
  explanation_structured: z.array(z.string()).default([]),
  mse: z.number(),
  relative_rmse: z.number(),
  kl_divergence: z.number().nullable().optional(),
  token_salience: z.array(z.number()).nullable().optional(),
  logit_lens_top: z.string().nullable().optional(),
  source_text: z.string().nullable().optional()
})

const PredecessorFrameSchema = z.looseObject({
  metadata: z.record(z.string(), z.unknown()).default({}),
  data: z.array(PredecessorRowSchema)
})

function fromPredecessorRow(r: z.output<typeof PredecessorRowSchema>): AnalysisRow {
  const kl = r.kl_divergence
  return {
    position: r.position,
    token: r.token,
    tokenId: r.token_id ?? null,
    ...(typeof r.source_text === 'string' ? { sourceText: r.source_text } : {}),
    // The predecessor's explanation is the decoded ids, i.e. the token decodes joined.
    explanation: r.explanation ?? r.explanation_structured.join(''),
    explanationStructured: r.explanation_structured,
    mse: r.mse,
    relativeRmse: r.relative_rmse,
    klDivergence: kl === undefined || kl === null || kl === -1 ? null : kl,
    tokenSalience: r.token_salience ?? [],
    logitLensTop: r.logit_lens_top ?? null
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() ? value.trim().slice(0, 200) : undefined
}

function fromPredecessorFrame(
  frame: z.output<typeof PredecessorFrameSchema>,
  fileName: string,
  label: string,
  now: number
): ImportedSession {
  const m = frame.metadata
  const rows = frame.data.map(fromPredecessorRow)
  const lensId = text(m.model_id) ?? text(m.encoder_decoder_model) ?? 'predecessor-lens'
  const groupId =
    text(m.group_id) ?? text(m.shared_base_model) ?? text(m.model_name) ?? 'predecessor'
  const bestOfK = typeof m.best_of_k === 'number' ? m.best_of_k : undefined
  const temperature = typeof m.temperature === 'number' ? m.temperature : undefined
  const options = AnalyzeOptionsSchema.safeParse({
    ...(bestOfK === undefined ? {} : { bestOfK }),
    ...(temperature === undefined ? {} : { temperature }),
    salience: rows.some((r) => r.tokenSalience.length > 0),
    kl: rows.some((r) => r.klDivergence !== null),
    logitLens: rows.some((r) => r.logitLensTop !== null)
  })
  if (!options.success)
    throw zodProblem(fileName, label, 'usable metadata', options.error, 'metadata')
  const typed = rows.map((r) => r.token).join('')
  return {
    format: SESSION_FORMAT,
    version: 1,
    id: 's-imported',
    name: `${fileName}${label}`.slice(0, 200),
    createdAt: now,
    updatedAt: now,
    appVersion: 'predecessor',
    kind: 'analyze',
    input: { mode: 'text', text: typed.slice(0, 200_000) },
    groupId,
    lensId,
    bundleHash: null,
    options: options.data,
    jobId: null,
    status: 'completed',
    error: null,
    metadata: null,
    rows,
    completions: [],
    interventions: [],
    importedFrom: { fileName, format: 'predecessor', importedAt: now, metadata: m }
  }
}

// ---------------------------------------------------------------- reading a file

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** One JSON value of a file (the whole file, or one JSONL line) as a session. */
function sessionOf(value: unknown, fileName: string, label: string, now: number): ImportedSession {
  const mark = { fileName, format: 'talkative' as const, importedAt: now }
  if (isObject(value) && value.format === SESSION_FORMAT) {
    // A session file itself (and the JSON export of earlier versions).
    const parsed = SessionSchema.safeParse(value)
    if (!parsed.success) throw zodProblem(fileName, label, 'a session file', parsed.error)
    return { ...parsed.data, importedFrom: mark }
  }
  if (isObject(value) && 'session' in value) {
    const parsed = SessionExportSchema.safeParse(value)
    if (!parsed.success) throw zodProblem(fileName, label, 'a session export', parsed.error)
    return { ...fromSessionExport(parsed.data), importedFrom: mark }
  }
  if (Array.isArray(value) || (isObject(value) && 'data' in value)) {
    const frame = Array.isArray(value) ? { data: value } : value
    const parsed = PredecessorFrameSchema.safeParse(frame)
    if (!parsed.success)
      throw zodProblem(fileName, label, 'an analysis ({metadata, data})', parsed.error)
    return fromPredecessorFrame(parsed.data, fileName, label, now)
  }
  throw invalid(
    fileName,
    `${label} is neither a session nor an analysis: expected {metadata, data} (with session for this app's exports) or a list of rows`
  )
}

function parseJson(line: string, fileName: string, where: string, field?: string): unknown {
  try {
    return JSON.parse(line) as unknown
  } catch (err) {
    throw invalid(fileName, `${where}: ${(err as Error).message}`, field)
  }
}

/**
 * Reads the sessions in an exported or predecessor file: one for a JSON file, one per line of a
 * JSONL file (or one for the JSONL export of earlier versions: a session line, then row lines).
 * Throws `invalid_input` naming the file, the line and the first offending field.
 */
export function parseSessionFile(
  fileName: string,
  content: string,
  now: number
): ImportedSession[] {
  const trimmed = content.trim()
  if (!trimmed) throw invalid(fileName, ' is empty')
  const lines = trimmed.split(/\r?\n/)
  const first = lines[0] ?? ''
  let firstValue: unknown
  try {
    firstValue = JSON.parse(first)
  } catch {
    // Not one value per line: the whole file is one JSON document.
    return [sessionOf(parseJson(trimmed, fileName, ' is not JSON'), fileName, '', now)]
  }
  if (isObject(firstValue) && firstValue.type === 'session')
    return [legacyJsonl(lines, fileName, now)]
  if (lines.length === 1) return [sessionOf(firstValue, fileName, '', now)]
  const sessions: ImportedSession[] = []
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue
    const where = ` line ${i + 1}`
    const value = i === 0 ? firstValue : parseJson(line, fileName, where, `line ${i + 1}`)
    sessions.push(sessionOf(value, fileName, where, now))
  }
  return sessions
}

/** The JSONL export of earlier versions: `{type: "session", …}`, then `{type: "row", …}` lines. */
function legacyJsonl(lines: string[], fileName: string, now: number): ImportedSession {
  const rows: unknown[] = []
  let header: Record<string, unknown> | undefined
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue
    const where = ` line ${i + 1}`
    const { type, ...rest } = (parseJson(line, fileName, where, `line ${i + 1}`) ?? {}) as Record<
      string,
      unknown
    >
    if (type === 'session' && !header) header = rest
    else if (type === 'row') rows.push(rest)
    else throw invalid(fileName, `${where}: expected a row line`, `line ${i + 1}`)
  }
  return sessionOf({ ...header, rows }, fileName, '', now)
}
