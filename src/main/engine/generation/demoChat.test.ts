import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Tokenizer } from '@huggingface/tokenizers'
import { ensureDemoBundle, loadGroup, type LoadedGroup } from '../index'
import type { ChatMessage } from '../chat/messages'
import { lastNMessagesStart, startOfTurnSpecials } from '../chat/turns'
import { DEMO_CONTENT_WORDS } from '../demo/vocabulary'
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
  it('renders every role with words its tokenizer knows: the assistant is a model turn', () => {
    const text = conversationText(group, conversation)
    expect(text).toContain('<start_of_turn>model the bird sang<end_of_turn>')
    const { tokens } = group.tokenize(text)
    const roles = tokens.filter((_t, i) => tokens[i - 1] === '<start_of_turn>')
    expect(roles).toEqual(['system', 'user', 'model', 'user', 'model'])
  })

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
    expect(r.prompt.endsWith('<start_of_turn>model the dog')).toBe(true)
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

describe('the demo model ends its chat replies', () => {
  const endOfTurn = (): number => vocab.token_to_id('<end_of_turn>')!
  const long: ChatMessage[] = Array.from({ length: 10 }, (_, i): ChatMessage[] => [
    { role: 'user', content: `the king ${i % 2 ? 'ate bread' : 'lost his golden clock'} at night` },
    { role: 'assistant', content: 'the dog ran to the river .' }
  ])
    .flat()
    .concat({ role: 'user', content: 'a ship sailed to the island' })

  it.each([
    ['one user message', [{ role: 'user', content: 'the cat sat on the chair' }]],
    ['four messages', conversation],
    ['21 messages', long]
  ] as [string, ChatMessage[]][])(
    '%s: a few words, then <end_of_turn>, for every seed and sample',
    async (_name, messages) => {
      const lengths: number[] = []
      for (const seed of [1, 2, 3, 4, 5]) {
        const r = await group.generate({
          lensId,
          messages,
          options: { maxNewTokens: 16, n: 4, stopAtEndOfTurn: true, seed }
        })
        expect(r.promptIds.length).toBeGreaterThan(messages.length * 4)
        for (const c of r.completions) {
          expect(c.finishReason, `seed ${seed}: ${c.text}`).toBe('end_of_turn')
          // Not <eos>, which would end the turn too: base text does not write other specials.
          expect(c.tokenIds.at(-1)).toBe(endOfTurn())
          expect(c.reply).not.toContain('<end_of_turn>')
          lengths.push(c.tokenIds.length - 1)
        }
      }
      // Real replies, not an immediate end (the first token is read at "model"), and short.
      expect(lengths.filter((n) => n >= 1).length).toBeGreaterThanOrEqual(lengths.length - 2)
      expect(Math.max(...lengths)).toBeGreaterThan(1)
      expect(lengths.reduce((a, b) => a + b, 0) / lengths.length).toBeLessThan(6)
    }
  )

  it('without stopAtEndOfTurn it still writes exactly maxNewTokens, never <end_of_turn>', async () => {
    const r = await group.generate({
      lensId,
      messages: conversation,
      options: { maxNewTokens: 12, n: 4, seed: 5 }
    })
    for (const c of r.completions) {
      expect(c.finishReason).toBe('length')
      expect(c.tokenIds).toHaveLength(12)
      expect(c.tokenIds).not.toContain(endOfTurn())
    }
  })

  it.each(['words-l1', 'words-l3'])(
    '%s: explanations in an analysed chat name its words and never end the turn',
    async (id) => {
      // The decoder shares the unembedding; the rest flag that raises <end_of_turn> is absent
      // there (its rows rest on the slot, not on <bos>).
      const text = conversationText(group, conversation)
      const r = await group.analyze({
        lensId: id,
        text,
        options: { bestOfK: 8, salience: false, kl: false }
      })
      const content = new Set<string>(DEMO_CONTENT_WORDS)
      const words = r.rows.filter((row) => content.has(row.token))
      expect(words.length).toBeGreaterThan(5)
      for (const row of words) {
        expect(row.explanationStructured, row.token).toContain(row.token)
        expect(row.explanationStructured, row.token).not.toContain('<end_of_turn>')
      }
    }
  )
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
