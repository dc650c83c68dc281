import { useDeferredValue, useMemo, useState, type JSX } from 'react'
import type { VisibilityState } from '@tanstack/react-table'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { SessionStatus } from '@shared/domain/sessions'
import { clippedRange, metricColor, rgbCss, salienceMax } from '../../lib/colorScale'
import { formatMetric, metricValue, METRICS, type MetricKey } from '../../lib/metrics'
import { useAppStore } from '../../store'
import type { RunView } from '../../store/slices/runsSlice'
import { CompareView, FullTextView, MetricPlot, TransposedView } from './OtherViews'
import { COLUMN_LABELS, ResultsTable } from './ResultsTable'

type View = 'table' | 'transposed' | 'text' | 'plot' | 'compare'
const EMPTY: never[] = []

/** Why a run that is no longer streaming shows no rows. */
const NO_ROWS: Record<SessionStatus, string> = {
  running: 'Waiting for the first rows…',
  completed: 'The analysis returned no rows (no positions were selected).',
  cancelled: 'The run was cancelled before its first row.',
  failed: 'The run failed before its first row.',
  interrupted: 'The app stopped before this run’s first row.'
}

/** Every explanation word's salience in one typed array (no per-row arrays to collect). */
function allSaliences(rows: readonly AnalysisRow[]): Float64Array {
  let n = 0
  for (const r of rows) n += r.tokenSalience.length
  const out = new Float64Array(n)
  let i = 0
  for (const r of rows) for (const s of r.tokenSalience) out[i++] = s
  return out
}

/** Legend of the clipped colour scale: low end, gradient, high end, how many values were clipped. */
function Legend({ label, range }: { label: string; range: ReturnType<typeof clippedRange> }): JSX.Element {
  const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => rgbCss(metricColor(t)))
  return (
    <div className="legend" data-testid="legend" aria-label={`${label} colour scale from ${formatMetric(range.min)} to ${formatMetric(range.max)}`}>
      <span>{formatMetric(range.min)}</span>
      <span className="legend__bar">
        {stops.map((c, i) => (
          <span key={i} style={{ background: c }} />
        ))}
      </span>
      <span>{formatMetric(range.max)}</span>
      <span className="muted small">
        {label}, 5th–95th percentile
        {range.clippedLow + range.clippedHigh > 0 && ` (${range.clippedLow} below, ${range.clippedHigh} above clipped)`}
      </span>
    </div>
  )
}

export function ResultsPanel(): JSX.Element {
  const active = useAppStore((s) => (s.runs.activeId ? s.runs.byId[s.runs.activeId] : undefined))
  const compare = useAppStore((s) => (s.runs.compareId ? s.runs.byId[s.runs.compareId] : undefined))
  return <ResultsView active={active} compare={compare} />
}

/** The active run (and the one to compare it with), as the results panel shows them. */
export function ResultsView({
  active,
  compare
}: {
  active: RunView | undefined
  compare: RunView | undefined
}): JSX.Element {
  const [view, setView] = useState<View>('table')
  const [metric, setMetric] = useState<MetricKey>('mse')
  const [columns, setColumns] = useState<VisibilityState>({ logitLensTop: false })
  // While rows stream in, the views render the new rows at transition priority: React renders them
  // in slices between frames instead of one task per batch that grows with the row count. A
  // finished or reopened result renders at once, so what is shown always matches its status.
  const deferred = useDeferredValue(active)
  const streaming = active?.job?.status === 'running' || active?.summary.status === 'running'
  const rows = (streaming && deferred?.sessionId === active?.sessionId ? deferred?.rows : active?.rows) ?? EMPTY
  const range = useMemo(() => clippedRange(rows.map((r) => metricValue(r, metric))), [rows, metric])
  const salienceTop = useMemo(() => salienceMax(allSaliences(rows)), [rows])
  const metricLabel = METRICS.find((m) => m.key === metric)?.label ?? metric

  if (!active) {
    return (
      <section className="results" aria-label="Results" data-testid="results">
        <p className="empty empty--hero">Run an analysis, or open one from the history, to see its rows here.</p>
      </section>
    )
  }
  const s = active.summary
  return (
    <section className="results" aria-label="Results" data-testid="results" data-session-id={active.sessionId}>
      <header className="results__head">
        <h2 className="section-title" data-testid="results-title">
          {s.name}
        </h2>
        <span className="muted small" data-testid="results-meta">
          {s.groupId} / {s.lensId}
          {active.metadata ? ` · layer ${active.metadata.layer}` : ''} · K={s.options.bestOfK} · seed {s.options.seed} · {rows.length} rows ·{' '}
          <span data-testid="results-status">{streaming ? 'streaming' : s.status}</span>
        </span>
      </header>
      {s.error && !streaming && s.status === 'failed' && (
        <p className="inline-error" role="alert" data-testid="results-error">
          This run failed: {s.error.message}
        </p>
      )}
      <div className="results__controls">
        <div className="segmented" role="tablist" aria-label="Result view">
          {(
            [
              ['table', 'Table'],
              ['transposed', 'Transposed'],
              ['text', 'Full text'],
              ['plot', 'Plot'],
              ['compare', 'Compare']
            ] as const
          ).map(([v, label]) => (
            <button key={v} type="button" role="tab" aria-selected={view === v} className={view === v ? 'on' : ''} onClick={() => setView(v)} data-testid={`view-${v}`}>
              {label}
            </button>
          ))}
        </div>
        <label>
          Colour by
          <select value={metric} onChange={(e) => setMetric(e.target.value as MetricKey)} data-testid="metric-picker">
            {METRICS.map((m) => (
              <option key={m.key} value={m.key} title={m.description}>
                {m.label}
              </option>
            ))}
          </select>
        </label>
        {view === 'table' && (
          <details className="column-toggles">
            <summary>Columns</summary>
            {Object.entries(COLUMN_LABELS).map(([id, label]) => (
              <label key={id} className="toggle">
                <input
                  type="checkbox"
                  checked={columns[id] !== false}
                  onChange={(e) => setColumns({ ...columns, [id]: e.target.checked })}
                  data-testid={`column-${id}`}
                />
                {label}
              </label>
            ))}
          </details>
        )}
        <Legend label={metricLabel} range={range} />
      </div>
      {active.completions.length > 0 && (
        <p className="muted small">Continuation: {active.completions.join(' | ')}</p>
      )}
      {rows.length === 0 ? (
        <p className="empty" data-testid="results-empty">
          {streaming ? 'Waiting for the first rows…' : NO_ROWS[s.status]}
        </p>
      ) : view === 'table' ? (
        <ResultsTable rows={rows} metric={metric} range={range} salienceTop={salienceTop} columnVisibility={columns} />
      ) : view === 'transposed' ? (
        <TransposedView rows={rows} metric={metric} range={range} salienceTop={salienceTop} />
      ) : view === 'text' ? (
        <FullTextView rows={rows} metric={metric} range={range} salienceTop={salienceTop} />
      ) : view === 'plot' ? (
        <MetricPlot rows={rows} metric={metric} range={range} label={metricLabel} />
      ) : compare && compare.sessionId !== active.sessionId ? (
        <CompareView left={rows} right={compare.rows} leftName={s.name} rightName={compare.summary.name} metric={metric} salienceTop={salienceTop} />
      ) : (
        <p className="empty">Pick a second run in the history (“Compare”) to see both side by side, aligned by position.</p>
      )}
    </section>
  )
}
