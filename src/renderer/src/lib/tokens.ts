import type { AnalysisRow } from '@shared/domain/analysis'

/** The name tokenizers give the id that stands for every word they do not know. */
export const UNK_TOKEN = '<unk>'

/**
 * Positions whose token the model received as the unknown-word id, as far as the rows show it: a
 * row whose token is `<unk>`, and every row sharing an id with rows of different words (a
 * word-level vocabulary gives two different words one id only when both are unknown to it). A
 * lone unknown word shown under its typed spelling cannot be told apart from the rows alone:
 * `known` is false when nothing marks the unknown-word id.
 */
export function outOfVocabulary(rows: readonly AnalysisRow[]): {
  positions: number[]
  known: boolean
} {
  const wordsById = new Map<number, Set<string>>()
  const unkIds = new Set<number>()
  for (const r of rows) {
    if (r.token === UNK_TOKEN) unkIds.add(r.tokenId)
    let words = wordsById.get(r.tokenId)
    if (!words) wordsById.set(r.tokenId, (words = new Set()))
    words.add(r.token.trim().toLowerCase())
  }
  for (const [id, words] of wordsById) if (words.size > 1) unkIds.add(id)
  if (unkIds.size === 0) return { positions: [], known: false }
  return {
    positions: rows.filter((r) => unkIds.has(r.tokenId)).map((r) => r.position),
    known: true
  }
}
