import type { AnalysisRow } from '@shared/domain/analysis'

/**
 * Rows whose token or explanation contains the query (case-insensitive; several words must all
 * match, each in the token or the explanation). An empty query returns the same array, so a
 * streaming table keeps its fast path.
 */
export function filterRows(rows: AnalysisRow[], query: string): AnalysisRow[] {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean)
  if (terms.length === 0) return rows
  return rows.filter((r) => {
    // The word typed behind an `<unk>` is searchable too.
    const token = `${r.token} ${r.sourceText ?? ''}`.toLowerCase()
    const explanation = r.explanation.toLowerCase()
    return terms.every((t) => token.includes(t) || explanation.includes(t))
  })
}
