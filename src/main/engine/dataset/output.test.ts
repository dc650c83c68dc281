import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  existsSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import { AppError } from '@shared/ipc/errors'
import { PUBLIC_ROW_KEYS } from '@shared/public/lensFrame'
import { PublicRunRecordSchema, type PublicRunRecord } from '@shared/public/runRecord'
import { parseCsv } from './csv'
import { parseLockFile } from './lock'
import { parseDataset } from './input'
import { CSV_COLUMNS, ResultWriter, formatFromPath, type DatasetResult } from './output'
import { runDataset, type RecordProcessor } from './runner'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'talkative-out-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

function row(position: number, explanation: string): AnalysisRow {
  return {
    position,
    token: `t${position}`,
    tokenId: position + 100,
    explanation,
    explanationStructured: explanation.split(' '),
    mse: 0.25 * (position + 1),
    relativeRmse: 0.5,
    klDivergence: 0.01,
    tokenSalience: [0.1, -0.2],
    logitLensTop: null
  }
}

function result(id: string | number, rows = 2): DatasetResult {
  return {
    id,
    status: 'completed',
    text: `text of ${id}`,
    rows: Array.from({ length: rows }, (_, i) => row(i, `expl, "quoted"\nline ${id}`))
  }
}

function failure(id: string | number): DatasetResult {
  return { id, status: 'failed', error: { code: 'unavailable', message: 'device lost, "retry"' } }
}

/** The ids and statuses in OUT, read back the way a user would. */
function readBack(out: string, format: 'jsonl' | 'json' | 'csv'): [string, string][] {
  const text = readFileSync(out, 'utf8')
  if (format === 'csv') {
    const blocks = parseCsv(readFileSync(out)).rows.slice(1)
    const firsts = blocks.filter((r, i) => i === 0 || blocks[i - 1]!.fields[0] !== r.fields[0])
    return firsts.map((r) => [r.fields[0]!, r.fields[2]!])
  }
  const objects: DatasetResult[] =
    format === 'json'
      ? JSON.parse(text)
      : text
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l))
  return objects.map((o) => [String(o.id), o.status])
}

function thrown(fn: () => unknown): AppError {
  try {
    fn()
  } catch (err) {
    if (err instanceof AppError) return err
    throw err
  }
  throw new Error('expected an AppError')
}

describe('dataset input', () => {
  it('reads text and messages records and reports malformed lines by number', () => {
    const content = [
      '{"id": "a", "text": "The cat sat."}',
      '',
      '{"id": 2, "messages": [{"role": "user", "content": "Hi"}], "label": "extra keys are fine"}',
      '{"id": "c", "text": ', // 4: bad JSON
      '{"id": "d"}', // 5: neither text nor messages
      '{"id": "a", "text": "again"}', // 6: duplicate id
      '{"id": "e", "messages": [{"role": "robot", "content": "x"}]}', // 7: bad role
      '[1, 2]', // 8: not an object
      '{"id": "f", "text": "ok", "messages": []}', // 9: both
      '{"id": "g", "text": "last line without newline"}'
    ].join('\n')
    const { records, badLines } = parseDataset(content, 'skip', 'in.jsonl')
    expect(records.map((r) => [r.id, r.line])).toEqual([
      ['a', 1],
      [2, 3],
      ['g', 10]
    ])
    expect(badLines.map((b) => b.line)).toEqual([4, 5, 6, 7, 8, 9])
    expect(badLines[0]!.message).toMatch(/not valid JSON/)
    expect(badLines[1]!.message).toMatch(/needs "text" or "messages"/)
    expect(badLines[2]!.message).toMatch(/duplicate id "a" \(first on line 1\)/)
    expect(badLines[3]!.field).toBe('messages.0.role')
    expect(badLines[5]!.message).toMatch(/both/)
  })

  it('fails at the first malformed line when asked to', () => {
    const err = thrown(() =>
      parseDataset('{"id":1,"text":"a"}\n{"id":2}\n{bad', 'fail', 'in.jsonl')
    )
    expect(err.message).toMatch(/^in\.jsonl line 2: /)
    expect(err.file).toBe('in.jsonl')
  })

  it('accepts CRLF line endings', () => {
    expect(
      parseDataset('{"id":1,"text":"a"}\r\n{"id":2,"text":"b"}\r\n', 'fail').records
    ).toHaveLength(2)
  })
})

