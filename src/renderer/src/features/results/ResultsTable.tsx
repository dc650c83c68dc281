import {
  flexRender,
  getSortedRowModel,
  useReactTable,
  type ColumnDef,
  type ColumnSizingState,
  type SortingState,
  type VisibilityState
} from '@tanstack/react-table'
import { useVirtualizer } from '@tanstack/react-virtual'
import { memo, useEffect, useRef, useState, type JSX, type ReactNode } from 'react'
import type { AnalysisRow } from '@shared/domain/analysis'
import {
  metricColor,
  normalize,
  readableText,
  rgbCss,
  type ClippedRange
} from '../../lib/colorScale'
import { displayToken, metricValue, unknownWordHint, type MetricKey } from '../../lib/metrics'
import type { ColumnFormat } from '../../lib/numberFormat'
import { reusingCoreRowModel } from '../../lib/rowModel'
import type { AxisScale, ColumnSummary } from '../../lib/stats'
import { Explanation } from './Explanation'

/** Column labels as the Columns menu names them; `HEADERS` are the (narrower) header texts. */
export const COLUMN_LABELS: Record<string, string> = {
  position: 'Position',
  token: 'Token',
  explanation: 'Explanation',
  mse: 'MSE',
  mseBefore: 'MSE before',
  rollouts: 'Rollouts',
  relativeRmse: 'Relative RMSE',
  klDivergence: 'KL',
  logitLensTop: 'Logit lens'
}

const HEADERS: Record<string, { text: string; title: string }> = {
  position: { text: 'Pos', title: 'Token position' },
  token: { text: 'Token', title: 'The token at this position' },
  explanation: {
    text: 'Explanation',
    title: 'The lens’s explanation, each word on its salience colour'
  },
  mse: { text: 'MSE', title: 'MSE: reconstruction error of the activation' },
  mseBefore: {
    text: 'MSE before',
    title: 'MSE of the starting explanation (the best of the first samples), before the optimiser'
  },
  rollouts: { text: 'Rollouts', title: 'Decoder rollouts the optimiser spent on this row' },
  relativeRmse: { text: 'Rel. RMSE', title: 'Relative RMSE: RMSE over the activation norm' },
  klDivergence: {
    text: 'KL',
    title: 'KL(original ‖ reconstructed) of the next-token distribution, nats'
  },
  logitLensTop: { text: 'Logit lens', title: 'Top tokens of the unembedded residual' }
}

export type MetricFormats = Record<MetricKey, ColumnFormat>
export type MetricSummaries = Record<MetricKey, ColumnSummary> & { mseBefore?: ColumnSummary }

const ROW_HEIGHT = 30
const HEAD_HEIGHT = 32

const METRIC_COLUMNS: ReadonlySet<string> = new Set<MetricKey>([
  'mse',
  'relativeRmse',
  'klDivergence'
])
/**
 * Columns only an optimised run's rows fill: the starting candidate's MSE (in the MSE column's
 * format, and summarised like it) and the rollouts spent.
 */
export const OPTIMISER_COLUMNS: ReadonlySet<string> = new Set(['mseBefore', 'rollouts'])
const NUMBER_COLUMNS: ReadonlySet<string> = new Set([
  ...METRIC_COLUMNS,
  ...OPTIMISER_COLUMNS,
  'position'
])
const SUMMARY_ROWS = ['mean', 'median', 'min', 'max'] as const

/**
 * Defined once, with no cell renderers: TanStack renders a cell function as a component, so
 * columns rebuilt whenever the colour range moves (every streamed batch) gave every visible cell a
 * new component type, and React remounted them all. Cells are drawn by `ResultRow` instead.
 */
