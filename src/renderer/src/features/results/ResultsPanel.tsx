import { useDeferredValue, useMemo, useState, type JSX } from 'react'
import type { VisibilityState } from '@tanstack/react-table'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { SessionStatus } from '@shared/domain/sessions'
import { clippedRange, salienceMax } from '../../lib/colorScale'
import { metricValue, METRICS, type MetricKey } from '../../lib/metrics'
import { columnFormatOf, makeFormat, type ColumnFormat } from '../../lib/numberFormat'
import { humanError } from '../../lib/humanErrors'
import { filterRows } from '../../lib/rowFilter'
import { summarize, type AxisScale } from '../../lib/stats'
import { outOfVocabulary } from '../../lib/tokens'
import { announce, useAppStore } from '../../store'
import { InterventionEditor } from '../research/InterventionEditor'
import { InterventionView } from '../research/InterventionView'
import { SweepPicker } from '../research/SweepPicker'
import { SweepView } from '../research/SweepView'
import type { RunView } from '../../store/slices/runsSlice'
import { focusedRow, type ResultsViewKind } from '../../store/slices/uiSlice'
import { MetricLegend, SalienceLegend } from './Legends'
import { MetricPlot } from './MetricPlot'
import { CompareView, FullTextView, TransposedView } from './OtherViews'
import {
  COLUMN_LABELS,
  OPTIMISER_COLUMNS,
  ResultsTable,
  type MetricFormats,
  type MetricSummaries
} from './ResultsTable'
import { RunLine } from './RunLine'

const EMPTY: never[] = []
const METRIC_KEYS: readonly MetricKey[] = ['mse', 'relativeRmse', 'klDivergence']

/** Why a run that is no longer streaming shows no rows. */
const NO_ROWS: Record<SessionStatus, string> = {
  running: 'Waiting for the first rows…',
  completed: 'The analysis returned no rows (no positions were selected).',
  cancelled: 'The run was cancelled before its first row.',
  failed: 'The run failed before its first row.',
  interrupted: 'The app stopped before this run’s first row.'
}

const VIEWS: ReadonlyArray<readonly [ResultsViewKind, string]> = [
  ['table', 'Table'],
  ['transposed', 'Transposed'],
  ['text', 'Full text'],
  ['plot', 'Plot'],
  ['compare', 'Compare']
]

/** Every explanation word's salience in one typed array (no per-row arrays to collect). */
function allSaliences(rows: readonly AnalysisRow[]): Float64Array {
  let n = 0
  for (const r of rows) n += r.tokenSalience.length
  const out = new Float64Array(n)
  let i = 0
  for (const r of rows) for (const s of r.tokenSalience) out[i++] = s
  return out
}

/**
 * Each metric column's format, as a key that only changes when a format does: the formats keep
 * their identity while rows stream, so visible rows are not re-rendered for nothing.
 */
function formatKey(rows: readonly AnalysisRow[]): string {
  return METRIC_KEYS.map((k) => {
    const f = columnFormatOf(rows, (r) => r[k])
    return `${f.kind}:${f.decimals}`
  }).join('|')
}

function formatsOf(key: string): MetricFormats {
  const parts = key.split('|').map((p) => p.split(':'))
  const make = (i: number): ColumnFormat =>
    makeFormat(parts[i]![0] as ColumnFormat['kind'], Number(parts[i]![1]))
  return { mse: make(0), relativeRmse: make(1), klDivergence: make(2) }
}