describe('result writer: JSON Lines', () => {
  it('resumes with the ids already written and truncates a torn last line', () => {
    const out = join(dir, 'out.jsonl')
    const w = ResultWriter.open(out, 'jsonl')
    w.append(result('a'))
    w.append(result(7))
    w.close()
    const torn = '{"id":"b","status":"comp' // a crash mid-write
    appendFileSync(out, torn)
    const r = ResultWriter.open(out, 'jsonl')
    expect([...r.doneKeys]).toEqual(['a', '7'])
    expect(r.truncatedBytes).toBe(torn.length)
    r.append(result('b'))
    r.finish()
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n')
    expect(lines.map((l) => JSON.parse(l).id)).toEqual(['a', 7, 'b'])
    expect(existsSync(`${out}.lock`)).toBe(false)
  })

  it('refuses to append to a file it cannot read back', () => {
    const out = join(dir, 'out.jsonl')
    writeFileSync(out, 'not json\n{"id":1}\n')
    const err = thrown(() => ResultWriter.open(out, 'jsonl'))
    expect(err.field).toBe('out')
    expect(err.message).toMatch(/line 1 is not valid JSON/)
    expect(existsSync(`${out}.lock`)).toBe(false)
  })
})

describe('result writer: JSON', () => {
  it('is valid JSON when finished, and reopens the array on resume', () => {
    const out = join(dir, 'out.json')
    const w = ResultWriter.open(out, 'json')
    w.append(result('a'))
    w.close()
    // Interrupted: an open array of whole records.
    expect(readFileSync(out, 'utf8').split('\n')[0]).toBe('[')
    const r = ResultWriter.open(out, 'json')
    r.append(result('b'))
    r.finish()
    expect(JSON.parse(readFileSync(out, 'utf8')).map((x: DatasetResult) => x.id)).toEqual([
      'a',
      'b'
    ])
    const again = ResultWriter.open(out, 'json')
    expect([...again.doneKeys]).toEqual(['a', 'b'])
    // Reopening a finished array is not a torn write.
    expect(again.truncatedBytes).toBe(0)
    again.append(result('c'))
    again.finish()
    const all = JSON.parse(readFileSync(out, 'utf8')) as PublicRunRecord[]
    expect(all.map((x) => x.id)).toEqual(['a', 'b', 'c'])
    // Records in the public shape: `data` rows with the predecessor's names.
    expect(all[2]!.data?.[0]?.explanation).toBe('expl, "quoted"\nline c')
    expect(all.map((x) => PublicRunRecordSchema.parse(x).id)).toEqual(['a', 'b', 'c'])
  })
})

describe('result writer: CSV', () => {
  it('writes one line per position and round-trips awkward text', () => {
    const out = join(dir, 'out.csv')
    const w = ResultWriter.open(out, 'csv')
    w.append(result('a', 3))
    w.append({
      id: 'e',
      status: 'failed',
      error: { code: 'invalid_input', message: 'bad, "template"' }
    })
    w.finish()
    const { rows } = parseCsv(readFileSync(out))
    expect(rows[0]!.fields).toEqual([...CSV_COLUMNS])
    expect(rows).toHaveLength(1 + 3 + 1)
    expect(CSV_COLUMNS).toEqual(['id', 'record_lines', 'status', ...PUBLIC_ROW_KEYS, 'error'])
    const col = (name: string): number => CSV_COLUMNS.indexOf(name)
    expect(rows[1]!.fields.slice(0, 5)).toEqual(['a', '3', 'completed', '0', 't0'])
    expect(rows[1]!.fields[col('explanation')]).toBe('expl, "quoted"\nline a')
    expect(JSON.parse(rows[1]!.fields[col('token_salience')]!)).toEqual([0.1, -0.2])
    expect(JSON.parse(rows[1]!.fields[col('explanation_structured')]!)).toEqual([
      'expl,',
      '"quoted"\nline',
      'a'
    ])
    expect(rows[4]!.fields[col('error')]).toBe('invalid_input: bad, "template"')
  })

  it('drops a torn record block on resume and keeps whole ones', () => {
    const out = join(dir, 'out.csv')
    const w = ResultWriter.open(out, 'csv')
    w.append(result('a', 3))
    w.append(result('b', 3))
    w.close()
    const whole = readFileSync(out)
    const blockB = whole.indexOf('\nb,') + 1
    // Cut inside record b's second line: its first line survives but the block is incomplete.
    const cut = whole.indexOf('\nb,', blockB) + 8
    writeFileSync(out, whole.subarray(0, cut))
    const r = ResultWriter.open(out, 'csv')
    expect([...r.doneKeys]).toEqual(['a'])
    expect(readFileSync(out).length).toBe(blockB)
    r.append(result('b', 3))
    r.finish()
    expect(readFileSync(out).equals(whole)).toBe(true)
  })
})

describe('result writer: one writer per file', () => {
  it('refuses a second writer while the first holds the file', () => {
    const out = join(dir, 'out.jsonl')
    const w = ResultWriter.open(out, 'jsonl')
    // A lock held by a live process other than this one.
    writeFileSync(`${out}.lock`, String(process.ppid))
    const err = thrown(() => ResultWriter.open(out, 'jsonl'))
    expect(err.code).toBe('conflict')
    w.close()
  })

  it('takes over the lock of a process that died', () => {
    const out = join(dir, 'out.jsonl')
    const dead = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))'
    ]).stdout.toString()
    writeFileSync(`${out}.lock`, dead)
    const w = ResultWriter.open(out, 'jsonl')
    expect(parseLockFile(readFileSync(`${out}.lock`, 'utf8'))?.pid).toBe(process.pid)
    w.close()
  })

  it('picks the format from the extension', () => {
    expect(formatFromPath('a/b.JSONL')).toBe('jsonl')
    expect(formatFromPath('b.json')).toBe('json')
    expect(formatFromPath('b.csv')).toBe('csv')
    expect(formatFromPath('b.txt')).toBeUndefined()
  })
})

