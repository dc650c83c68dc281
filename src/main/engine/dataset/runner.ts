import { toSerializedError } from '@shared/ipc/errors'
import { readDataset, type BadLine, type BadLinePolicy, type DatasetRecord } from './input'
import { ResultWriter, type DatasetResult, type OutputFormat } from './output'

export interface DatasetRunOptions {
  input: string
  out: string
  format: OutputFormat
  onBadLine: BadLinePolicy
  /**
   * Redo records that failed in an earlier run of the same OUT (their old result is removed, so
   * every id is still written once). Default true: a failure may have been transient.
   */
  retryFailed?: boolean
}

export interface DatasetProgress {
  /** Records finished in this run. */
  done: number
  /** Records this run has to do (excluding those already in OUT). */
  todo: number
  failed: number
  elapsedSeconds: number
  etaSeconds: number | null
}

export interface DatasetRunHooks {
  /** Called once after OUT is opened, before the first record. */
  onStart?: (info: {
    total: number
    alreadyDone: number
    todo: number
    /** Records in `todo` that had failed in OUT and are redone. */
    retryingFailed: number
    badLines: BadLine[]
    truncatedBytes: number
  }) => void
  onRecord?: (result: DatasetResult, progress: DatasetProgress) => void
  /** Polled between records (and passed to the processor for long records). */
  isCancelled?: () => boolean
}

/**
 * Turns one record into its result. Throwing records the error for that record and goes on;
 * returning null means "cancelled midway": nothing is written, so a resume redoes it.
 */
export type RecordProcessor = (
  record: DatasetRecord,
  isCancelled: () => boolean
) => Promise<Omit<DatasetResult, 'id' | 'status'> | null>

export interface DatasetRunSummary {
  total: number
  /** Records already completed in OUT (and failed ones when not retried). */
  alreadyDone: number
  /** Failed records from an earlier run that this run redid (or will redo, when cancelled). */
  retryingFailed: number
  processed: number
  failed: number
  badLines: BadLine[]
  cancelled: boolean
  truncatedBytes: number
  out: string
  outRecords: number
}

/**
 * Runs every record of a dataset not already completed in OUT, writing one result per record as
 * it finishes; records that failed in an earlier run are redone (see `retryFailed`). Safe to kill
 * at any point: OUT only ever holds whole records, each id once (see ResultWriter).
 */
export async function runDataset(
  opts: DatasetRunOptions,
  processRecord: RecordProcessor,
  hooks: DatasetRunHooks = {}
): Promise<DatasetRunSummary> {
  const { records, badLines } = readDataset(opts.input, opts.onBadLine)
  const datasetKeys = new Set(records.map((r) => r.key))
  const writer = ResultWriter.open(opts.out, opts.format, {
    // Only ids still in the dataset: a failed result of a record since removed stays as it is.
    retryFailed: opts.retryFailed === false ? undefined : (key) => datasetKeys.has(key)
  })
  const isCancelled = hooks.isCancelled ?? ((): boolean => false)
  const todo = records.filter((r) => !writer.doneKeys.has(r.key))
  const summary: DatasetRunSummary = {
    total: records.length,
    alreadyDone: records.length - todo.length,
    retryingFailed: writer.retryKeys.size,
    processed: 0,
    failed: 0,
    badLines,
    cancelled: false,
    truncatedBytes: writer.truncatedBytes,
    out: opts.out,
    outRecords: writer.records
  }
  let completed = false
  try {
    hooks.onStart?.({
      total: records.length,
      alreadyDone: summary.alreadyDone,
      todo: todo.length,
      retryingFailed: writer.retryKeys.size,
      badLines,
      truncatedBytes: writer.truncatedBytes
    })
    const started = performance.now()
    for (const record of todo) {
      if (isCancelled()) {
        summary.cancelled = true
        break
      }
      let result: DatasetResult
      try {
        const output = await processRecord(record, isCancelled)
        if (output === null) {
          summary.cancelled = true
          break
        }
        result = { id: record.id, status: 'completed', ...output }
      } catch (err) {
        result = { id: record.id, status: 'failed', error: toSerializedError(err) }
        summary.failed++
      }
      writer.append(result)
      summary.processed++
      const elapsedSeconds = (performance.now() - started) / 1000
      const left = todo.length - summary.processed
      hooks.onRecord?.(result, {
        done: summary.processed,
        todo: todo.length,
        failed: summary.failed,
        elapsedSeconds,
        etaSeconds: summary.processed > 0 ? (elapsedSeconds / summary.processed) * left : null
      })
    }
    completed = !summary.cancelled
  } finally {
    summary.outRecords = writer.records
    if (completed) writer.finish()
    else writer.close()
  }
  return summary
}
