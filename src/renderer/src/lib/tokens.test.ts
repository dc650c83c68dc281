import { describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import { outOfVocabulary } from './tokens'

const row = (
  position: number,
  token: string,
  tokenId: number | null,
  sourceText?: string
): AnalysisRow => ({
  position,
  token,
  tokenId,
  ...(sourceText === undefined ? {} : { sourceText }),
  explanation: '',
  explanationStructured: [],
  mse: 0,
  relativeRmse: 0,
  klDivergence: null,
  tokenSalience: [],
  logitLensTop: null
})

describe('out-of-vocabulary positions', () => {
  it('are the rows whose token stands for a word the tokenizer read', () => {
    const rows = [
      row(0, '<bos>', 1),
      row(1, 'the', 10),
      row(2, '<unk>', 3, 'captain'),
      row(3, 'saw', 40),
      row(4, '<unk>', 3, 'zebras')
    ]
    expect(outOfVocabulary(rows)).toEqual([
      { position: 2, token: '<unk>', typed: 'captain' },
      { position: 4, token: '<unk>', typed: 'zebras' }
    ])
  })

  it('a tokenizer whose unknown token has another name is still exact', () => {
    expect(outOfVocabulary([row(0, '[UNK]', 100, 'zebra'), row(1, 'cat', 7)])).toEqual([
      { position: 0, token: '[UNK]', typed: 'zebra' }
    ])
  })

  it('an imported row without the typed word is known by its <unk> token', () => {
    expect(
      outOfVocabulary([row(0, '<bos>', null), row(1, '<unk>', null), row(2, 'cat', null)])
    ).toEqual([{ position: 1, token: '<unk>', typed: null }])
  })

  it('a text the vocabulary covers has none', () => {
    expect(outOfVocabulary([row(0, '<bos>', 1), row(1, 'cat', 20)])).toEqual([])
  })
})
