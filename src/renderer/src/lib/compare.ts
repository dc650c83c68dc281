import type { AnalysisRow } from '@shared/domain/analysis'

export interface AlignedRow {
  position: number
  left: AnalysisRow | null
  right: AnalysisRow | null
  /** Both sides analysed this position but saw different tokens (different texts). */
  tokenMismatch: boolean
}

/**
 * Two runs side by side, one line per position either run analysed, in position order. Runs of
 * the same text with different lenses or layers line up exactly; a position only one run has gets
 * an empty side instead of shifting the rest.
 */
export function alignByPosition(
  left: readonly AnalysisRow[],
  right: readonly AnalysisRow[]
): AlignedRow[] {
  const byPosition = new Map<number, AlignedRow>()
  for (const row of left) {
    byPosition.set(row.position, {
      position: row.position,
      left: row,
      right: null,
      tokenMismatch: false
    })
  }
  for (const row of right) {
    const existing = byPosition.get(row.position)
    if (existing) {
      existing.right = row
      existing.tokenMismatch = existing.left !== null && existing.left.token !== row.token
    } else {
      byPosition.set(row.position, {
        position: row.position,
        left: null,
        right: row,
        tokenMismatch: false
      })
    }
  }
  return [...byPosition.values()].sort((a, b) => a.position - b.position)
}

/** Mean of a metric over the positions both runs share (NaN when none). */
export function meanDifference(
  aligned: readonly AlignedRow[],
  metric: (row: AnalysisRow) => number | null
): number {
  let sum = 0
  let n = 0
  for (const a of aligned) {
    if (!a.left || !a.right) continue
    const l = metric(a.left)
    const r = metric(a.right)
    if (l === null || r === null || !Number.isFinite(l) || !Number.isFinite(r)) continue
    sum += r - l
    n++
  }
  return n ? sum / n : Number.NaN
}