function setView(view: ResultsViewKind): void {
  useAppStore.setState((s) => ({ ui: { ...s.ui, resultsView: view } }))
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
  const view = useAppStore((s) => s.ui.resultsView)
  const library = useAppStore((s) => s.manager.snapshot?.library)
  const focus = useAppStore((s) => s.ui.focus)
  const [metric, setMetric] = useState<MetricKey>('mse')
  const [scale, setScale] = useState<AxisScale>('linear')
  /** Column choices the user made; the rest follow the run's options. */
  const [columns, setColumns] = useState<VisibilityState>({})
  const [query, setQuery] = useState('')
  /** The row picked for the research actions (a click in the table), and whether its editor is open. */
  const [picked, setPicked] = useState<{ sessionId: string; position: number } | null>(null)
  /** Which research form is open for the picked row. */
  const [editing, setEditing] = useState<'intervene' | 'sweep' | null>(null)
  // The summary footer costs four rows: on by default where the window is tall enough to spare them.
  const [showSummary, setShowSummary] = useState(() => (globalThis.innerHeight ?? 1000) >= 820)
  // While rows stream in, the views render the new rows at transition priority: React renders them
  // in slices between frames instead of one task per batch that grows with the row count. A
  // finished or reopened result renders at once, so what is shown always matches its status.
  const deferred = useDeferredValue(active)
  const streaming = active?.job?.status === 'running' || active?.summary.status === 'running'
  const allRows =
    (streaming && deferred?.sessionId === active?.sessionId ? deferred?.rows : active?.rows) ??
    EMPTY
  const rows = useMemo(() => filterRows(allRows, query), [allRows, query])
  const range = useMemo(
    () => clippedRange(allRows.map((r) => metricValue(r, metric))),
    [allRows, metric]
  )
  const salienceTop = useMemo(() => salienceMax(allSaliences(allRows)), [allRows])
  const hasSalience = allRows.length > 0 && allRows[0]!.tokenSalience.length > 0
  const key = useMemo(() => formatKey(allRows), [allRows])
  const formats = useMemo(() => formatsOf(key), [key])
  const summaries = useMemo<MetricSummaries | null>(
    () =>
      showSummary
        ? {
            mse: summarize(rows.map((r) => r.mse)),
            relativeRmse: summarize(rows.map((r) => r.relativeRmse)),
            klDivergence: summarize(rows.map((r) => r.klDivergence)),
            mseBefore: summarize(rows.map((r) => r.mseBefore ?? null))
          }
        : null,
    [rows, showSummary]
  )
  const oov = useMemo(() => (streaming ? null : outOfVocabulary(allRows)), [allRows, streaming])
  const metricLabel = METRICS.find((m) => m.key === metric)?.label ?? metric
  // The run's options decide the KL and logit-lens columns (a run with the logit lens on shows it);
  // a choice made in the Columns menu wins. Memoised: a new object every render would re-render
  // the (memoised) table on every job progress event.
  const kl = active?.summary.options.kl ?? true
  const logitLens = active?.summary.options.logitLens ?? false
  // An optimised run's rows carry the starting MSE and the rollouts spent: their columns show.
  const optimised = allRows.length > 0 && allRows[0]!.mseBefore !== undefined
  const visibility = useMemo<VisibilityState>(
    () => ({
      klDivergence: kl,
      logitLensTop: logitLens,
      mseBefore: optimised,
      rollouts: optimised,
      ...columns
    }),
    [kl, logitLens, optimised, columns]
  )

  if (!active) {
    return (
      <section className="results results--empty" aria-label="Results" data-testid="results">
        <p className="empty empty--hero">
          Type a text above and press <strong>Analyse</strong>, or open a saved run from the
          history, to see its rows here.
        </p>
      </section>
    )
  }
  const s = active.summary
  const pick = (position: number): void => {
    if (!rows.some((r) => r.position === position)) setQuery('')
    useAppStore.setState((st) => focusedRow(st, active.sessionId, position))
    announce(`Row ${position} opened in the table`)
  }
  const oovWords = (oov ?? []).map((u) => u.typed ?? u.token)
  const research = s.kind === 'intervene' || s.kind === 'sweep'
  const pickedPosition = picked?.sessionId === active.sessionId ? picked.position : null
  const group = library?.groups.find((g) => g.groupId === s.groupId)

  return (
    <section
      className="results"
      aria-label="Results"
      data-testid="results"
      data-session-id={active.sessionId}
    >
      <header className="results__head">
        <h2 className="results__title" data-testid="results-title" title={s.name}>
          {s.name}
        </h2>
        <span className="muted small results__meta" data-testid="results-meta">
          {s.groupId} / {s.lensId}
          {active.metadata ? ` · layer ${active.metadata.layer}` : ''} ·{' '}
          {s.options.optimise
            ? `optimised (${s.options.optimise.samplesPerIteration} samples per iteration)`
            : `K=${s.options.bestOfK}`}{' '}
          · seed {s.options.seed} ·{' '}
          {s.kind === 'intervene' ? active.interventions.length : allRows.length} rows ·{' '}
          <span data-testid="results-status">{streaming ? 'streaming' : s.status}</span>
        </span>
        <RunLine run={active} />
      </header>
      {s.error && !streaming && s.status === 'failed' && (
        <p className="inline-error" role="alert" data-testid="results-error">
          This run failed. {humanError(s.error).message}
        </p>
      )}
      {oovWords.length > 0 && (
        <p className="note results__oov" data-testid="oov-note">
          {oovWords.length} {oovWords.length === 1 ? 'position is a word' : 'positions are words'}{' '}
          this model’s vocabulary
          {group?.vocabSize ? ` (${group.vocabSize.toLocaleString('en')} tokens)` : ''} does not
          have; it received <code>&lt;unk&gt;</code> there:{' '}
          {[...new Set(oovWords)].slice(0, 8).join(', ')}
          {new Set(oovWords).size > 8 ? ', …' : ''}
          {group?.source === 'demo' && group.vocabSize && group.maxTokens && (
            <>
              {' '}
              The demo group is a tiny constructed model: it knows {group.vocabSize} tokens, common
              English words and punctuation, and takes texts of at most {group.maxTokens} tokens.
            </>
          )}
        </p>
      )}
      {active.completions.length > 0 && (
        <p className="muted small results__continuation">
          Continuation: {active.completions.join(' | ')}
        </p>
      )}
      {!research && allRows.length > 0 && !streaming && (
        <div className="results__actions" data-testid="row-actions">
          {pickedPosition === null ? (
            <span className="muted small">
              Click a row to intervene on its explanation or sweep its position over layers.
            </span>
          ) : (
            <>
              <span className="small" data-testid="picked-row">
                Row {pickedPosition}
              </span>
              <button type="button" onClick={() => setEditing('intervene')} data-testid="intervene">
                Intervene
              </button>
              <button type="button" onClick={() => setEditing('sweep')} data-testid="sweep-layers">
                Sweep layers
              </button>
            </>
          )}
        </div>
      )}
      {editing === 'intervene' && pickedPosition !== null && !research && (
        <InterventionEditor
          key={`${active.sessionId}:${pickedPosition}`}
          run={active}
          position={pickedPosition}
          onClose={() => setEditing(null)}
        />
      )}
      {editing === 'sweep' && pickedPosition !== null && !research && (
        <SweepPicker
          key={`${active.sessionId}:${pickedPosition}`}
          run={active}
          position={pickedPosition}
          group={group}
          onClose={() => setEditing(null)}
        />
      )}
      {research ? (
        <div className="results__body results__body--research">
          {s.kind === 'intervene' ? (
            active.interventions.length > 0 ? (
              <InterventionView rows={active.interventions} />
            ) : (
              <p className="empty" data-testid="results-empty">
                {streaming ? 'Waiting for the first interventions…' : NO_ROWS[s.status]}
              </p>
            )
          ) : allRows.length > 0 ? (
            <SweepView rows={allRows} scale={scale} />
          ) : (
            <p className="empty" data-testid="results-empty">
              {streaming ? 'Waiting for the first layers…' : NO_ROWS[s.status]}
            </p>
          )}
        </div>
      ) : (
        <>
          <div className="results__toolbar">
            <div className="segmented" role="tablist" aria-label="Result view">
              {VIEWS.map(([v, label]) => (
                <button
                  key={v}
                  type="button"
                  role="tab"
                  aria-selected={view === v}
                  className={view === v ? 'on' : ''}
                  onClick={() => setView(v)}
                  data-testid={`view-${v}`}
                >
                  {label}
                </button>
              ))}
            </div>
            <label>
              Colour by
              <select
                value={metric}
                onChange={(e) => setMetric(e.target.value as MetricKey)}
                data-testid="metric-picker"
              >
                {METRICS.map((m) => (
                  <option key={m.key} value={m.key} title={m.description}>
                    {m.label}
                  </option>
                ))}
              </select>
            </label>
            <label
              className="toggle"
              title="Colours and the plot's y axis on a log scale (MSE and KL span decades)"
            >
              <input
                type="checkbox"
                checked={scale === 'log'}
                onChange={(e) => setScale(e.target.checked ? 'log' : 'linear')}
                data-testid="scale-log"
              />
              Log scale
            </label>
            <label className="results__filter">
              <span className="visually-hidden">Filter rows</span>
              <input
                type="search"
                placeholder="Filter tokens & explanations"
                value={query}
                onChange={(e) => setQuery(e.target.value)}
                data-testid="row-filter"
              />
              {query.trim() && (
                <span className="muted small" data-testid="filter-count">
                  {rows.length} of {allRows.length}
                </span>
              )}
            </label>
            {view === 'table' && (
              <>
                <label
                  className="toggle"
                  title="Mean, median, min and max of each metric column (of the rows shown)"
                >
                  <input
                    type="checkbox"
                    checked={showSummary}
                    onChange={(e) => setShowSummary(e.target.checked)}
                    data-testid="summary-toggle"
                  />
                  Summary
                </label>
                <details className="column-toggles">
                  <summary>Columns</summary>
                  <div className="column-toggles__menu">
                    {Object.entries(COLUMN_LABELS)
                      .filter(([id]) => optimised || !OPTIMISER_COLUMNS.has(id))
                      .map(([id, label]) => (
                        <label key={id} className="toggle">
                          <input
                            type="checkbox"
                            checked={visibility[id] !== false}
                            onChange={(e) => setColumns({ ...columns, [id]: e.target.checked })}
                            data-testid={`column-${id}`}
                          />
                          {label}
                        </label>
                      ))}
                  </div>
                </details>
              </>
            )}
            {allRows.length > 0 && (
              <div className="results__legends">
                <MetricLegend label={metricLabel} range={range} scale={scale} />
                {hasSalience && <SalienceLegend top={salienceTop} />}
              </div>
            )}
          </div>
          <div className="results__body">
            {allRows.length === 0 ? (
              <p className="empty" data-testid="results-empty">
                {streaming ? 'Waiting for the first rows…' : NO_ROWS[s.status]}
              </p>
            ) : rows.length === 0 && view !== 'compare' ? (
              <p className="empty" data-testid="results-empty">
                No row matches “{query}”.
              </p>
            ) : view === 'table' ? (
              <ResultsTable
                rows={rows}
                totalRows={allRows.length}
                metric={metric}
                range={range}
                scale={scale}
                formats={formats}
                summaries={summaries}
                salienceTop={salienceTop}
                columnVisibility={visibility}
                focus={focus?.sessionId === active.sessionId ? focus : null}
                onRowPick={(position) => {
                  setPicked({ sessionId: active.sessionId, position })
                  setEditing(null)
                }}
              />
            ) : view === 'transposed' ? (
              <TransposedView
                rows={rows}
                metric={metric}
                range={range}
                scale={scale}
                salienceTop={salienceTop}
              />
            ) : view === 'text' ? (
              <FullTextView
                rows={rows}
                metric={metric}
                range={range}
                scale={scale}
                salienceTop={salienceTop}
                onPick={pick}
              />
            ) : view === 'plot' ? (
              <MetricPlot
                rows={rows}
                metric={metric}
                range={range}
                label={metricLabel}
                scale={scale}
                onPick={pick}
              />
            ) : compare && compare.sessionId !== active.sessionId ? (
              <CompareView
                left={allRows}
                right={compare.rows}
                leftName={s.name}
                rightName={compare.summary.name}
                metric={metric}
                salienceTop={salienceTop}
                onClose={() => {
                  useAppStore.setState((st) => ({
                    runs: { ...st.runs, compareId: null },
                    ui: { ...st.ui, resultsView: 'table' }
                  }))
                  announce('Comparison closed')
                }}
              />
            ) : (
              <p className="empty" data-testid="compare-hint">
                Press “Compare” on a second run in the history to see it next to this one, aligned
                by position.
              </p>
            )}
          </div>
        </>
      )}
    </section>
  )
}
