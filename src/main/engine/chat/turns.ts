/**
 * Turn boundaries in token ids: which ids open a chat turn (for "analyse the last N messages") and
 * which end one (to stop a reply). Pure functions over ids and the tokenizer's specials, so the
 * rules can be tested without a model.
 */
import type { TurnTokenizer } from '../types'

/** Token texts that open a turn in the chat formats we know (the predecessor's list). */
export const START_OF_TURN_TEXTS: readonly string[] = [
  '<|im_start|>',
  '<start_of_turn>',
  '<|start|>',
  '<|user|>',
  '<|assistant|>',
  '<|system|>',
  '<|im_sep|>',
  '<|start_header_id|>'
]

/** Token texts that close an assistant turn (the predecessor's list), besides the tokenizer's EOS. */
export const END_OF_TURN_TEXTS: readonly string[] = [
  '<end_of_turn>',
  '<|im_end|>',
  '<|eot_id|>',
  '<|endoftext|>',
  '<|end|>',
  '<return>',
  '<|return|>',
  '<|end_of_text|>'
]

/** Looks a token text up; undefined when it is not a single id of the vocabulary. */
export type TokenLookup = (text: string) => number | undefined

export interface TurnSpecials {
  /** Ids that open a turn; BOS counts as one (it opens the first). */
  startIds: ReadonlySet<number>
  /** Harmony only: consecutive assistant turns (analysis then final) count as one message. */
  harmony?: { startId: number; assistantId: number }
}

function idsOf(texts: Iterable<string>, lookup: TokenLookup): Set<number> {
  const ids = new Set<number>()
  for (const t of texts) {
    const id = lookup(t)
    if (id !== undefined && id !== null) ids.add(id)
  }
  return ids
}

export function startOfTurnSpecials(
  lookup: TokenLookup,
  bosToken: string | null | undefined
): TurnSpecials {
  const startIds = idsOf(
    bosToken ? [...START_OF_TURN_TEXTS, bosToken] : START_OF_TURN_TEXTS,
    lookup
  )
  const harmonyStart = lookup('<|start|>')
  const assistant = lookup('assistant')
  const harmony =
    harmonyStart !== undefined && assistant !== undefined && lookup('<|channel|>') !== undefined
      ? { startId: harmonyStart, assistantId: assistant }
      : undefined
  return harmony ? { startIds, harmony } : { startIds }
}

/**
 * The ids that end a reply: the tokenizer's EOS, any end-of-turn tokens the bundle lists, and the
 * known end-of-turn texts that exist in its vocabulary.
 */
export function endOfTurnIds(
  lookup: TokenLookup,
  eosToken: string | null | undefined,
  extra: readonly string[] = []
): number[] {
  const texts = [...(eosToken ? [eosToken] : []), ...extra, ...END_OF_TURN_TEXTS]
  return [...idsOf(texts, lookup)].sort((a, b) => a - b)
}

/** Positions of turn openings, with Harmony's analysis+final pairs collapsed to one. */
export function turnStartPositions(ids: readonly number[], specials: TurnSpecials): number[] {
  const starts: number[] = []
  const { harmony } = specials
  let previousWasAssistant = false
  for (let i = 0; i < ids.length; i++) {
    if (!specials.startIds.has(ids[i]!)) continue
    const isAssistant =
      harmony !== undefined && ids[i] === harmony.startId && ids[i + 1] === harmony.assistantId
    if (isAssistant && previousWasAssistant) continue
    previousWasAssistant = isAssistant
    starts.push(i)
  }
  return starts
}

/**
 * When the last opening sits within this many tokens of the end, the text ends in an open
 * generation prompt (e.g. `<start_of_turn>model\n`) that is not a message of its own.
 */
export const OPEN_PROMPT_WINDOW = 4
/**
 * With an open generation prompt the seed starts this many tokens before the N-th last opening,
 * so the previous turn's closing markup is analysed too. Kept for parity with its results.
 */
export const OPEN_PROMPT_LOOKBACK = 3

/**
 * First token position of the last `n` messages (as the predecessor found them). Positions stay
 * relative to the whole text: the caller analyses [start, ids.length). Returns 0 (analyse everything) when the
 * text has fewer than n+1 openings, i.e. when "the last n" would be all of it anyway.
 */
export function lastNMessagesStart(
  ids: readonly number[],
  specials: TurnSpecials,
  n: number
): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`)
  const starts = turnStartPositions(ids, specials)
  if (starts.length < n + 1) return 0
  // Indices below are within `starts`: it has at least n + 1 entries.
  const last = starts[starts.length - 1]!
  if (last >= ids.length - OPEN_PROMPT_WINDOW) {
    return Math.max(0, starts[starts.length - (n + 1)]! - OPEN_PROMPT_LOOKBACK)
  }
  return starts[starts.length - n]!
}

/** What `positionsInLastMessages` needs of a tokenizer. */
export type { TurnTokenizer }

/**
 * The analysis option `lastNMessages`: keeps the positions from the start of the last n messages
 * on (as the predecessor did); positions stay relative to the whole text. Undefined n keeps them all.
 */
export function positionsInLastMessages(
  positions: readonly number[],
  ids: readonly number[],
  n: number | undefined,
  tokenizer: TurnTokenizer
): number[] {
  if (n === undefined) return [...positions]
  const startIds = idsOf(START_OF_TURN_TEXTS, (t) => tokenizer.tokenToId(t))
  if (tokenizer.bosId !== undefined) startIds.add(tokenizer.bosId)
  const { harmony } = startOfTurnSpecials((t) => tokenizer.tokenToId(t), null)
  const start = lastNMessagesStart(ids, harmony ? { startIds, harmony } : { startIds }, n)
  return positions.filter((p) => p >= start)
}
