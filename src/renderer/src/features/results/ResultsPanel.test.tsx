import { renderToStaticMarkup } from 'react-dom/server'
import { describe, expect, it } from 'vitest'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import { SESSION_FORMAT, type Session } from '@shared/domain/sessions'
import { initialRunsSlice, openedSession } from '../../store/slices/runsSlice'
import { ResultsView } from './ResultsPanel'

function failedSession(): Session {
  return {
    format: SESSION_FORMAT,
    version: 1,
    id: 's-failed',
    name: 'too long',
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
    status: 'failed',
    error: { code: 'invalid_input', message: 'text has 9000 tokens; the model takes 512' },
    metadata: null,
    rows: [],
    completions: [],
    interventions: []
  }
}

describe('results panel', () => {
  it('shows why a failed run has no rows, instead of waiting for rows forever', () => {
    const { runs } = openedSession(initialRunsSlice, failedSession())
    const html = renderToStaticMarkup(
      <ResultsView active={runs.byId['s-failed']} compare={undefined} />
    )
    expect(html).toContain('data-testid="results-error"')
    expect(html).toContain('This run failed. Text has 9000 tokens; the model takes 512')
    expect(html).toContain('The run failed before its first row.')
    expect(html).not.toContain('Waiting for the first rows')
    // Reopened from history: the run line says it failed, with no Cancel that could do nothing.
    expect(html).toContain('data-status="failed"')
    expect(html).not.toContain('data-testid="cancel-run"')
    expect(html).not.toContain('Queued')
  })
})
