import { renderToStaticMarkup } from 'react-dom/server'
import { describe, expect, it } from 'vitest'
import { AnalyzeOptionsSchema, type AnalysisRow } from '@shared/domain/analysis'
import type { JobState } from '@shared/domain/jobs'
import type { InterventionRow } from '@shared/domain/research'
import { SESSION_FORMAT, type Session } from '@shared/domain/sessions'
import { initialRunsSlice, openedSession, type RunView } from '../../store/slices/runsSlice'
import { ResultsView } from './ResultsPanel'
import { RunLine, runLineText } from './RunLine'

function row(position: number, optimised: boolean): AnalysisRow {
  return {
    position,
    token: `t${position}`,
    tokenId: position,
    explanation: 'a b',
    explanationStructured: ['a', 'b'],
    mse: 0.25 + position / 100,
    relativeRmse: 0.5,
    klDivergence: 0.125,
    tokenSalience: [0.1, -0.1],
    logitLensTop: null,
    ...(optimised ? { mseBefore: 0.75 + position / 100, rollouts: 48 + position } : {})
  }
}

function session(change: Partial<Session>): Session {
  return {
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
    interventions: [],
    ...change
  }
}

function view(s: Session): RunView {
  return openedSession(initialRunsSlice, s).runs.byId[s.id]!
}

function render(s: Session): string {
  return renderToStaticMarkup(<ResultsView active={view(s)} compare={undefined} />)
}

describe('optimised runs in the results table', () => {
  it('shows MSE before and rollouts only when the rows carry them', () => {
    const optimised = render(
      session({
        options: AnalyzeOptionsSchema.parse({ optimise: { samplesPerIteration: 12 } }),
        rows: [row(0, true), row(1, true)]
      })
    )
    expect(optimised).toContain('data-column="mseBefore"')
    expect(optimised).toContain('data-column="rollouts"')
    expect(optimised).toContain('>MSE before<')
    expect(optimised).toContain('optimised (12 samples per iteration)')
    expect(optimised).not.toContain('K=8')
    // The summary footer summarises MSE before like MSE (mean of 0.75 and 0.76).
    expect(optimised).toMatch(/data-stat="mean".*data-column="mseBefore"[^>]*>0\.755/)

    const plain = render(session({ rows: [row(0, false), row(1, false)] }))
    expect(plain).not.toContain('data-column="mseBefore"')
    expect(plain).not.toContain('data-column="rollouts"')
    expect(plain).not.toContain('data-testid="column-mseBefore"')
    expect(plain).toContain('K=8')
  })
})

const intervention = (index: number, position: number): InterventionRow =>
  ({ index, interventionPosition: position }) as InterventionRow

describe('run line', () => {
  it('counts interventions and layers, and says where, instead of "0 positions"', () => {
    const interventions = view(
      session({
        kind: 'intervene',
        intervention: {
          positions: [5],
          strings: ['a', 'b', 'c'],
          topK: 10,
          maxNewTokens: 20
        },
        interventions: [intervention(0, 5), intervention(1, 5), intervention(2, 5)]
      })
    )
    expect(runLineText(interventions, 'done')).toBe('Done · 3 interventions at position 5')
    expect(
      renderToStaticMarkup(
        <RunLine run={{ ...interventions, interventions: [intervention(0, 5)] }} />
      )
    ).toContain('Done · 1 intervention at position 5')

    const sweep = view(
      session({
        kind: 'sweep',
        sweep: { position: 4, lenses: 'fixed', layers: [0, 2] },
        rows: [row(4, false), row(4, false)]
      })
    )
    expect(runLineText(sweep, 'done')).toBe('Done · 2 layers at position 4')
    expect(runLineText(sweep, 'cancelled')).toBe('Cancelled · 2 layers kept at position 4')
    expect(runLineText(view(session({ rows: [row(0, false)] })), 'done')).toBe('Done · 1 position')
  })

  it('shows the optimiser’s step from the running job’s stage', () => {
    const job = {
      status: 'running',
      stage: 'optimising batch 1 of 2, step 3 of 11: token 2 of 8: 4 of 5 regenerated',
      progress: { rowsDone: 5, rowsTotal: 10 },
      etaSeconds: 3.2
    } as JobState
    const running = { ...view(session({ status: 'running' })), job }
    expect(runLineText(running, 'running')).toBe(
      'Running · 5/10 positions · optimising batch 1 of 2, step 3 of 11: token 2 of 8: 4 of 5 regenerated · ETA 4 s'
    )
    expect(
      runLineText({ ...running, job: { ...job, stage: null, progress: null } }, 'running')
    ).toBe('Running · ETA 4 s')
  })
})