describe.each(['jsonl', 'json', 'csv'] as const)(
  'result writer (%s): retrying failed records',
  (format) => {
    it('removes the failed records it retries, keeps the rest whole, and writes each id once', () => {
      const out = join(dir, `out.${format}`)
      const w = ResultWriter.open(out, format)
      w.append(failure('a'))
      w.append(result('b', 3))
      w.append(failure('c'))
      w.append(failure('gone'))
      w.append(result('d', 1))
      w.finish()
      const before = readFileSync(out)

      // Without retryFailed a resume leaves the file untouched and skips every id in it.
      const plain = ResultWriter.open(out, format)
      expect([...plain.doneKeys]).toEqual(['a', 'b', 'c', 'gone', 'd'])
      plain.close()

      const r = ResultWriter.open(out, format, { retryFailed: (key) => key !== 'gone' })
      expect([...r.retryKeys]).toEqual(['a', 'c'])
      expect([...r.doneKeys]).toEqual(['b', 'gone', 'd'])
      expect(r.resumedRecords).toBe(3)
      r.append(result('a', 2))
      r.append(result('c', 1))
      r.finish()
      expect(readBack(out, format)).toEqual([
        ['b', 'completed'],
        ['gone', 'failed'],
        ['d', 'completed'],
        ['a', 'completed'],
        ['c', 'completed']
      ])
      if (format === 'csv') {
        // Record b's three lines kept byte for byte.
        const text = readFileSync(out, 'utf8')
        const b = before.toString('utf8').match(/^b,.*$/gm)!
        expect(b).toHaveLength(3)
        for (const line of b) expect(text).toContain(line)
      }
      expect(existsSync(`${out}.lock`)).toBe(false)
      // Only the kept failure (gone) still carries an error.
      expect(readFileSync(out, 'utf8').split('device lost')).toHaveLength(2)
    })

    it('drops a torn tail too, and writes the header when nothing is left', () => {
      const out = join(dir, `out.${format}`)
      const w = ResultWriter.open(out, format)
      w.append(failure('a'))
      w.close()
      appendFileSync(out, format === 'csv' ? 'b,2,completed,0,t' : '{"id":"b","sta')
      const r = ResultWriter.open(out, format, { retryFailed: () => true })
      expect([...r.doneKeys]).toEqual([])
      expect(r.truncatedBytes).toBeGreaterThan(0)
      r.append(result('a', 1))
      r.append(result('b', 1))
      r.finish()
      expect(readBack(out, format)).toEqual([
        ['a', 'completed'],
        ['b', 'completed']
      ])
    })
  }
)

describe('runDataset resume', () => {
  it('redoes the records that failed, once each, and reports them', async () => {
    const input = join(dir, 'in.jsonl')
    writeFileSync(input, ['x', 'y', 'z'].map((id) => JSON.stringify({ id, text: id })).join('\n'))
    const out = join(dir, 'out.jsonl')
    const attempts: string[] = []
    let broken = new Set(['y'])
    const processor: RecordProcessor = async (record) => {
      attempts.push(String(record.id))
      if (broken.has(String(record.id))) throw new AppError('unavailable', 'device lost')
      return { text: String(record.id), rows: [] }
    }
    const first = await runDataset({ input, out, format: 'jsonl', onBadLine: 'fail' }, processor)
    expect([first.processed, first.failed]).toEqual([3, 1])

    broken = new Set()
    let started: { alreadyDone: number; todo: number; retryingFailed: number } | undefined
    const second = await runDataset({ input, out, format: 'jsonl', onBadLine: 'fail' }, processor, {
      onStart: (info) => (started = info)
    })
    expect(started).toMatchObject({ alreadyDone: 2, todo: 1, retryingFailed: 1 })
    expect([second.processed, second.failed, second.outRecords]).toEqual([1, 0, 3])
    expect(attempts).toEqual(['x', 'y', 'z', 'y'])
    expect(readBack(out, 'jsonl')).toEqual([
      ['x', 'completed'],
      ['z', 'completed'],
      ['y', 'completed']
    ])

    // Opting out keeps a failure as final.
    writeFileSync(out, JSON.stringify(failure('x')) + '\n')
    const kept = await runDataset(
      { input, out, format: 'jsonl', onBadLine: 'fail', retryFailed: false },
      processor
    )
    expect([kept.alreadyDone, kept.retryingFailed, kept.processed]).toEqual([1, 0, 2])
    expect(readBack(out, 'jsonl')[0]).toEqual(['x', 'failed'])
  })
})
