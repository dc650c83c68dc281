import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
  writeSync
} from 'node:fs'
import { extname } from 'node:path'
import type { AnalysisMetadata, AnalysisRow } from '@shared/domain/analysis'
import { AppError, type SerializedError } from '@shared/ipc/errors'
import { csvLine, parseCsv } from './csv'
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

export const CSV_COLUMNS = [
  'id',
  'record_lines',
  'status',
  'position',
  'token',
  'token_id',
  'explanation',
  'mse',
  'relative_rmse',
  'kl_divergence',
  'token_salience',
  'logit_lens_top',
  'error'
] as const
const CSV_HEADER = csvLine(CSV_COLUMNS)
const COL = Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, i])) as Record<
  (typeof CSV_COLUMNS)[number],
  number
>

/**
 * CSV holds the per-position table: one line per analysed position (one line for a record with
 * no rows or an error). `record_lines` lets a resume check that a record's block is whole.
 */
export function csvBlock(result: DatasetResult): string {
  const rows = result.rows ?? []
  const error = result.error ? `${result.error.code}: ${result.error.message}` : ''
  if (rows.length === 0) {
    return csvLine([result.id, 1, result.status, '', '', '', '', '', '', '', '', '', error])
  }
  return rows
    .map((r) =>
      csvLine([
        result.id,
        rows.length,
        result.status,
        r.position,
        r.token,
        r.tokenId,
        r.explanation,
        r.mse,
        r.relativeRmse,
        r.klDivergence,
        r.tokenSalience,
        r.logitLensTop,
        error
      ])
    )
    .join('')
}

interface ScanResult {
  /** Bytes of the existing file to keep. */
  keep: number
  /** Bytes of a torn write at the end (a JSON file's closing bracket does not count). */
  torn: number
  keys: Set<string>
  records: number
}

function outError(message: string, file: string): AppError {
  return new AppError('invalid_input', message, { field: 'out', file })
}

function scanJsonLines(buf: Buffer, file: string, format: 'jsonl' | 'json'): ScanResult {
  const keys = new Set<string>()
  const lastNewline = buf.lastIndexOf(0x0a)
  const keep = lastNewline + 1
  const lines = buf.subarray(0, keep).toString('utf8').split('\n').slice(0, -1)
  let records = 0
  let kept = keep
  lines.forEach((line, i) => {
    if (format === 'json') {
      if (i === 0) {
        if (line !== '[')
          throw outError(`${file} is not a JSON file this tool wrote (no "[" line)`, file)
        return
      }
      if (line === ']') {
        if (i !== lines.length - 1)
          throw outError(`${file} has records after its closing "]"`, file)
        // Reopen the array: the closing bracket is written again when the run completes.
        kept = Buffer.byteLength(lines.slice(0, i).join('\n') + '\n')
        return
      }
      if (records > 0 && !line.startsWith(','))
        throw outError(`${file} line ${i + 1} is not a record line`, file)
      line = line.replace(/^,/, '')
    }
    let value: { id?: unknown }
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
    keys.add(recordKey(value.id))
    records++
  })
  return { keep: kept, keys, records, torn: buf.length - keep }
}

function scanCsv(buf: Buffer, file: string): ScanResult {
  const { rows, complete } = parseCsv(buf)
  if (rows.length === 0) return { keep: 0, keys: new Set(), records: 0, torn: buf.length }
  if (buf.subarray(0, rows[0].end).toString('utf8') !== CSV_HEADER) {
    throw outError(`${file} does not start with this tool's CSV header`, file)
  }
  const keys = new Set<string>()
  let keep = complete
  let i = 1
  while (i < rows.length) {
    const id = rows[i].fields[COL.id]
    const expected = Number(rows[i].fields[COL.record_lines])
    let j = i
    while (j < rows.length && rows[j].fields[COL.id] === id && j - i < expected) j++
    if (!Number.isInteger(expected) || expected < 1)
      throw outError(`${file} row ${i + 1} has no record_lines`, file)
    if (j - i < expected) {
      if (j < rows.length)
        throw outError(`${file}: record ${id} is incomplete in the middle of the file`, file)
      // The last block was torn: drop it and redo that record.
      keep = rows[i].start
      break
    }
    keys.add(id)
    i = j
  }
  return { keep, keys, records: keys.size, torn: buf.length - keep }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** One writer per OUT: a lock file names the process that holds it; a dead holder's lock is taken over. */
function acquireLock(lockFile: string, out: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx' })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = Number(readFileSync(lockFile, 'utf8').trim())
      if (
        Number.isInteger(holder) &&
        holder > 0 &&
        holder !== process.pid &&
        processAlive(holder)
      ) {
        throw new AppError(
          'conflict',
          `${out} is being written by another run (process ${holder})`,
          {
            field: 'out',
            file: out
          }
        )
      }
      unlinkSync(lockFile)
    }
  }
  throw new AppError('conflict', `could not lock ${out}`, { field: 'out', file: out })
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
  /** Records found in OUT when it was opened. */
  readonly resumedRecords: number
  /** Bytes of a torn tail that were removed when OUT was opened. */
  readonly truncatedBytes: number
  #fd: number | null
  #records: number
  readonly #lockFile: string

  private constructor(
    file: string,
    format: OutputFormat,
    fd: number,
    scan: ScanResult,
    truncated: number
  ) {
    this.file = file
    this.format = format
    this.#fd = fd
    this.doneKeys = scan.keys
    this.resumedRecords = scan.records
    this.#records = scan.records
    this.truncatedBytes = truncated
    this.#lockFile = `${file}.lock`
  }

  static open(file: string, format: OutputFormat): ResultWriter {
    const lockFile = `${file}.lock`
    acquireLock(lockFile, file)
    try {
      const existing = existsSync(file) ? readFileSync(file) : Buffer.alloc(0)
      const scan: ScanResult =
        existing.length === 0
          ? { keep: 0, keys: new Set(), records: 0, torn: 0 }
          : format === 'csv'
            ? scanCsv(existing, file)
            : scanJsonLines(existing, file, format)
      const fd = openSync(file, 'a')
      if (scan.keep < existing.length) {
        ftruncateSync(fd, scan.keep)
        fsyncSync(fd)
      }
      const writer = new ResultWriter(file, format, fd, scan, scan.torn)
      if (scan.keep === 0)
        writer.#write(format === 'csv' ? CSV_HEADER : format === 'json' ? '[\n' : '')
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
      const json = JSON.stringify(result)
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
