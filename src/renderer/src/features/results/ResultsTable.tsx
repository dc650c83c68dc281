import {
  flexRender,
  getSortedRowModel,
  useReactTable,
  type ColumnDef,
  type SortingState,
  type VisibilityState
} from '@tanstack/react-table'
import { useVirtualizer } from '@tanstack/react-virtual'
import { memo, useRef, useState, type JSX, type ReactNode } from 'react'
import type { AnalysisRow } from '@shared/domain/analysis'
import { metricColor, normalize, readableText, rgbCss, type ClippedRange } from '../../lib/colorScale'
import { displayToken, formatMetric, metricValue, type MetricKey } from '../../lib/metrics'
import { reusingCoreRowModel } from '../../lib/rowModel'
import { Explanation } from './Explanation'

export const COLUMN_LABELS: Record<string, string> = {
  position: 'Position',
  token: 'Token',
  explanation: 'Explanation',
  mse: 'MSE',
  relativeRmse: 'Relative RMSE',
  klDivergence: 'KL',
  logitLensTop: 'Logit lens'
}

const ROW_HEIGHT = 30

const METRIC_COLUMNS: ReadonlySet<string> = new Set<MetricKey>(['mse', 'relativeRmse', 'klDivergence'])

/**
 * Defined once, with no cell renderers: TanStack renders a cell function as a component, so
 * columns rebuilt whenever the colour range moves (every streamed batch) gave every visible cell a
 * new component type, and React remounted them all. Cells are drawn by `ResultRow` instead.
 */
const COLUMNS: ColumnDef<AnalysisRow>[] = [
  { accessorKey: 'position', header: COLUMN_LABELS.position, size: 70 },
  { accessorKey: 'token', header: COLUMN_LABELS.token, size: 110 },
  { accessorKey: 'explanation', header: COLUMN_LABELS.explanation, size: 360, enableSorting: false },
  { accessorKey: 'mse', header: COLUMN_LABELS.mse, size: 100 },
  { accessorKey: 'relativeRmse', header: COLUMN_LABELS.relativeRmse, size: 110 },
  {
    id: 'klDivergence',
    accessorFn: (r) => r.klDivergence ?? Number.NaN,
    header: COLUMN_LABELS.klDivergence,
    size: 100
  },
  {
    id: 'logitLensTop',
    accessorFn: (r) => r.logitLensTop ?? '',
    header: COLUMN_LABELS.logitLensTop,
    size: 200
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
  salienceTop: number
}

function cellContent(columnId: string, props: RowProps): ReactNode {
  const { row, metric, range, salienceTop } = props
  if (METRIC_COLUMNS.has(columnId)) {
    const key = columnId as MetricKey
    const v = metricValue(row, key)
    const c = key === metric ? metricColor(normalize(v, range)) : null
    return (
      <span className="metric" style={c ? { background: rgbCss(c, 0.85), color: readableText(c) } : undefined}>
        {formatMetric(v)}
      </span>
    )
  }
  switch (columnId) {
    case 'position':
      return String(row.position)
    case 'token':
      return <span className="token">{displayToken(row.token)}</span>
    case 'explanation':
      return <Explanation row={row} salienceTop={salienceTop} />
    case 'logitLensTop':
      return <span className="lens-top">{row.logitLensTop ?? '—'}</span>
    default:
      return null
  }
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
      className="rt-row"
      data-testid="result-row"
      data-position={props.row.position}
      style={{ gridTemplateColumns: props.template, transform: `translateY(${props.start}px)`, height: ROW_HEIGHT }}
    >
      {props.columnIds.split(',').map((id) => (
        <div key={id} role="cell" className={`rt-cell rt-cell--${id}`} data-column={id}>
          {cellContent(id, props)}
        </div>
      ))}
    </div>
  )
})

/**
 * The result table: sortable, columns toggled from outside, rows virtualised so thousands of
 * positions scroll smoothly, the chosen metric's cells coloured on a clipped scale.
 */
export const ResultsTable = memo(function ResultsTable({
  rows,
  metric,
  range,
  salienceTop,
  columnVisibility
}: {
  rows: AnalysisRow[]
  metric: MetricKey
  range: ClippedRange
  salienceTop: number
  columnVisibility: VisibilityState
}): JSX.Element {
  const [sorting, setSorting] = useState<SortingState>([])

  const table = useReactTable({
    data: rows,
    columns: COLUMNS,
    state: { sorting, columnVisibility },
    onSortingChange: setSorting,
    getCoreRowModel: reusingCoreRowModel(),
    getSortedRowModel: getSortedRowModel()
  })
  const tableRows = table.getRowModel().rows
  const scroller = useRef<HTMLDivElement>(null)
  const virtualizer = useVirtualizer({
    count: tableRows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12
  })
  const visible = table.getVisibleLeafColumns()
  const columnIds = visible.map((c) => c.id).join(',')
  const template = visible
    .map((c) => (c.id === 'explanation' ? `minmax(${c.getSize()}px, 1fr)` : `${c.getSize()}px`))
    .join(' ')

  return (
    <div className="results-table" role="table" aria-rowcount={tableRows.length + 1} data-testid="results-table" data-row-count={rows.length}>
      <div className="results-table__head" role="rowgroup">
        {table.getHeaderGroups().map((hg) => (
          <div key={hg.id} className="rt-row rt-row--head" role="row" style={{ gridTemplateColumns: template }}>
            {hg.headers.map((h) => {
              const sorted = h.column.getIsSorted()
              return (
                <div
                  key={h.id}
                  role="columnheader"
                  aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none'}
                  className="rt-cell rt-cell--head"
                >
                  {h.column.getCanSort() ? (
                    <button type="button" className="link" onClick={h.column.getToggleSortingHandler()} data-testid={`sort-${h.column.id}`}>
                      {flexRender(h.column.columnDef.header, h.getContext())}
                      {sorted === 'asc' ? ' ▲' : sorted === 'desc' ? ' ▼' : ''}
                    </button>
                  ) : (
                    flexRender(h.column.columnDef.header, h.getContext())
                  )}
                </div>
              )
            })}
          </div>
        ))}
      </div>
      <div className="results-table__body" ref={scroller} data-testid="results-scroller">
        <div role="rowgroup" style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {virtualizer.getVirtualItems().map((item) => {
            const row = tableRows[item.index]
            return (
              <ResultRow
                key={row.id}
                row={row.original}
                columnIds={columnIds}
                template={template}
                start={item.start}
                metric={metric}
                range={range}
                salienceTop={salienceTop}
              />
            )
          })}
        </div>
      </div>
    </div>
  )
})