const COLUMNS: ColumnDef<AnalysisRow>[] = [
  { accessorKey: 'position', header: HEADERS.position!.text, size: 60, minSize: 48 },
  { accessorKey: 'token', header: HEADERS.token!.text, size: 120, minSize: 60 },
  {
    accessorKey: 'explanation',
    header: HEADERS.explanation!.text,
    size: 320,
    minSize: 120,
    enableSorting: false
  },
  { accessorKey: 'mse', header: HEADERS.mse!.text, size: 104, minSize: 72, sortDescFirst: true },
  {
    id: 'mseBefore',
    accessorFn: (r) => r.mseBefore ?? Number.NaN,
    header: HEADERS.mseBefore!.text,
    size: 104,
    minSize: 72,
    sortDescFirst: true
  },
  {
    id: 'rollouts',
    accessorFn: (r) => r.rollouts ?? Number.NaN,
    header: HEADERS.rollouts!.text,
    size: 84,
    minSize: 64,
    sortDescFirst: true
  },
  {
    accessorKey: 'relativeRmse',
    header: HEADERS.relativeRmse!.text,
    size: 112,
    minSize: 88,
    sortDescFirst: true
  },
  {
    id: 'klDivergence',
    accessorFn: (r) => r.klDivergence ?? Number.NaN,
    header: HEADERS.klDivergence!.text,
    size: 104,
    minSize: 72,
    sortDescFirst: true
  },
  {
    id: 'logitLensTop',
    accessorFn: (r) => r.logitLensTop ?? '',
    header: HEADERS.logitLensTop!.text,
    size: 220,
    minSize: 100
  }
]

interface RowProps {
  row: AnalysisRow
  /** Visible column ids, comma-joined (a string, so an unchanged set compares equal). */
  columnIds: string
  template: string
  start: number
  metric: MetricKey
  range: ClippedRange
  scale: AxisScale
  formats: MetricFormats
  salienceTop: number
  focused: boolean
}

function cellContent(columnId: string, props: RowProps): ReactNode {
  const { row, metric, range, salienceTop, formats, scale } = props
  if (METRIC_COLUMNS.has(columnId)) {
    const key = columnId as MetricKey
    const v = metricValue(row, key)
    const c = key === metric ? metricColor(normalize(v, range, scale)) : null
    return (
      <span
        className="metric"
        style={c ? { background: rgbCss(c), color: readableText(c) } : undefined}
      >
        {formats[key].format(v)}
      </span>
    )
  }
  switch (columnId) {
    case 'mseBefore':
      return <span className="metric">{formats.mse.format(row.mseBefore ?? null)}</span>
    case 'rollouts':
      return row.rollouts === undefined ? '—' : String(row.rollouts)
    case 'position':
      return String(row.position)
    case 'token':
      return (
        <>
          <span
            className="token"
            title={unknownWordHint(row) ?? `token id ${row.tokenId ?? 'not recorded'}`}
          >
            {displayToken(row.token)}
          </span>
          {row.sourceText !== undefined && (
            <span className="token__typed" data-testid="token-typed">
              {row.sourceText}
            </span>
          )}
        </>
      )
    case 'explanation':
      return <Explanation row={row} salienceTop={salienceTop} />
    case 'logitLensTop':
      return <span className="lens-top">{row.logitLensTop ?? '—'}</span>
    default:
      return null
  }
}

function cellClass(id: string): string {
  return `rt-cell rt-cell--${id}${NUMBER_COLUMNS.has(id) ? ' rt-cell--num' : ''}`
}

/**
 * One body row. Memoised on the analysis row itself (not TanStack's row wrapper, which is rebuilt
 * whenever data changes), so scrolling renders only the rows that come into view and a streamed
 * batch re-renders visible rows only when their colours can have changed.
 */
const ResultRow = memo(function ResultRow(props: RowProps): JSX.Element {
  return (
    <div
      role="row"
      className={`rt-row${props.focused ? ' rt-row--focused' : ''}`}
      data-testid="result-row"
      data-position={props.row.position}
      data-focused={props.focused || undefined}
      style={{
        gridTemplateColumns: props.template,
        transform: `translateY(${props.start}px)`,
        height: ROW_HEIGHT
      }}
    >
      {props.columnIds.split(',').map((id) => (
        <div key={id} role="cell" className={cellClass(id)} data-column={id}>
          {cellContent(id, props)}
        </div>
      ))}
    </div>
  )
})

