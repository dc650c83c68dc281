/**
 * The API's options and prompts as the contract takes them: snake_case renamed, the seed's
 * aliases applied, `num_predictions` / `num_completions` folded in, and the predecessor's own
 * option names given their meaning (`batch_size`, `optimize_explanations_config`, `no_eval`,
 * `use_chat_format`, `num_tokens`, `return_full_text`) or refused with the replacement named.
 * Giving one setting two different values is a 400.
 */
import { z } from 'zod'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import { ChatMessageSchema, type ChatMessage } from '@shared/domain/chat'
import { fail } from './failures'
import { camelCase, renameKeysDeep, SEED_ANALYSIS_OPTION_ALIASES, toWireField } from './names'

function objectOrEmpty(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' ? (value as Record<string, unknown>) : {}
}

/** Keys of the analysis options that are the predecessor's and handled here, not renamed. */
const SEED_ANALYSIS_KEYS = new Set([
  ...Object.keys(SEED_ANALYSIS_OPTION_ALIASES),
  'batch_size',
  'optimize_explanations_config',
  'no_eval',
  'use_chat_format',
  'is_chat'
])

const DEFAULT_BEST_OF_K = AnalyzeOptionsSchema.shape.bestOfK.parse(undefined)

/**
 * One setting given under several names: the value they agree on (or undefined), a 400 naming
 * the second name when two disagree.
 */
function agree<T>(given: Array<{ name: string; value: T | undefined }>): T | undefined {
  let first: { name: string; value: T } | undefined
  for (const g of given) {
    if (g.value === undefined) continue
    if (!first) first = { name: g.name, value: g.value }
    else if (g.value !== first.value)
      fail('invalid_input', `${g.name} contradicts ${first.name}`, g.name)
  }
  return first?.value
}

/** Contract analysis options from the API's, with `num_predictions` as best-of-K. */
export function analysisOptions(
  parsed: Record<string, unknown> | undefined,
  rawOptions: unknown,
  numPredictions: number | undefined
): Record<string, unknown> {
  const raw = objectOrEmpty(rawOptions)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(parsed ?? {})) {
    if (SEED_ANALYSIS_KEYS.has(key)) continue
    out[camelCase(key)] = renameKeysDeep(value, camelCase)
  }
  for (const [alias, { to, invert }] of Object.entries(SEED_ANALYSIS_OPTION_ALIASES)) {
    const value = parsed?.[alias]
    if (value === undefined) continue
    const meant = invert ? !value : value
    const ownName = toWireField(to)!
    if (raw[ownName] !== undefined && raw[ownName] !== meant) {
      fail('invalid_input', `options.${alias} contradicts options.${ownName}`, `options.${alias}`)
    }
    out[to] = meant
  }

  const oec = objectOrEmpty(parsed?.optimize_explanations_config)
  if (oec.use_batched === false) {
    fail(
      'invalid_input',
      "the predecessor's sequential optimiser (use_batched: false) is not part of the Workbench; use best_of_k (best-of-K sampling, as use_batched: true did)",
      'options.optimize_explanations_config.use_batched'
    )
  }
  const bestOfK = agree<number>([
    { name: 'options.best_of_k', value: raw.best_of_k as number | undefined },
    { name: 'num_predictions', value: numPredictions },
    {
      name: 'options.optimize_explanations_config.best_of_k',
      value: oec.best_of_k as number | undefined
    }
  ])
  if (bestOfK !== undefined) out.bestOfK = bestOfK
  const temperature = agree<number>([
    { name: 'options.temperature', value: raw.temperature as number | undefined },
    {
      name: 'options.optimize_explanations_config.temperature',
      value: oec.temperature as number | undefined
    }
  ])
  if (temperature !== undefined) out.temperature = temperature

  // Positions per batch: the seed's batch_size, else its rollout grouping (the same number in
  // the predecessor's batched path). Rows per batch count every rollout of every position.
  const positions =
    (parsed?.batch_size as number | undefined) ??
    (oec.n_groups_per_rollout as number | null | undefined) ??
    (oec.rollout_batch_size as number | undefined)
  if (positions !== undefined && positions !== null) {
    const rows = positions * (bestOfK ?? DEFAULT_BEST_OF_K)
    if (rows > 65536) {
      fail(
        'invalid_input',
        `batch_size ${positions} × best_of_k ${bestOfK ?? DEFAULT_BEST_OF_K} is over 65536 rows per batch`,
        'options.batch_size'
      )
    }
    agree<number>([
      { name: 'options.rows_per_batch', value: raw.rows_per_batch as number | undefined },
      { name: 'options.batch_size', value: rows }
    ])
    out.rowsPerBatch = rows
  }

  if (parsed?.no_eval === true) {
    // The predecessor's best-of-K path zeroed KL and relative RMSE; the costly evaluations here
    // are KL (the original model's forward) and salience (one encoder pass per token).
    const asked = [
      raw.kl === true && 'options.kl',
      raw.no_kl === false && 'options.no_kl',
      raw.salience === true && 'options.salience',
      raw.calculate_token_salience === true && 'options.calculate_token_salience'
    ].filter(Boolean)
    if (asked.length)
      fail('invalid_input', `options.no_eval contradicts ${asked.join(', ')}`, 'options.no_eval')
    out.kl = false
    out.salience = false
  }
  return out
}

