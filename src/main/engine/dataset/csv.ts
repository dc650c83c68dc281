/** Reading back the CSV that @shared/public/csv writes, exactly, on resume. */

export interface CsvRow {
  fields: string[]
  /** Byte offsets of the row in the buffer it was parsed from: [start, end), end after its newline. */
  start: number
  end: number
}

/**
 * Splits CSV text into rows. Only rows closed by a newline outside quotes are returned, so a row
 * torn by a crash (no final newline, or an open quote) is left out; `complete` is the byte length
 * of the complete rows, i.e. where to truncate.
 */
export function parseCsv(buffer: Buffer): { rows: CsvRow[]; complete: number } {
  const rows: CsvRow[] = []
  let fields: string[] = []
  let field: number[] = []
  let inQuotes = false
  let rowStart = 0
  let complete = 0
  const DQ = 0x22
  const COMMA = 0x2c
  const CR = 0x0d
  const LF = 0x0a
  const flushField = (): void => {
    fields.push(Buffer.from(field).toString('utf8'))
    field = []
  }
  for (let i = 0; i < buffer.length; i++) {
    const c = buffer[i]!
    if (inQuotes) {
      if (c === DQ) {
        if (buffer[i + 1] === DQ) {
          field.push(DQ)
          i++
        } else inQuotes = false
      } else field.push(c)
      continue
    }
    if (c === DQ) inQuotes = true
    else if (c === COMMA) flushField()
    else if (c === LF) {
      flushField()
      rows.push({ fields, start: rowStart, end: i + 1 })
      fields = []
      rowStart = i + 1
      complete = i + 1
    } else if (c === CR && buffer[i + 1] === LF) continue
    else field.push(c)
  }
  return { rows, complete }
}
