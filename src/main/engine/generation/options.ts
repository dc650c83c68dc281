import { z } from 'zod'
import { ChatMessagesSchema, type ChatMessage } from '../chat/messages'

/**
 * Continuation options. Defaults follow the seed's generate_continuation (temperature 1, top_p 1,
 * exact length); `stopAtEndOfTurn` is the seed's send_message behaviour (one chat reply).
 */
export const GenerateOptionsSchema = z
  .object({
    /** New tokens per completion (exact, or the cap when stopping at end of turn). */
    maxNewTokens: z.number().int().min(1).max(4096).default(100),
    /** Completions sampled from the same prompt. */
    n: z.number().int().min(1).max(256).default(1),
    /** 0 means greedy argmax. */
    temperature: z.number().min(0).max(5).default(1),
    /** Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p. */
    topP: z.number().gt(0).max(1).default(1),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(42),
    /**
     * false: exactly maxNewTokens tokens, end-of-turn ids suppressed (the seed's min_new_tokens).
     * true: a completion ends at its first end-of-turn id (kept in the full text).
     */
    stopAtEndOfTurn: z.boolean().default(false)
  })
  .strict()
export type GenerateOptions = z.output<typeof GenerateOptionsSchema>
export type GenerateOptionsInput = z.input<typeof GenerateOptionsSchema>

export const GeneratePromptSchema = z.union([
  z.object({ text: z.string() }).strict(),
  z.object({ messages: ChatMessagesSchema }).strict()
])

export interface GenerateRequest {
  /** Whose orig model speaks: the lens's donor where it has one, else the group's base. */
  lensId?: string
  /** Plain text, tokenised with the tokenizer's own specials (BOS). */
  text?: string
  /** A conversation, rendered with the group's chat template. */
  messages?: ChatMessage[]
  options?: GenerateOptionsInput
}

export interface Completion {
  /** Prompt + new tokens, special tokens included: analysable as is. */
  fullText: string
  /** The new part alone (special tokens included, e.g. a final end-of-turn marker). */
  text: string
  /** The new part without its closing end-of-turn token: the reply as a chat shows it. */
  reply: string
  tokenIds: number[]
  finishReason: 'length' | 'end_of_turn'
}

export interface GenerationMetadata {
  groupId: string
  /** The orig model that produced the continuation (base or donor id). */
  origModel: string
  lensId: string | null
  engineVersion: string
  executionProvider: string
  options: GenerateOptions
  promptTokens: number
  /** True when messages were formatted with the chat template. */
  chat: boolean
  timings: Record<string, number>
}

export interface GenerationResult {
  /** The prompt text as fed (after chat formatting). */
  prompt: string
  promptIds: number[]
  completions: Completion[]
  metadata: GenerationMetadata
}
