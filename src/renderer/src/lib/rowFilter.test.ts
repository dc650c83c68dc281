import { describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import { filterRows } from './rowFilter'

const row = (position: number, token: string, explanation: string): AnalysisRow => ({
  position,
  token,
  tokenId: position,
  explanation,
  explanationStructured: explanation.split(' '),
  mse: 0,
  relativeRmse: 0,
  klDivergence: null,
  tokenSalience: [],
  logitLensTop: null
})

describe('row filter', () => {
  const rows = [
    row(0, '<bos>', 'market ran'),
    row(1, 'cat', 'cat cat sat'),
    row(2, 'Chair', 'we chair'),
    row(3, 'red', 'red red')
  ]

  it('matches tokens and explanations, ignoring case; every word must match somewhere', () => {
    expect(filterRows(rows, 'CAT').map((r) => r.position)).toEqual([1])
    expect(filterRows(rows, 'chair').map((r) => r.position)).toEqual([2])
    expect(filterRows(rows, 'ran').map((r) => r.position)).toEqual([0])
    expect(filterRows(rows, 'cat sat').map((r) => r.position)).toEqual([1])
    expect(filterRows(rows, 'cat red')).toEqual([])
  })

  it('returns the same array for an empty query', () => {
    expect(filterRows(rows, '  ')).toBe(rows)
  })
})