/** Contract continuation options from the API's, with `num_completions` as completions. */
export function generateOptions(
  parsed: Record<string, unknown> | undefined,
  rawOptions: unknown,
  numCompletions: number | undefined,
  prefix = 'options'
): Record<string, unknown> {
  const raw = objectOrEmpty(rawOptions)
  const own: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(parsed ?? {})) {
    if (
      ['num_tokens', 'num_completions', 'return_full_text', 'use_chat_format', 'is_chat'].includes(
        key
      )
    )
      continue
    own[key] = value
  }
  const out = objectOrEmpty(renameKeysDeep(own, camelCase))
  if (raw.return_full_text === 'full_and_completion') {
    fail(
      'invalid_input',
      `${prefix}.return_full_text "full_and_completion" is not supported: ask return_full_text true for prompt + continuation, or false for the continuation alone`,
      `${prefix}.return_full_text`
    )
  }
  const tokens = agree<number>([
    { name: `${prefix}.max_new_tokens`, value: raw.max_new_tokens as number | undefined },
    { name: `${prefix}.num_tokens`, value: raw.num_tokens as number | undefined }
  ])
  if (tokens !== undefined) out.maxNewTokens = tokens
  const completions = agree<number>([
    { name: `${prefix}.completions`, value: raw.completions as number | undefined },
    { name: `${prefix}.num_completions`, value: raw.num_completions as number | undefined },
    { name: 'num_completions', value: numCompletions }
  ])
  if (completions !== undefined) out.completions = completions
  return out
}

/** The seed's `use_chat_format` / `is_chat` in an options object as sent. */
export function asksForChat(rawOptions: unknown): boolean {
  const o = objectOrEmpty(rawOptions)
  return o.use_chat_format === true || o.is_chat === true
}

/** `return_full_text: false` in an options object as sent: answer the continuations alone. */
export function wantsContinuationsOnly(rawOptions: unknown): boolean {
  return objectOrEmpty(rawOptions).return_full_text === false
}

const ConversationSchema = z.array(ChatMessageSchema).min(1).max(1000)

/**
 * A prompt as the job contract takes it: plain text, or a conversation for the chat template.
 * With the seed's `use_chat_format`, a string is a conversation: JSON (a list of
 * `{role, content}`, or one such object) when it starts with `[` or `{`, else one user turn.
 */
export function promptInput(
  prompt: string | ChatMessage[],
  asChat = false
): { text: string } | { messages: ChatMessage[] } {
  if (typeof prompt !== 'string') return { messages: prompt }
  if (!asChat) return { text: prompt }
  const trimmed = prompt.trim()
  if (!trimmed.startsWith('[') && !trimmed.startsWith('{'))
    return { messages: [{ role: 'user', content: prompt }] }
  let json: unknown
  try {
    json = JSON.parse(trimmed)
  } catch (err) {
    fail(
      'invalid_input',
      `with use_chat_format, a prompt starting with [ or { must be JSON messages: ${(err as Error).message}`,
      'prompt'
    )
  }
  const parsed = ConversationSchema.safeParse(Array.isArray(json) ? json : [json])
  if (!parsed.success) {
    fail(
      'invalid_input',
      'with use_chat_format, a JSON prompt must be [{"role": "system"|"user"|"assistant", "content": "..."}]',
      'prompt'
    )
  }
  return { messages: parsed.data }
}
