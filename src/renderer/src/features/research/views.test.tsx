import { renderToStaticMarkup } from 'react-dom/server'
import { describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import { InterventionView } from './InterventionView'
import { SweepView } from './SweepView'

const prediction = (token: string, probability: number) => ({ token, tokenId: 1, probability })

function intervention(truncatedTokens: number): InterventionRow {
  return {
    index: 0,
    interventionPosition: 2,
    intervenedToken: 'cat',
    intervenedTokenId: 5,
    nextTokenPosition: 4,
    predictionContextToken: 'on',
    interventionText: 'a big dog',
    interventionString: 'big dog',
    interventionIds: [7, 8, 9],
    truncatedTokens,
    paddedTokens: 0,
    explanationOriginal: 'small cat',
    explanationStructured: ['small', 'cat'],
    klDivergence: 0.25,
    klDivOrigDecoded: 0.0125,
    mse: 0.5,
    mseOrigDecoded: 0.03,
    topPredictionsOriginal: [prediction('the', 0.5)],
    topPredictionsIntervention: [prediction('a', 0.25)],
    topPredictionsOriginalDecoded: [prediction('mat', 0.125)],
    continuationOriginal: 'the mat',
    continuationIntervention: 'a rug',
    continuationOriginalDecoded: 'the hat'
  }
}

describe('intervention view', () => {
  it('shows the three runs side by side with the divergences and says when a string was cut', () => {
    const html = renderToStaticMarkup(<InterventionView rows={[intervention(2)]} />)
    for (const text of ['the mat', 'a rug', 'the hat', 'mat', '0.250', '0.0125', '0.500', '0.0300'])
      expect(html).toContain(text)
    expect(html).toContain('predictions after position 4')
    expect(html).toContain('Truncated to T=3 tokens: 2 tokens were cut from the start.')
    expect(renderToStaticMarkup(<InterventionView rows={[intervention(0)]} />)).not.toContain(
      'Truncated'
    )
  })
})

describe('sweep view', () => {
  const row = (layer: number, lensLayer: number): AnalysisRow =>
    ({
      position: 3,
      token: 'sat',
      explanation: `at ${layer}`,
      mse: layer + 0.5,
      relativeRmse: 0.5,
      klDivergence: 0.1,
      layer,
      lensId: `lens-${lensLayer}`,
      lensLayer,
      trainedAtLayer: layer === lensLayer
    }) as AnalysisRow

  it('lists one row per layer in layer order, marking where the lens was trained', () => {
    const html = renderToStaticMarkup(
      <SweepView rows={[row(2, 1), row(0, 1), row(1, 1)]} scale="linear" />
    )
    const layers = [...html.matchAll(/data-layer="(\d+)" data-trained="(yes|no)"/g)].map(
      (m) => `${m[1]}:${m[2]}`
    )
    expect(layers).toEqual(['0:no', '1:yes', '2:no'])
    expect(html).toContain('explained at 3 layers')
    expect(html).toContain('MSE per layer')
  })
})
