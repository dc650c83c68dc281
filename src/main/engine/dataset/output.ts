import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync
} from 'node:fs'
import { dirname, extname } from 'node:path'
import type { AnalysisMetadata, AnalysisRow } from '@shared/domain/analysis'
import { AppError, type SerializedError } from '@shared/ipc/errors'
import { rowCsvColumns, rowCsvHeader, rowCsvLine } from '@shared/public/csv'
import { toPublicMetadata, toPublicRow } from '@shared/public/lensFrame'
import type { PublicRunRecord } from '@shared/public/runRecord'
import { parseCsv, type CsvRow } from './csv'
import { acquireLock } from './lock'
import { recordKey } from './input'

export const OUTPUT_FORMATS = ['jsonl', 'json', 'csv'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

export function formatFromPath(path: string): OutputFormat | undefined {
  const ext = extname(path).toLowerCase().slice(1)
  if (ext === 'jsonl' || ext === 'ndjson') return 'jsonl'
  if (ext === 'json') return 'json'
  if (ext === 'csv') return 'csv'
  return undefined
}

export interface GenerationOutput {
  /** The prompt as rendered (chat template applied) and tokenised. */
  prompt: string
  /** The new text alone. */
  completion: string
  /** Prompt + completion with special tokens: what was analysed. */
  fullText: string
  finishReason: 'length' | 'end_of_turn'
}

/** One dataset record's result: one line of OUT. */
export interface DatasetResult {
  id: string | number
  status: 'completed' | 'failed'
  /** The text that was analysed (after chat formatting or generation). */
  text?: string
  generation?: GenerationOutput
  metadata?: AnalysisMetadata
  rows?: AnalysisRow[]
  error?: SerializedError
}

const CSV_FRAME = { before: ['id', 'record_lines', 'status'], after: ['error'] } as const

/** OUT's CSV columns: the record's id, its line count and status, the public row, its error. */
export const CSV_COLUMNS = rowCsvColumns(CSV_FRAME)
const CSV_HEADER = rowCsvHeader(CSV_FRAME)
const COL = { id: 0, record_lines: 1, status: 2 } as const

/** A result as OUT holds it: the public row and metadata names (docs/public-schema.md). */
export function publicRecord(result: DatasetResult): PublicRunRecord {
  const g = result.generation
  return {
    id: result.id,
    status: result.status,
    ...(result.text === undefined ? {} : { text: result.text }),
    ...(g
      ? {
          generation: {
            prompt: g.prompt,
            completion: g.completion,
            full_text: g.fullText,
            finish_reason: g.finishReason
          }
        }
      : {}),
    ...(result.metadata ? { metadata: toPublicMetadata(result.metadata) } : {}),
    ...(result.rows ? { data: result.rows.map(toPublicRow) } : {}),
    ...(result.error ? { error: result.error } : {})
  }
}

/**
 * CSV holds the per-position table: one line per analysed position (one line for a record with
 * no rows or an error). `record_lines` lets a resume check that a record's block is whole.
 */
export function csvBlock(result: DatasetResult): string {
  const rows = result.rows ?? []
  const error = result.error ? `${result.error.code}: ${result.error.message}` : ''
  if (rows.length === 0) return rowCsvLine(null, [result.id, 1, result.status], [error])
  return rows
    .map((r) => rowCsvLine(toPublicRow(r), [result.id, rows.length, result.status], [error]))
    .join('')
}

/** One whole record found in an existing OUT: its byte range and whether it failed. */
interface ScannedRecord {
  key: string
  failed: boolean
  start: number
  end: number
}

interface ScanResult {
  /** Bytes of the existing file to keep. */
  keep: number
  /** Bytes of a torn write at the end (a JSON file's closing bracket does not count). */
  torn: number
  /** Bytes before the first record (the CSV header, JSON's "[" line). */
  bodyStart: number
  entries: ScannedRecord[]
}

const EMPTY_SCAN: ScanResult = { keep: 0, torn: 0, bodyStart: 0, entries: [] }

function outError(message: string, file: string): AppError {
  return new AppError('invalid_input', message, { field: 'out', file })
}

function scanJsonLines(buf: Buffer, file: string, format: 'jsonl' | 'json'): ScanResult {
  const entries: ScannedRecord[] = []
  const lastNewline = buf.lastIndexOf(0x0a)
  const keep = lastNewline + 1
  const lines = buf.subarray(0, keep).toString('utf8').split('\n').slice(0, -1)
  let kept = keep
  let bodyStart = 0
  let offset = 0
  lines.forEach((raw, i) => {
    const start = offset
    offset += Buffer.byteLength(raw) + 1
    let line = raw
    if (format === 'json') {
      if (i === 0) {
        if (line !== '[')
          throw outError(`${file} is not a JSON file this tool wrote (no "[" line)`, file)
        bodyStart = offset
        return
      }
      if (line === ']') {
        if (i !== lines.length - 1)
          throw outError(`${file} has records after its closing "]"`, file)
        // Reopen the array: the closing bracket is written again when the run completes.
        kept = start
        return
      }
      if (entries.length > 0 && !line.startsWith(','))
        throw outError(`${file} line ${i + 1} is not a record line`, file)
      line = line.replace(/^,/, '')
    }
    let value: { id?: unknown; status?: unknown }
    try {
      value = JSON.parse(line)
    } catch {
      throw outError(
        `${file} line ${i + 1} is not valid JSON; not appending to a file I cannot read back`,
        file
      )
    }
    if (typeof value?.id !== 'string' && typeof value?.id !== 'number') {
      throw outError(`${file} line ${i + 1} has no "id"`, file)
    }
    entries.push({
      key: recordKey(value.id),
      failed: value.status === 'failed',
      start,
      end: offset
    })
  })
  return { keep: kept, torn: buf.length - keep, bodyStart, entries }
}

function scanCsv(buf: Buffer, file: string): ScanResult {
  const { rows, complete } = parseCsv(buf)
  const header = rows[0]
  if (!header) return { ...EMPTY_SCAN, torn: buf.length }
  if (buf.subarray(0, header.end).toString('utf8') !== CSV_HEADER) {
    throw outError(`${file} does not start with this tool's CSV header`, file)
  }
  // Every index below stays within `rows` (i < rows.length, and j - 1 >= i).
  const row = (k: number): CsvRow => rows[k]!
  const entries: ScannedRecord[] = []
  let keep = complete
  let i = 1
  while (i < rows.length) {
    const id = row(i).fields[COL.id] ?? ''
    const expected = Number(row(i).fields[COL.record_lines])
    let j = i
    while (j < rows.length && row(j).fields[COL.id] === id && j - i < expected) j++
    if (!Number.isInteger(expected) || expected < 1)
      throw outError(`${file} row ${i + 1} has no record_lines`, file)
    if (j - i < expected) {
      if (j < rows.length)
        throw outError(`${file}: record ${id} is incomplete in the middle of the file`, file)
      // The last block was torn: drop it and redo that record.
      keep = row(i).start
      break
    }
    entries.push({
      key: id,
      failed: row(i).fields[COL.status] === 'failed',
      start: row(i).start,
      end: row(j - 1).end
    })
    i = j
  }
  return { keep, torn: buf.length - keep, bodyStart: header.end, entries }
}

/**
 * The bytes of OUT without the records `drop` selects (a JSON record line starts with a comma
 * except the first, so those are rewritten).
 */
function withoutRecords(
  buf: Buffer,
  scan: ScanResult,
  format: OutputFormat,
  drop: (r: ScannedRecord) => boolean
): Buffer {
  const parts = [buf.subarray(0, scan.bodyStart)]
  let kept = 0
  for (const r of scan.entries) {
    if (drop(r)) continue
    let bytes = buf.subarray(r.start, r.end)
    if (format === 'json') {
      if (bytes[0] === 0x2c) bytes = bytes.subarray(1)
      if (kept > 0) parts.push(Buffer.from(','))
    }
    parts.push(bytes)
    kept++
  }
  return Buffer.concat(parts)
}

/** Replaces a file's content so that a crash leaves the old or the new bytes, never a mix. */
function replaceFileDurably(file: string, bytes: Buffer): void {
  const temp = `${file}.${process.pid}.rewrite.tmp`
  const fd = openSync(temp, 'w')
  try {
    let offset = 0
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(temp, file)
  if (process.platform !== 'win32') {
    const dirFd = openSync(dirname(file), 'r')
    try {
      fsyncSync(dirFd)
    } finally {
      closeSync(dirFd)
    }
  }
}

export interface ResultWriterOptions {
  /**
   * Failed records in OUT that this run redoes: they are removed from OUT when it is opened (so
   * every id stays in the file once) and left out of `doneKeys`. Default: none.
   */
  retryFailed?: (key: string) => boolean
}

/**
 * Appends results to OUT so that a kill at any moment leaves only whole records: each record is
 * built in memory and written with one write on an O_APPEND descriptor, then fsynced. Opening an
 * existing OUT resumes it: a torn tail (from a crash mid-write or power loss) is truncated, and
 * the ids already present are reported so the caller skips them.
 */
export class ResultWriter {
  readonly file: string
  readonly format: OutputFormat
  readonly doneKeys: ReadonlySet<string>
  /** Records found in OUT when it was opened (after removing the failed ones to retry). */
  readonly resumedRecords: number
  /** Bytes of a torn tail that were removed when OUT was opened. */
  readonly truncatedBytes: number
  /** Failed records removed from OUT when it was opened, to be redone. */
  readonly retryKeys: ReadonlySet<string>
  #fd: number | null
  #records: number
  readonly #lockFile: string

  private constructor(
    file: string,
    format: OutputFormat,
    fd: number,
    kept: ScannedRecord[],
    retryKeys: Set<string>,
    truncated: number
  ) {
    this.file = file
    this.format = format
    this.#fd = fd
    this.doneKeys = new Set(kept.map((r) => r.key))
    this.resumedRecords = kept.length
    this.#records = kept.length
    this.retryKeys = retryKeys
    this.truncatedBytes = truncated
    this.#lockFile = `${file}.lock`
  }

  static open(file: string, format: OutputFormat, options: ResultWriterOptions = {}): ResultWriter {
    const lockFile = `${file}.lock`
    acquireLock(lockFile, file)
    try {
      const existing = existsSync(file) ? readFileSync(file) : Buffer.alloc(0)
      const scan: ScanResult =
        existing.length === 0
          ? EMPTY_SCAN
          : format === 'csv'
            ? scanCsv(existing, file)
            : scanJsonLines(existing, file, format)
      const retry = (r: ScannedRecord): boolean => r.failed && !!options.retryFailed?.(r.key)
      const retryKeys = new Set(scan.entries.filter(retry).map((r) => r.key))
      let keep = scan.keep
      if (retryKeys.size > 0) {
        // Rewritten, not appended to: a retried record must not appear twice in OUT.
        const rest = withoutRecords(existing, scan, format, retry)
        replaceFileDurably(file, rest)
        keep = rest.length
      }
      const fd = openSync(file, 'a')
      if (retryKeys.size === 0 && keep < existing.length) {
        ftruncateSync(fd, keep)
        fsyncSync(fd)
      }
      const kept = scan.entries.filter((r) => !retryKeys.has(r.key))
      const writer = new ResultWriter(file, format, fd, kept, retryKeys, scan.torn)
      if (keep === 0) writer.#write(format === 'csv' ? CSV_HEADER : format === 'json' ? '[\n' : '')
      return writer
    } catch (err) {
      unlinkSync(lockFile)
      throw err
    }
  }

  get records(): number {
    return this.#records
  }

  append(result: DatasetResult): void {
    let line: string
    if (this.format === 'csv') line = csvBlock(result)
    else {
      const json = JSON.stringify(publicRecord(result))
      line = this.format === 'json' && this.#records > 0 ? `,${json}\n` : `${json}\n`
    }
    this.#write(line)
    this.#records++
  }

  /** Marks the output complete (JSON: closes the array) and releases it. */
  finish(): void {
    if (this.format === 'json') this.#write(']\n')
    this.close()
  }

  /** Releases OUT without marking it complete (interrupted runs resume from here). */
  close(): void {
    if (this.#fd === null) return
    closeSync(this.#fd)
    this.#fd = null
    try {
      unlinkSync(this.#lockFile)
    } catch {
      // Already gone: nothing to release.
    }
  }

  #write(text: string): void {
    if (this.#fd === null)
      throw new AppError('internal', 'result file already closed', { file: this.file })
    if (text === '') return
    const bytes = Buffer.from(text, 'utf8')
    let offset = 0
    while (offset < bytes.length) offset += writeSync(this.#fd, bytes, offset)
    fsyncSync(this.#fd)
  }
}
