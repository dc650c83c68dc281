import type { AnalysisRow } from '@shared/domain/analysis'

/** The name tokenizers give the id that stands for every word they do not know. */
export const UNK_TOKEN = '<unk>'

/** A position whose word the model did not know: what it received, and what was typed. */
export interface UnknownWord {
  position: number
  /** The token the model received (`<unk>`). */
  token: string
  /** The word the tokenizer read there, when the row records it. */
  typed: string | null
}

/**
 * Positions whose word the model received as the unknown-word token. The engine records the word
 * behind every such token (`sourceText`); a row imported from a file that does not record it is
 * known only by its `<unk>` token.
 */
export function outOfVocabulary(rows: readonly AnalysisRow[]): UnknownWord[] {
  return rows
    .filter((r) => r.sourceText !== undefined || r.token === UNK_TOKEN)
    .map((r) => ({ position: r.position, token: r.token, typed: r.sourceText ?? null }))
}
