import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDemoBundle } from '../../main/engine'

// `talkative chat` as a user runs it (bin/talkative.cjs), on the demo group, whose model closes its
// replies with <end_of_turn> (docs/demo-lens.md, "Chat replies").
const ROOT = resolve(__dirname, '../../..')

let work: string
let env: NodeJS.ProcessEnv

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'talkative-chat-cli-'))
  env = {
    ...process.env,
    TALKATIVE_CACHE_DIR: join(work, 'cache'),
    TSX_TSCONFIG_PATH: resolve(ROOT, 'tsconfig.node.json')
  }
  await ensureDemoBundle(env.TALKATIVE_CACHE_DIR)
})

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
})

interface Done {
  code: number | null
  stdout: string
  stderr: string
}

function talkative(...args: string[]): Promise<Done> {
  const child = spawn(process.execPath, [resolve(ROOT, 'bin/talkative.cjs'), ...args], {
    cwd: ROOT,
    env
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  return new Promise((res) => child.on('close', (code) => res({ code, stdout, stderr })))
}

const LIMIT = 16

describe('talkative chat on the demo group', () => {
  it('prints a reply that ends at the end of the turn, before the token limit', async () => {
    const r = await talkative(
      'chat',
      '--message',
      'the cat sat on the chair',
      '--max-new-tokens',
      String(LIMIT),
      '--seed',
      '1'
    )
    expect(r.code, r.stderr).toBe(0)
    // Cut replies are reported on stderr; a reply that ended is not.
    expect(r.stderr).not.toMatch(/cut at --max-new-tokens/)
    const reply = r.stdout.trim()
    expect(reply.length).toBeGreaterThan(0)
    expect(reply).not.toContain('<end_of_turn>')
    expect(reply.split(/\s+/).length).toBeLessThan(LIMIT)
  })

  it('--json: finishReason end_of_turn for several seeds, within the limit', async () => {
    const runs = await Promise.all(
      ['2', '3', '4'].map((seed) =>
        talkative(
          'chat',
          '--system',
          'be brief',
          '--messages',
          JSON.stringify([
            { role: 'user', content: 'the dog ran to the river' },
            { role: 'assistant', content: 'the bird sang .' },
            { role: 'user', content: 'a ship sailed to the island' }
          ]),
          '--max-new-tokens',
          String(LIMIT),
          '--seed',
          seed,
          '--json'
        )
      )
    )
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0)
      const out = JSON.parse(r.stdout) as {
        reply: string
        completions: { tokenIds: number[]; text: string; finishReason: string }[]
      }
      const c = out.completions[0]!
      expect(c.finishReason).toBe('end_of_turn')
      expect(c.tokenIds.length).toBeLessThan(LIMIT)
      expect(c.text.endsWith('<end_of_turn>')).toBe(true)
      expect(out.reply).not.toContain('<end_of_turn>')
    }
  })
})