/** Summary rows under the body: one statistic per row, each metric column's value under it. */
function SummaryRows({
  columnIds,
  template,
  summaries,
  formats,
  shown,
  total
}: {
  columnIds: string[]
  template: string
  summaries: MetricSummaries
  formats: MetricFormats
  shown: number
  total: number
}): JSX.Element {
  return (
    <div className="rt-foot" role="rowgroup" data-testid="column-summary">
      {SUMMARY_ROWS.map((stat, i) => (
        <div
          key={stat}
          role="row"
          className="rt-row rt-row--foot"
          style={{ gridTemplateColumns: template }}
          data-stat={stat}
        >
          {columnIds.map((id) => (
            <div key={id} role="cell" className={cellClass(id)} data-column={id}>
              {METRIC_COLUMNS.has(id)
                ? formats[id as MetricKey].format(summaries[id as MetricKey][stat])
                : id === 'mseBefore' && summaries.mseBefore
                  ? formats.mse.format(summaries.mseBefore[stat])
                  : id === 'token'
                    ? stat
                    : id === 'explanation' && i === 0
                      ? `${shown === total ? `${total}` : `${shown} of ${total}`} rows`
                      : ''}
            </div>
          ))}
        </div>
      ))}
    </div>
  )
}

/**
 * The result table: sortable and resizable columns, header and body in one scroller (they stay
 * aligned when it scrolls sideways), rows virtualised so thousands of positions scroll smoothly,
 * numbers right-aligned in one format per column, the chosen metric's cells coloured on a clipped
 * scale, an optional summary footer.
 */
