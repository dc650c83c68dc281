import { renderToStaticMarkup } from 'react-dom/server'
import { describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import type { LibraryGroup } from '@shared/domain/models'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import { SESSION_FORMAT } from '@shared/domain/sessions'
import { initialRunsSlice, openedSession } from '../../store/slices/runsSlice'
import { InterventionView } from './InterventionView'
import { SweepPicker } from './SweepPicker'
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

describe('sweep picker', () => {
  const { runs } = openedSession(initialRunsSlice, {
    format: SESSION_FORMAT,
    version: 1,
    id: 's-1',
    name: 'a run',
    createdAt: 1,
    updatedAt: 2,
    appVersion: '0.1.0',
    kind: 'analyze',
    input: { mode: 'text', text: 'x' },
    groupId: 'demo-words',
    lensId: 'words-l1',
    bundleHash: 'abc',
    options: AnalyzeOptionsSchema.parse({}),
    jobId: 'job-1',
    status: 'completed',
    error: null,
    metadata: null,
    rows: [],
    completions: [],
    interventions: []
  })
  const group = {
    groupId: 'demo-words',
    base: { layers: 4 },
    lenses: [
      { id: 'words-l1', name: 'Words L1', layer: 1, tokens: 4 },
      { id: 'words-l3', name: 'Words L3', layer: 3, tokens: 4 }
    ]
  } as LibraryGroup

  it('offers the trained lenses or this lens at every layer, over all layers or a subset', () => {
    const html = renderToStaticMarkup(
      <SweepPicker run={runs.byId['s-1']!} position={4} group={group} onClose={() => undefined} />
    )
    expect(html).toContain('Sweep position 4 over the layers')
    expect(html).toContain(
      '<option value="trained" selected="">The lens trained at each layer (layers 1, 3), elsewhere Words L1</option>'
    )
    expect(html).toContain(
      '<option value="fixed">Words L1 (trained at layer 1) at every layer</option>'
    )
    expect(html).toContain('placeholder="all 4 (0–3)"')
    expect(html).toContain('data-testid="sweep-run"')
  })
})
