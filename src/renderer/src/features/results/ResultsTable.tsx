import {
  flexRender,
  getCoreRowModel,
  getSortedRowModel,
  useReactTable,
  type ColumnDef,
  type SortingState,
  type VisibilityState
} from '@tanstack/react-table'
import { useVirtualizer } from '@tanstack/react-virtual'
import { useMemo, useRef, useState, type JSX } from 'react'
import type { AnalysisRow } from '@shared/domain/analysis'
import { metricColor, normalize, readableText, rgbCss, type ClippedRange } from '../../lib/colorScale'
import { displayToken, formatMetric, metricValue, type MetricKey } from '../../lib/metrics'
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

/**
 * The result table: sortable, columns toggled from outside, rows virtualised so thousands of
 * positions scroll smoothly, the chosen metric's cells coloured on a clipped scale.
 */
export function ResultsTable({
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
  const columns = useMemo<ColumnDef<AnalysisRow>[]>(() => {
    const metricCell = (key: MetricKey) =>
      function MetricCell({ row }: { row: { original: AnalysisRow } }): JSX.Element {
        const v = metricValue(row.original, key)
        const c = key === metric ? metricColor(normalize(v, range)) : null
        return (
          <span className="metric" style={c ? { background: rgbCss(c, 0.85), color: readableText(c) } : undefined}>
            {formatMetric(v)}
          </span>
        )
      }
    return [
      { accessorKey: 'position', header: COLUMN_LABELS.position, size: 70 },
      {
        accessorKey: 'token',
        header: COLUMN_LABELS.token,
        size: 110,
        cell: ({ row }) => <span className="token">{displayToken(row.original.token)}</span>
      },
      {
        accessorKey: 'explanation',
        header: COLUMN_LABELS.explanation,
        size: 360,
        enableSorting: false,
        cell: ({ row }) => <Explanation row={row.original} salienceTop={salienceTop} />
      },
      { accessorKey: 'mse', header: COLUMN_LABELS.mse, size: 100, cell: metricCell('mse') },
      { accessorKey: 'relativeRmse', header: COLUMN_LABELS.relativeRmse, size: 110, cell: metricCell('relativeRmse') },
      {
        id: 'klDivergence',
        accessorFn: (r) => r.klDivergence ?? Number.NaN,
        header: COLUMN_LABELS.klDivergence,
        size: 100,
        cell: metricCell('klDivergence')
      },
      {
        id: 'logitLensTop',
        accessorFn: (r) => r.logitLensTop ?? '',
        header: COLUMN_LABELS.logitLensTop,
        size: 200,
        cell: ({ row }) => <span className="lens-top">{row.original.logitLensTop ?? '—'}</span>
      }
    ]
  }, [metric, range, salienceTop])

  // eslint-disable-next-line react-hooks/incompatible-library -- no React Compiler in this build; used as TanStack documents
  const table = useReactTable({
    data: rows,
    columns,
    state: { sorting, columnVisibility },
    onSortingChange: setSorting,
    getCoreRowModel: getCoreRowModel(),
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
  const template = table
    .getVisibleLeafColumns()
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
              <div
                key={row.id}
                role="row"
                className="rt-row"
                data-testid="result-row"
                data-position={row.original.position}
                style={{ gridTemplateColumns: template, transform: `translateY(${item.start}px)`, height: ROW_HEIGHT }}
              >
                {row.getVisibleCells().map((cell) => (
                  <div key={cell.id} role="cell" className={`rt-cell rt-cell--${cell.column.id}`} data-column={cell.column.id}>
                    {flexRender(cell.column.columnDef.cell, cell.getContext())}
                  </div>
                ))}
              </div>
            )
          })}
        </div>
      </div>
    </div>
  )
}
