import { describe, expect, it } from 'vitest'
import {
  endOfTurnIds,
  lastNMessagesStart,
  positionsInLastMessages,
  startOfTurnSpecials,
  turnStartPositions,
  type TokenLookup
} from './turns'

// A small vocabulary standing in for a tokenizer's token→id map.
const VOCAB: Record<string, number> = {
  '<bos>': 1,
  '<eos>': 2,
  '<start_of_turn>': 3,
  '<end_of_turn>': 4,
  user: 10,
  model: 11,
  '\n': 12,
  hi: 13,
  there: 14,
  bye: 15,
  ok: 16
}
const lookup: TokenLookup = (t) => VOCAB[t]
const ids = (...toks: string[]): number[] => toks.map((t) => VOCAB[t]!)
const gemma = startOfTurnSpecials(lookup, '<bos>')

// <bos> | user: hi there | model: ok | user: bye | open model prompt
// prettier-ignore
const withOpenPrompt = ids(
  '<bos>',
  '<start_of_turn>', 'user', '\n', 'hi', 'there', '<end_of_turn>', '\n', // 1..7
  '<start_of_turn>', 'model', '\n', 'ok', '<end_of_turn>', '\n', // 8..13
  '<start_of_turn>', 'user', '\n', 'bye', '<end_of_turn>', '\n', // 14..19
  '<start_of_turn>', 'model', '\n' // 20..22
)
const closed = withOpenPrompt.slice(0, 20)

describe('start-of-turn detection', () => {
  it('finds BOS and every turn opening', () => {
    expect([...gemma.startIds].sort()).toEqual([1, 3])
    expect(turnStartPositions(withOpenPrompt, gemma)).toEqual([0, 1, 8, 14, 20])
  })

  it('collects end-of-turn ids present in the vocabulary', () => {
    expect(endOfTurnIds(lookup, '<eos>')).toEqual([2, 4])
    expect(endOfTurnIds(lookup, null, ['ok'])).toEqual([4, 16])
  })
})

describe('last N messages', () => {
  it('starts at the N-th last opening of a closed conversation', () => {
    expect(lastNMessagesStart(closed, gemma, 1)).toBe(14)
    expect(lastNMessagesStart(closed, gemma, 2)).toBe(8)
    expect(lastNMessagesStart(closed, gemma, 3)).toBe(1)
  })

  it('skips an open generation prompt and looks back over the previous closing markup', () => {
    // Last opening (20) is within the last 4 tokens: the N-th message before it starts at 14,
    // and the seed starts 3 tokens earlier (…ok <end_of_turn> \n).
    expect(lastNMessagesStart(withOpenPrompt, gemma, 1)).toBe(11)
    expect(lastNMessagesStart(withOpenPrompt, gemma, 2)).toBe(5)
    expect(lastNMessagesStart(withOpenPrompt, gemma, 3)).toBe(0)
  })

  it('analyses everything when there are too few openings', () => {
    expect(lastNMessagesStart(closed, gemma, 4)).toBe(0)
    expect(lastNMessagesStart(ids('hi', 'there'), gemma, 1)).toBe(0)
  })

  it('works without BOS, with positions relative to the whole text', () => {
    const noBos = closed.slice(1)
    expect(lastNMessagesStart(noBos, startOfTurnSpecials(lookup, null), 1)).toBe(13)
  })

  it('collapses Harmony analysis+final assistant turns into one message', () => {
    // prettier-ignore
    const harmonyVocab: Record<string, number> = {
      '<|start|>': 1, '<|end|>': 2, '<|channel|>': 3, '<|message|>': 4,
      user: 5, assistant: 6, analysis: 7, final: 8, q: 9, a: 10
    }
    const h = (...t: string[]): number[] => t.map((x) => harmonyVocab[x]!)
    const specials = startOfTurnSpecials((t) => harmonyVocab[t], null)
    expect(specials.harmony).toEqual({ startId: 1, assistantId: 6 })
    // prettier-ignore
    const text = h(
      '<|start|>', 'user', '<|message|>', 'q', '<|end|>', // 0..4
      '<|start|>', 'assistant', '<|channel|>', 'analysis', '<|message|>', 'a', '<|end|>', // 5..11
      '<|start|>', 'assistant', '<|channel|>', 'final', '<|message|>', 'a', 'a', 'a', '<|end|>' // 12..20
    )
    expect(turnStartPositions(text, specials)).toEqual([0, 5])
    expect(lastNMessagesStart(text, specials, 1)).toBe(5)
  })

  it('rejects a non-positive N', () => {
    expect(() => lastNMessagesStart(closed, gemma, 0)).toThrow(/positive/)
  })
})

describe('positions in the last N messages', () => {
  const tokenizer = { tokenToId: lookup, bosId: 1 }

  it('keeps absolute positions from the boundary on', () => {
    const all = closed.map((_, i) => i)
    expect(positionsInLastMessages(all, closed, 1, tokenizer)).toEqual([14, 15, 16, 17, 18, 19])
    expect(positionsInLastMessages([2, 9, 15], closed, 2, tokenizer)).toEqual([9, 15])
    expect(positionsInLastMessages([2, 9], closed, undefined, tokenizer)).toEqual([2, 9])
  })
})
