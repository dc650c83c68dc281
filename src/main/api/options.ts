/**
 * The API's options and prompts as the contract takes them: snake_case renamed, the seed's
 * aliases applied, `num_predictions` / `num_completions` folded in. Giving one setting two
 * different values is a 400.
 */
import type { ChatMessage } from '@shared/domain/chat'
import { fail } from './failures'
import { camelCase, renameKeysDeep, SEED_ANALYSIS_OPTION_ALIASES, toWireField } from './names'

function objectOrEmpty(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' ? (value as Record<string, unknown>) : {}
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
    if (key in SEED_ANALYSIS_OPTION_ALIASES) continue
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
  if (numPredictions !== undefined) {
    if (raw.best_of_k !== undefined && raw.best_of_k !== numPredictions) {
      fail('invalid_input', 'num_predictions contradicts options.best_of_k', 'num_predictions')
    }
    out.bestOfK = numPredictions
  }
  return out
}

/** Contract continuation options from the API's, with `num_completions` as completions. */
export function generateOptions(
  parsed: Record<string, unknown> | undefined,
  rawOptions: unknown,
  numCompletions: number | undefined
): Record<string, unknown> {
  const raw = objectOrEmpty(rawOptions)
  const out = objectOrEmpty(renameKeysDeep(parsed ?? {}, camelCase))
  if (numCompletions !== undefined) {
    if (raw.completions !== undefined && raw.completions !== numCompletions) {
      fail('invalid_input', 'num_completions contradicts options.completions', 'num_completions')
    }
    out.completions = numCompletions
  }
  return out
}

/** A prompt as the job contract takes it: plain text, or a conversation for the chat template. */
export function promptInput(
  prompt: string | ChatMessage[]
): { text: string } | { messages: ChatMessage[] } {
  return typeof prompt === 'string' ? { text: prompt } : { messages: prompt }
}
