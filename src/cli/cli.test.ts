/** The CLI as a user runs it: `node bin/talkative.cjs …` in a child process, on the demo group. */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LensFrameSchema } from '@shared/public/lensFrame'
import { ensureDemoBundle } from '../main/engine'

const root = path.resolve(__dirname, '../..')
let cache: string

interface Run {
  code: number
  stdout: string
  stderr: string
}

function talkative(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/talkative.cjs'), ...args],
      { cwd: root, env: { ...process.env, TALKATIVE_CACHE_DIR: cache }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout, stderr })
      }
    )
  })
}

beforeAll(async () => {
  cache = await mkdtemp(path.join(os.tmpdir(), 'talkative-cli-'))
  await ensureDemoBundle(cache)
})

afterAll(async () => {
  await rm(cache, { recursive: true, force: true })
})

describe('talkative CLI', () => {
  it('analyze --json prints { metadata, data } in the public row schema for the demo group', async () => {
    const r = await talkative([
      'analyze',
      '--text',
      'The dog ran.',
      '--best-of-k',
      '3',
      '--positions',
      '1:4',
      '--logit-lens',
      '--json'
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const result = LensFrameSchema.parse(JSON.parse(r.stdout))
    expect(result.metadata).toMatchObject({
      model_id: 'demo-words/words-l1',
      group_id: 'demo-words',
      lens_id: 'words-l1',
      best_of_k: 3,
      status: 'completed'
    })
    expect(result.metadata.options).toMatchObject({
      best_of_k: 3,
      seed: 42,
      salience: true,
      kl: true,
      logit_lens: true
    })
    expect(result.data.map((x) => x.token)).toEqual(['the', 'dog', 'ran'])
    expect(result.data[1]!.explanation_structured).toContain('dog')
    expect(result.data[1]!.logit_lens_top).toEqual(expect.any(String))
  })

  it('bad arguments exit 2 and name the flag; a bad bundle exits 3 and names the file', async () => {
    const k = await talkative(['analyze', '--text', 'x', '--best-of-k', '0'])
    expect(k.code).toBe(2)
    expect(k.stderr).toContain('--best-of-k')
    const none = await talkative(['analyze', '--lens', 'words-l3'])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('--text')
    const lens = await talkative(['analyze', '--text', 'x', '--lens', 'nope'])
    expect(lens.code).toBe(2)
    expect(lens.stderr).toContain('--lens')
    const bad = path.join(cache, 'bad')
    await mkdir(bad, { recursive: true })
    await writeFile(path.join(bad, 'manifest.json'), '{ nope')
    const inspect = await talkative(['inspect', bad])
    expect(inspect.code).toBe(3)
    expect(inspect.stderr).toContain('manifest.json')
  })

  it('inspect prints the summary of a valid bundle', async () => {
    const r = await talkative(['inspect', '--json'])
    expect(r.code).toBe(0)
    const s = JSON.parse(r.stdout)
    expect(s.groupId).toBe('demo-words')
    expect(s.lenses.map((l: { id: string }) => l.id)).toEqual(['words-l1', 'words-l3'])
  })
})