export const ResultsTable = memo(function ResultsTable({
  rows,
  totalRows,
  metric,
  range,
  scale,
  formats,
  summaries,
  salienceTop,
  columnVisibility,
  focus,
  onRowPick
}: {
  rows: AnalysisRow[]
  /** Rows of the result before filtering (for the summary's "N of M"). */
  totalRows: number
  metric: MetricKey
  range: ClippedRange
  scale: AxisScale
  formats: MetricFormats
  summaries: MetricSummaries | null
  salienceTop: number
  columnVisibility: VisibilityState
  focus: { position: number; seq: number } | null
  /** A click on a row picks it (marked, and offered to the research actions). */
  onRowPick?(position: number): void
}): JSX.Element {
  const [sorting, setSorting] = useState<SortingState>([])
  const [columnSizing, setColumnSizing] = useState<ColumnSizingState>({})
  const [focused, setFocused] = useState<number | null>(null)

  // eslint-disable-next-line react-hooks/incompatible-library -- no React Compiler in this build; used as TanStack documents
  const table = useReactTable({
    data: rows,
    columns: COLUMNS,
    state: { sorting, columnVisibility, columnSizing },
    onSortingChange: setSorting,
    onColumnSizingChange: setColumnSizing,
    enableColumnResizing: true,
    columnResizeMode: 'onChange',
    getCoreRowModel: reusingCoreRowModel(),
    getSortedRowModel: getSortedRowModel()
  })
  const tableRows = table.getRowModel().rows
  const scroller = useRef<HTMLDivElement>(null)
  const virtualizer = useVirtualizer({
    count: tableRows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    // The sticky header sits above the rows inside the same scroller.
    scrollMargin: HEAD_HEIGHT
  })
  const visible = table.getVisibleLeafColumns()
  const columnIds = visible.map((c) => c.id)
  const template = visible
    .map((c) => (c.id === 'explanation' ? `minmax(${c.getSize()}px, 1fr)` : `${c.getSize()}px`))
    .join(' ')
  const minWidth = visible.reduce((sum, c) => sum + c.getSize(), 0)

  // A click in the plot or the text view: bring that position's row into the middle and mark it.
  const focusSeq = focus?.seq
  useEffect(() => {
    if (!focus) return
    const index = tableRows.findIndex((r) => r.original.position === focus.position)
    if (index < 0) return
    setFocused(focus.position)
    virtualizer.scrollToIndex(index, { align: 'center' })
    // Only a new jump moves the table; streamed rows must not pull it back.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [focusSeq])

  return (
    <div
      className="results-table"
      role="table"
      aria-rowcount={tableRows.length + 1}
      data-testid="results-table"
      data-row-count={totalRows}
      data-shown-rows={rows.length}
    >
      <div className="results-table__scroller" ref={scroller} data-testid="results-scroller">
        <div className="results-table__inner" style={{ minWidth }}>
          <div className="rt-head" role="rowgroup">
            {table.getHeaderGroups().map((hg) => (
              <div
                key={hg.id}
                className="rt-row rt-row--head"
                role="row"
                style={{ gridTemplateColumns: template, height: HEAD_HEIGHT }}
              >
                {hg.headers.map((h) => {
                  const sorted = h.column.getIsSorted()
                  const id = h.column.id
                  const label = flexRender(h.column.columnDef.header, h.getContext())
                  return (
                    <div
                      key={h.id}
                      role="columnheader"
                      aria-sort={
                        sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none'
                      }
                      className={`${cellClass(id)} rt-cell--head`}
                      title={HEADERS[id]?.title}
                      data-column={id}
                    >
                      {h.column.getCanSort() ? (
                        <button
                          type="button"
                          className="rt-sort"
                          onClick={h.column.getToggleSortingHandler()}
                          data-testid={`sort-${id}`}
                          aria-label={`${COLUMN_LABELS[id] ?? id}${sorted === 'asc' ? ' ▲' : sorted === 'desc' ? ' ▼' : ''}, sort`}
                        >
                          <span className="rt-sort__label">{label}</span>
                          <span className="rt-sort__mark" aria-hidden="true">
                            {sorted === 'asc' ? '▲' : sorted === 'desc' ? '▼' : ''}
                          </span>
                        </button>
                      ) : (
                        <span className="rt-sort__label">{label}</span>
                      )}
                      <div
                        className={`rt-resize${h.column.getIsResizing() ? ' rt-resize--active' : ''}`}
                        onMouseDown={h.getResizeHandler()}
                        onTouchStart={h.getResizeHandler()}
                        onDoubleClick={() => h.column.resetSize()}
                        role="separator"
                        aria-orientation="vertical"
                        aria-label={`Resize ${COLUMN_LABELS[id] ?? id}`}
                        data-testid={`resize-${id}`}
                      />
                    </div>
                  )
                })}
              </div>
            ))}
          </div>
          {/* One listener for every row (the memoised rows stay free of per-row handlers). */}
          <div
            role="rowgroup"
            className="rt-body"
            style={{ height: virtualizer.getTotalSize() }}
            onClick={(e) => {
              const el = (e.target as HTMLElement).closest('[data-position]')
              const position = el ? Number(el.getAttribute('data-position')) : Number.NaN
              if (!Number.isInteger(position)) return
              setFocused(position)
              onRowPick?.(position)
            }}
          >
            {virtualizer.getVirtualItems().map((item) => {
              const row = tableRows[item.index]
              if (!row) return null
              return (
                <ResultRow
                  key={row.id}
                  row={row.original}
                  columnIds={columnIds.join(',')}
                  template={template}
                  start={item.start - HEAD_HEIGHT}
                  metric={metric}
                  range={range}
                  scale={scale}
                  formats={formats}
                  salienceTop={salienceTop}
                  focused={focused === row.original.position}
                />
              )
            })}
          </div>
          {summaries && (
            <SummaryRows
              columnIds={columnIds}
              template={template}
              summaries={summaries}
              formats={formats}
              shown={rows.length}
              total={totalRows}
            />
          )}
        </div>
      </div>
    </div>
  )
})
