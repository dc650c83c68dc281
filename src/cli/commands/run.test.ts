import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDemoBundle, loadGroup, parseCsv, runDataset } from '../../main/engine'
import { recordProcessor } from './run'
import { cliHarness, type CliHarness } from './spawnCli'

// The real command line, spawned as a user runs it, on the demo group.
let cli: CliHarness
let work: string
let env: NodeJS.ProcessEnv
// Small analyses so 200 records take seconds: what is tested here is the run, not the lens.
const FAST = ['--best-of-k', '2', '--no-salience', '--no-kl', '--threads', '1']

beforeAll(async () => {
  cli = await cliHarness('talkative-cli-')
  work = cli.work
  env = cli.env
})

afterAll(() => {
  cli?.cleanup()
})

const start = (args: string[]): ReturnType<CliHarness['start']> => cli.start(args)
const talkative = (...args: string[]): ReturnType<CliHarness['run']> => cli.run(...args)

function dataset(name: string, lines: string[]): string {
  const file = join(work, name)
  writeFileSync(file, lines.join('\n') + '\n')
  return file
}

const WORDS = 'the cat dog bird sat ran on a ship island child walked to big small red'.split(' ')
function sentence(i: number): string {
  return Array.from({ length: 4 + (i % 5) }, (_, k) => WORDS[(i * 7 + k * 3) % WORDS.length]).join(
    ' '
  )
}

function jsonlIds(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { id: string }).id)
}

async function linesAtLeast(file: string, n: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    const count = existsSync(file) ? readFileSync(file, 'utf8').split('\n').length - 1 : 0
    if (count >= n) return count
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`${file} did not reach ${n} lines in ${timeoutMs} ms`)
}

