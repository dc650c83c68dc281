import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliHarness, type CliHarness } from './spawnCli'

// `talkative chat` as a user runs it (bin/talkative.cjs), on the demo group, whose model closes its
// replies with <end_of_turn> (docs/demo-lens.md, "Chat replies").
let cli: CliHarness

beforeAll(async () => {
  cli = await cliHarness('talkative-chat-cli-')
})

afterAll(() => {
  cli?.cleanup()
})

const talkative = (...args: string[]): ReturnType<CliHarness['run']> => cli.run(...args)

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
