import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Tokenizer } from '@huggingface/tokenizers'
import { ensureDemoBundle, loadGroup, type LoadedGroup } from '../index'
import type { ChatMessage } from '../chat/messages'
import { lastNMessagesStart, startOfTurnSpecials } from '../chat/turns'
import { conversationText, generateThenAnalyze } from './jobs'

// The demo group's template, end-of-turn token and lens, end to end: chat formatting, replies,
// generate-then-analyse and the last-N-messages restriction on the real engine.
let cache: string
let group: LoadedGroup
let lensId: string
let vocab: Tokenizer

beforeAll(async () => {
  cache = mkdtempSync(join(tmpdir(), 'talkative-demo-chat-'))
  const dir = await ensureDemoBundle(cache)
  group = await loadGroup(dir, { provider: 'cpu', threads: 1 })
  const read = (f: string): object => JSON.parse(readFileSync(join(dir, f), 'utf8')) as object
  vocab = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'))
  lensId = group.summary.lenses[0]!.id
})

afterAll(async () => {
  await group?.dispose()
  rmSync(cache, { recursive: true, force: true })
})

const conversation: ChatMessage[] = [
  { role: 'system', content: 'the dog is calm' },
  { role: 'user', content: 'the cat sat on the bed' },
  { role: 'assistant', content: 'the bird sang' },
  { role: 'user', content: 'a ship sailed to the island' }
]
const fast = { bestOfK: 2, salience: false, kl: false }

describe('chat on the demo group', () => {
  it('renders with the group template and replies in one turn', async () => {
    const text = conversationText(group, conversation)
    expect(text.startsWith('<bos><start_of_turn>')).toBe(true)
    expect(text.endsWith('<start_of_turn>model ')).toBe(true)
    const r = await group.generate({
      lensId,
      messages: conversation,
      options: { maxNewTokens: 6, stopAtEndOfTurn: true, seed: 1 }
    })
    expect(r.metadata.chat).toBe(true)
    expect(r.prompt).toBe(text)
    const c = r.completions[0]!
    expect(c.tokenIds.length).toBeGreaterThan(0)
    expect(c.tokenIds.length).toBeLessThanOrEqual(6)
    // The full text re-tokenises to exactly prompt + reply: analysable as is.
    expect(group.tokenize(c.fullText).ids).toEqual([...r.promptIds, ...c.tokenIds])
  })

  it('continues an assistant prefill instead of opening a new turn', async () => {
    const prefill: ChatMessage[] = [
      { role: 'user', content: 'the cat sat' },
      { role: 'assistant', content: 'the dog' }
    ]
    const r = await group.generate({ lensId, messages: prefill, options: { maxNewTokens: 3 } })
    expect(r.prompt.endsWith('<start_of_turn>assistant the dog')).toBe(true)
  })

  it('generates then analyses the completion as one job', async () => {
    const job = await generateThenAnalyze(group, {
      lensId,
      text: 'the cat sat on the',
      generation: { maxNewTokens: 4, n: 3, seed: 9 },
      analysis: fast
    })
    expect(job.generation.completions).toHaveLength(1)
    const c = job.generation.completions[0]!
    expect(job.analysis.metadata.numTokens).toBe(
      job.generation.promptIds.length + c.tokenIds.length
    )
    expect(job.analysis.rows.map((r) => r.tokenId)).toEqual([
      ...job.generation.promptIds,
      ...c.tokenIds
    ])
  })
})

describe('analysing the last N messages', () => {
  it('analyses from the start of the last N messages, positions relative to the whole text', async () => {
    const text = conversationText(group, conversation)
    const { ids } = group.tokenize(text)
    const full = await group.analyze({ lensId, text, options: fast })
    const specials = startOfTurnSpecials((t) => vocab.token_to_id(t) ?? undefined, '<bos>')
    for (const n of [1, 2]) {
      const start = lastNMessagesStart(ids, specials, n)
      expect(start).toBeGreaterThan(0)
      const last = await group.analyze({ lensId, text, options: { ...fast, lastNMessages: n } })
      expect(last.rows[0]!.position).toBe(start)
      expect(last.rows.map((r) => r.position)).toEqual(
        ids.map((_, i) => i).filter((i) => i >= start)
      )
      // Per-position sample streams: the same rows as the full run at those positions.
      expect(last.rows).toEqual(full.rows.filter((r) => r.position >= start))
    }
    // The last user message opens at the final <start_of_turn>user; with the open generation
    // prompt the seed starts 3 tokens before it.
    const opens = ids.flatMap((id, i) => (id === ids[1] ? [i] : []))
    const lastOne = await group.analyze({ lensId, text, options: { ...fast, lastNMessages: 1 } })
    expect(lastOne.rows[0]!.position).toBe(opens.at(-2)! - 3)
  })

  it('analyses everything when there are fewer messages than asked for', async () => {
    const text = conversationText(group, conversation)
    const r = await group.analyze({ lensId, text, options: { ...fast, lastNMessages: 50 } })
    expect(r.rows[0]!.position).toBe(0)
    expect(r.rows).toHaveLength(group.tokenize(text).ids.length)
  })
})
