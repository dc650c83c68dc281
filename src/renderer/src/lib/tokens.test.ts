import { describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import { outOfVocabulary } from './tokens'

const row = (position: number, token: string, tokenId: number): AnalysisRow => ({
  position,
  token,
  tokenId,
  explanation: '',
  explanationStructured: [],
  mse: 0,
  relativeRmse: 0,
  klDivergence: null,
  tokenSalience: [],
  logitLensTop: null
})

describe('out-of-vocabulary positions', () => {
  it('finds the words that share the unknown-word id with other words', () => {
    const rows = [
      row(0, '<bos>', 1),
      row(1, 'the', 10),
      row(2, 'captain', 3),
      row(3, 'saw', 40),
      row(4, 'zebras', 3),
      row(5, 'The', 10)
    ]
    expect(outOfVocabulary(rows)).toEqual({ positions: [2, 4], known: true })
  })

  it('counts rows shown as <unk> and every row with that id', () => {
    const rows = [row(0, '<bos>', 1), row(1, '<unk>', 3), row(2, 'cat', 20)]
    expect(outOfVocabulary(rows)).toEqual({ positions: [1], known: true })
  })

  it('cannot tell a lone unknown word from the rows alone', () => {
    expect(outOfVocabulary([row(0, '<bos>', 1), row(1, 'captain', 3), row(2, 'cat', 20)])).toEqual({
      positions: [],
      known: false
    })
  })
})
