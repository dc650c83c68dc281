/**
 * Continuations on the host side: prompt preparation (plain text or chat), the feeds for the base
 * graph's `generate` role, and decoding of its ids into completions. The graph does every model
 * step and every sample in one `session.run`; this file never sees logits.
 */
import { AppError, describeZodError } from '@shared/ipc/errors'
import { ChatTemplate } from '../chat/template'
import type { TokenizerSpecials } from '../chat/tokenizerConfig'
import { endOfTurnIds } from '../chat/turns'
import {
  GenerateOptionsSchema,
  type Completion,
  type GenerateOptions,
  type GenerateRequest
} from './options'
import { generationUniforms } from './uniforms'

/** What generation needs from a loaded group's tokenizer. */
export interface GenerationTokenizer {
  encode(text: string, addSpecialTokens: boolean): number[]
  /** Decodes with special tokens kept. */
  decode(ids: readonly number[]): string
  tokenToId(text: string): number | undefined
  readonly vocabSize: number
}

/** Inputs of the base graph's generate role, as plain arrays (the loader wraps them as tensors). */
export interface GenerateFeeds {
  /** (1, S) prompt ids. */
  inputIds: BigInt64Array
  promptLength: number
  /** (n, maxNewTokens) uniforms; n and the step count are read from its shape. */
  uniforms: Float32Array
  n: number
  steps: number
  temperature: number
  topP: number
  /** (V,) added to the logits: -1e9 at ids that must not be sampled. */
  logitBias: Float32Array
  /** Ids that end a completion (empty: run every step). */
  stopIds: BigInt64Array
}

export interface PreparedPrompt {
  text: string
  ids: number[]
  chat: boolean
}

export function parseGenerateOptions(input: unknown): GenerateOptions {
  const parsed = GenerateOptionsSchema.safeParse(input ?? {})
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error, 'options')
    throw new AppError('invalid_input', message, { field })
  }
  return parsed.data
}

/**
 * Plain text is tokenised with the tokenizer's specials (BOS), then a doubled leading BOS and a
 * trailing EOS are dropped (the seed's fix_bos_eos); messages are rendered with the chat template,
 * which writes its own specials, so no more are added.
 */
export function preparePrompt(
  req: Pick<GenerateRequest, 'text' | 'messages'>,
  tokenizer: GenerationTokenizer,
  specials: TokenizerSpecials
): PreparedPrompt {
  if ((req.text === undefined) === (req.messages === undefined)) {
    throw new AppError('invalid_input', 'give either text or messages', { field: 'text' })
  }
  if (req.messages !== undefined) {
    const rendered = ChatTemplate.fromSpecials(specials).render(req.messages)
    return { text: rendered.text, ids: tokenizer.encode(rendered.text, false), chat: true }
  }
  const text = req.text ?? ''
  const ids = tokenizer.encode(text, true)
  const bos = specials.bosToken ? tokenizer.tokenToId(specials.bosToken) : undefined
  const eos = specials.eosToken ? tokenizer.tokenToId(specials.eosToken) : undefined
  if (bos !== undefined && ids.length > 1 && ids[0] === bos && ids[1] === bos) ids.shift()
  if (eos !== undefined && ids.length > 1 && ids[ids.length - 1] === eos) ids.pop()
  if (ids.length === 0) {
    throw new AppError('invalid_input', 'the prompt is empty: nothing to continue', {
      field: 'text'
    })
  }
  return { text, ids, chat: false }
}

export function stopIdsFor(tokenizer: GenerationTokenizer, specials: TokenizerSpecials): number[] {
  return endOfTurnIds((t) => tokenizer.tokenToId(t), specials.eosToken, specials.endOfTurnTokens)
}

const SUPPRESSED = -1e9

export function generateFeeds(
  promptIds: readonly number[],
  options: GenerateOptions,
  endIds: readonly number[],
  vocabSize: number
): GenerateFeeds {
  const logitBias = new Float32Array(vocabSize)
  // Exact length: end-of-turn ids cannot be drawn, as with the seed's min_new_tokens.
  if (!options.stopAtEndOfTurn) for (const id of endIds) logitBias[id] = SUPPRESSED
  return {
    inputIds: BigInt64Array.from(promptIds.map(BigInt)),
    promptLength: promptIds.length,
    uniforms: generationUniforms(options.seed, options.n, options.maxNewTokens),
    n: options.n,
    steps: options.maxNewTokens,
    temperature: options.temperature,
    topP: options.topP,
    logitBias,
    stopIds: BigInt64Array.from((options.stopAtEndOfTurn ? endIds : []).map(BigInt))
  }
}

/**
 * Turns the graph's (steps run, n) ids into completions. The loop may stop early once every
 * completion has ended, so fewer steps than asked can come back; a completion ends at its first
 * end-of-turn id, which stays in the text (the turn is closed, as a template would write it).
 */
export function decodeCompletions(
  ids: BigInt64Array,
  stepsRun: number,
  n: number,
  prompt: PreparedPrompt,
  endIds: readonly number[],
  stopAtEndOfTurn: boolean,
  tokenizer: GenerationTokenizer
): Completion[] {
  const ends = new Set(endIds)
  const completions: Completion[] = []
  for (let row = 0; row < n; row++) {
    const tokenIds: number[] = []
    let finishReason: Completion['finishReason'] = 'length'
    for (let step = 0; step < stepsRun; step++) {
      const id = Number(ids[step * n + row])
      tokenIds.push(id)
      if (stopAtEndOfTurn && ends.has(id)) {
        finishReason = 'end_of_turn'
        break
      }
    }
    const replyIds = finishReason === 'end_of_turn' ? tokenIds.slice(0, -1) : tokenIds
    completions.push({
      fullText: tokenizer.decode([...prompt.ids, ...tokenIds]),
      text: tokenizer.decode(tokenIds),
      reply: tokenizer.decode(replyIds),
      tokenIds,
      finishReason
    })
  }
  return completions
}
