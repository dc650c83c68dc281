/**
 * The one CSV writer of result rows (the app's export and `talkative run`): minimal RFC 4180, the
 * public row columns in PUBLIC_ROW_KEYS order, lists as JSON arrays (explanation tokens carry
 * their own spaces, ' cat', so a space-joined list could not be split back into one token per
 * salience value).
 */
import { PUBLIC_ROW_KEYS, type PublicRow } from './lensFrame'

export function csvField(value: unknown): string {
  if (value === null || value === undefined) return ''
  const s =
    typeof value === 'string'
      ? value
      : typeof value === 'number'
        ? String(value)
        : JSON.stringify(value)
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s
}

export function csvLine(values: readonly unknown[]): string {
  return values.map(csvField).join(',') + '\n'
}

/** Columns around the row's own: `before` (e.g. a record id) and `after` (e.g. its error). */
export interface CsvFrame {
  before?: readonly string[]
  after?: readonly string[]
}

export function rowCsvColumns(frame: CsvFrame = {}): string[] {
  return [...(frame.before ?? []), ...PUBLIC_ROW_KEYS, ...(frame.after ?? [])]
}

export function rowCsvHeader(frame: CsvFrame = {}): string {
  return csvLine(rowCsvColumns(frame))
}

/** One CSV line: the `before` values, the row's cells (empty when null), the `after` values. */
export function rowCsvLine(
  row: PublicRow | null,
  before: readonly unknown[] = [],
  after: readonly unknown[] = []
): string {
  const cells = PUBLIC_ROW_KEYS.map((k) => (row ? row[k] : null))
  return csvLine([...before, ...cells, ...after])
}