describe('talkative run', () => {
  const records = Array.from({ length: 200 }, (_, i) =>
    JSON.stringify({ id: `r${i}`, text: sentence(i) })
  )

  it('killed midway and run again: every record exactly once', async () => {
    const input = dataset('two-hundred.jsonl', records)
    const out = join(work, 'killed.jsonl')
    const args = ['run', '--dataset', input, '--out', out, ...FAST]
    const first = start(args)
    await linesAtLeast(out, 10, 60_000)
    first.child.kill('SIGKILL')
    const killed = await first.done
    expect(killed.signal).toBe('SIGKILL')
    const partial = jsonlIds(out)
    // Killed while working: some records, not all, and every line whole.
    expect(partial.length).toBeGreaterThanOrEqual(10)
    expect(partial.length).toBeLessThan(200)
    expect(readFileSync(out, 'utf8').endsWith('\n')).toBe(true)

    const second = await talkative(...args)
    expect(second.code).toBe(0)
    expect(second.stderr).toMatch(new RegExp(`resuming: ${partial.length} of 200 records`))
    const ids = jsonlIds(out)
    expect(ids).toHaveLength(200)
    expect(new Set(ids).size).toBe(200)
    expect(new Set(ids)).toEqual(new Set(records.map((_, i) => `r${i}`)))
    expect(ids.slice(0, partial.length)).toEqual(partial)
    expect(existsSync(`${out}.lock`)).toBe(false)

    // A third run has nothing left to do and leaves the file as it was.
    const size = statSync(out).size
    const third = await talkative(...args)
    expect(third.code).toBe(0)
    expect(statSync(out).size).toBe(size)
  })

  it('writes CSV and JSON that resume the same way (in-process, same runner)', async () => {
    const group = await loadGroup(await ensureDemoBundle(env.TALKATIVE_CACHE_DIR), {
      provider: 'cpu',
      threads: 1
    })
    try {
      const processor = recordProcessor(group, {
        lensId: group.summary.lenses[0]!.id,
        generate: false,
        generation: {},
        analysis: { bestOfK: 2, salience: false, kl: false }
      })
      const input = dataset('twenty.jsonl', records.slice(0, 20))
      const half = dataset('ten.jsonl', records.slice(0, 10))
      for (const format of ['csv', 'json'] as const) {
        const out = join(work, `part.${format}`)
        // Half the records first (as an interrupted run leaves them), then all of them.
        await runDataset({ input: half, out, format, onBadLine: 'fail' }, processor)
        const rest = await runDataset({ input, out, format, onBadLine: 'fail' }, processor)
        expect([rest.alreadyDone, rest.processed, rest.outRecords]).toEqual([10, 10, 20])
        const want = records.slice(0, 20).map((_, i) => `r${i}`)
        if (format === 'json') {
          const all = JSON.parse(readFileSync(out, 'utf8')) as { id: string; data: unknown[] }[]
          expect(all.map((r) => r.id)).toEqual(want)
          expect(all.every((r) => r.data.length > 0)).toBe(true)
        } else {
          const { rows } = parseCsv(readFileSync(out))
          expect([...new Set(rows.slice(1).map((r) => r.fields[0]))]).toEqual(want)
          expect(rows[0]!.fields.slice(0, 4)).toEqual(['id', 'record_lines', 'status', 'position'])
        }
      }
    } finally {
      await group.dispose()
    }
  })

  it('reports malformed lines by number, then skips them or fails as asked', async () => {
    const input = dataset('bad.jsonl', [
      JSON.stringify({ id: 1, text: 'the cat sat' }),
      '{"id": 2, "text": ',
      JSON.stringify({ id: 3 }),
      JSON.stringify({ id: 4, messages: [{ role: 'user', content: 'the dog ran' }] }),
      JSON.stringify({ id: 1, text: 'duplicate' })
    ])
    const out = join(work, 'bad-skip.jsonl')
    const skip = await talkative('run', '--dataset', input, '--out', out, ...FAST)
    expect(skip.code).toBe(0)
    expect(skip.stderr).toMatch(/bad\.jsonl line 2: not valid JSON/)
    expect(skip.stderr).toMatch(/bad\.jsonl line 3: needs "text" or "messages"/)
    expect(skip.stderr).toMatch(/bad\.jsonl line 5: duplicate id 1 \(first on line 1\)/)
    expect(jsonlIds(out)).toEqual([1, 4])
    // The conversation was analysed as the chat template renders it.
    const chat = JSON.parse(readFileSync(out, 'utf8').split('\n')[1]!) as { text: string }
    expect(chat.text).toMatch(
      /^<bos><start_of_turn>user the dog ran<end_of_turn><start_of_turn>model $/
    )

    const failOut = join(work, 'bad-fail.jsonl')
    const fail = await talkative(
      'run',
      '--dataset',
      input,
      '--out',
      failOut,
      '--on-bad-line',
      'fail',
      ...FAST
    )
    expect(fail.code).toBe(3)
    expect(fail.stderr).toMatch(/bad\.jsonl line 2: not valid JSON/)
    expect(existsSync(failOut) ? readFileSync(failOut, 'utf8') : '').toBe('')
  })

  it('records a failing record and goes on (exit code 4)', async () => {
    const tooLong = Array.from({ length: 3000 }, () => 'cat').join(' ')
    const input = dataset('one-fails.jsonl', [
      JSON.stringify({ id: 'ok', text: 'the cat sat' }),
      JSON.stringify({ id: 'long', text: tooLong }),
      JSON.stringify({ id: 'ok2', text: 'the ship sailed' })
    ])
    const out = join(work, 'one-fails.jsonl.out.jsonl')
    const r = await talkative('run', '--dataset', input, '--out', out, ...FAST)
    expect(r.code).toBe(4)
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.map((l) => [l.id, l.status])).toEqual([
      ['ok', 'completed'],
      ['long', 'failed'],
      ['ok2', 'completed']
    ])
    expect((lines[1]!.error as { code: string }).code).toBe('invalid_input')

    // Run again: the failed record is redone (it fails again here) and still written once;
    // with --no-retry-failed it is left as it is and nothing runs.
    const again = await talkative('run', '--dataset', input, '--out', out, ...FAST)
    expect(again.code).toBe(4)
    expect(again.stderr).toContain('redoing 1 record(s) that failed in an earlier run')
    const ids = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id)
    expect([...ids].sort()).toEqual(['long', 'ok', 'ok2'])
    const kept = await talkative(
      'run',
      '--dataset',
      input,
      '--out',
      out,
      '--no-retry-failed',
      ...FAST
    )
    expect(kept.code).toBe(0)
    expect(kept.stderr).not.toContain('redoing')
    expect(kept.stderr).toContain('0 processed')
  })

  it('generates, then analyses prompt + continuation', async () => {
    const input = dataset('gen.jsonl', [
      JSON.stringify({ id: 'a', text: 'the cat sat on the' }),
      JSON.stringify({ id: 'b', messages: [{ role: 'user', content: 'the bird sang' }] })
    ])
    const out = join(work, 'gen.out.jsonl')
    const r = await talkative(
      'run',
      '--dataset',
      input,
      '--out',
      out,
      '--generate',
      '--max-new-tokens',
      '5',
      ...FAST
    )
    expect(r.code).toBe(0)
    for (const line of readFileSync(out, 'utf8').trim().split('\n')) {
      const rec = JSON.parse(line) as {
        text: string
        generation: { prompt: string; completion: string; full_text: string }
        data: { token: string }[]
        metadata: { num_tokens: number }
      }
      expect(rec.text).toBe(rec.generation.full_text)
      expect(rec.generation.completion.split(' ').length).toBe(5)
      expect(rec.data.length).toBe(rec.metadata.num_tokens)
    }
  })

  it('names a bad argument, with exit code 2 (the rest: generate.test.ts, in-process)', async () => {
    const input = dataset('ok.jsonl', [JSON.stringify({ id: 1, text: 'the cat' })])
    const out = join(work, 'x.jsonl')
    const cases: [string[], RegExp][] = [
      [['run', '--out', out], /--dataset/],
      [
        ['run', '--dataset', input, '--out', out, '--max-new-tokens', '5'],
        /--max-new-tokens only applies with --generate/
      ],
      [['run', '--dataset', input, '--out', out, '--lens', 'nope'], /--lens: no lens "nope"/]
    ]
    for (const [args, message] of cases) {
      const r = await talkative(...args)
      expect(r.stderr, args.join(' ')).toMatch(message)
      expect(r.code, args.join(' ')).toBe(2)
    }
    const missing = await talkative('run', '--dataset', join(work, 'nope.jsonl'), '--out', out)
    expect(missing.code).toBe(3)
    expect(missing.stderr).toMatch(/dataset file not found/)
  })
})

describe('talkative generate and chat', () => {
  it('generates reproducibly from the command line', async () => {
    const args = [
      'generate',
      '--text',
      'the cat sat on the',
      '--max-new-tokens',
      '6',
      '-n',
      '2',
      '--seed',
      '3',
      '--json'
    ]
    const a = await talkative(...args)
    const b = await talkative(...args)
    expect(a.code).toBe(0)
    const parsed = JSON.parse(a.stdout) as { completions: { tokenIds: number[] }[] }
    expect(parsed.completions).toHaveLength(2)
    expect(parsed.completions.every((c) => c.tokenIds.length === 6)).toBe(true)
    expect(JSON.parse(b.stdout)).toMatchObject({ completions: parsed.completions })
  })

  it('chats one reply with the group template', async () => {
    const r = await talkative(
      'chat',
      '--system',
      'be brief',
      '--message',
      'the cat sat',
      '--max-new-tokens',
      '4',
      '--json'
    )
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { prompt: string; reply: string }
    expect(out.prompt).toBe(
      '<bos><start_of_turn>system be brief<end_of_turn><start_of_turn>user the cat sat<end_of_turn><start_of_turn>model '
    )
    expect(out.reply.length).toBeGreaterThan(0)
  })
})
