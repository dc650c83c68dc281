import { useVirtualizer } from '@tanstack/react-virtual'
import { useMemo, useRef, useState, type JSX } from 'react'
import type { AnalysisRow } from '@shared/domain/analysis'
import { alignByPosition } from '../../lib/compare'
import {
  metricColor,
  normalize,
  readableText,
  rgbCss,
  salienceColor,
  type ClippedRange
} from '../../lib/colorScale'
import {
  displayToken,
  formatMetric,
  metricValue,
  METRICS,
  unknownWordHint,
  type MetricKey
} from '../../lib/metrics'
import { columnFormat } from '../../lib/numberFormat'
import type { AxisScale } from '../../lib/stats'
import { Explanation } from './Explanation'

/** One column per token, explanation words stacked under it; virtualised horizontally. */
export function TransposedView({
  rows,
  metric,
  range,
  scale,
  salienceTop
}: {
  rows: AnalysisRow[]
  metric: MetricKey
  range: ClippedRange
  scale: AxisScale
  salienceTop: number
}): JSX.Element {
  const scroller = useRef<HTMLDivElement>(null)
  // eslint-disable-next-line react-hooks/incompatible-library -- no React Compiler in this build; used as TanStack documents
  const v = useVirtualizer({
    horizontal: true,
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 96,
    overscan: 8
  })
  return (
    <div className="transposed" ref={scroller} data-testid="transposed-view">
      <div style={{ width: v.getTotalSize(), position: 'relative', height: '100%' }}>
        {v.getVirtualItems().map((item) => {
          const row = rows[item.index]
          if (!row) return null
          const c = metricColor(normalize(metricValue(row, metric), range, scale))
          return (
            <div
              key={item.key}
              className="transposed__col"
              style={{ transform: `translateX(${item.start}px)` }}
              data-position={row.position}
            >
              <div
                className="transposed__token"
                style={{ background: rgbCss(c, 0.85), color: readableText(c) }}
                title={[
                  `${metric} ${formatMetric(metricValue(row, metric))}`,
                  row.mseBefore === undefined
                    ? null
                    : `MSE ${formatMetric(row.mse)}, before optimising ${formatMetric(row.mseBefore)}`,
                  unknownWordHint(row)
                ]
                  .filter(Boolean)
                  .join('; ')}
              >
                {displayToken(row.token)}
              </div>
              {row.explanationStructured.map((w, i) => {
                const s = row.tokenSalience[i]
                const sc = s === undefined ? null : salienceColor(s, salienceTop)
                return (
                  <div
                    key={i}
                    className="transposed__word"
                    style={sc ? { background: rgbCss(sc), color: readableText(sc) } : undefined}
                  >
                    {w}
                  </div>
                )
              })}
            </div>
          )
        })}
      </div>
    </div>
  )
}

/**
 * The text as it reads, each token a box underlined in its metric colour, wrapping like prose;
 * hovering (or focusing) one shows its explanation, clicking it (or Enter) opens its row in the table.
 */
export function FullTextView({
  rows,
  metric,
  range,
  scale,
  salienceTop,
  onPick
}: {
  rows: AnalysisRow[]
  metric: MetricKey
  range: ClippedRange
  scale: AxisScale
  salienceTop: number
  onPick(position: number): void
}): JSX.Element {
  const [hovered, setHovered] = useState<number | null>(null)
  const row = hovered === null ? null : rows[hovered]
  return (
    <div className="fulltext" data-testid="fulltext-view">
      <p className="fulltext__tokens">
        {rows.map((r, i) => {
          const c = metricColor(normalize(metricValue(r, metric), range, scale))
          return (
            <span
              key={r.position}
              tabIndex={0}
              role="button"
              className="fulltext__token"
              style={{ borderBottomColor: rgbCss(c) }}
              onMouseEnter={() => setHovered(i)}
              onFocus={() => setHovered(i)}
              onClick={() => onPick(r.position)}
              onKeyDown={(e) => {
                if (e.key === 'Enter') onPick(r.position)
              }}
              data-testid="fulltext-token"
              data-position={r.position}
              title={unknownWordHint(r) ?? undefined}
            >
              {displayToken(r.token)}
            </span>
          )
        })}
      </p>
      {row && (
        <div className="hover-card" role="tooltip" data-testid="hover-card">
          <div>
            <strong>{displayToken(row.token)}</strong>{' '}
            {row.sourceText !== undefined && <span className="token__typed">{row.sourceText}</span>}{' '}
            <span className="muted">@{row.position}</span>
          </div>
          <Explanation row={row} salienceTop={salienceTop} />
          <div className="muted small">
            MSE {formatMetric(row.mse)} · rel. RMSE {formatMetric(row.relativeRmse)} · KL{' '}
            {formatMetric(row.klDivergence)}
          </div>
          {row.logitLensTop && <div className="muted small">logit lens: {row.logitLensTop}</div>}
        </div>
      )}
    </div>
  )
}

/** Two runs aligned by position: explanation and metric of each, the better value marked. */
export function CompareView({
  left,
  right,
  leftName,
  rightName,
  metric,
  salienceTop,
  onClose
}: {
  left: AnalysisRow[]
  right: AnalysisRow[]
  leftName: string
  rightName: string
  metric: MetricKey
  salienceTop: number
  onClose(): void
}): JSX.Element {
  const aligned = useMemo(() => alignByPosition(left, right), [left, right])
  const format = useMemo(
    () =>
      columnFormat([
        ...left.map((r) => metricValue(r, metric)),
        ...right.map((r) => metricValue(r, metric))
      ]),
    [left, right, metric]
  )
  const metricLabel = METRICS.find((m) => m.key === metric)?.label ?? metric
  const scroller = useRef<HTMLDivElement>(null)
  // eslint-disable-next-line react-hooks/incompatible-library -- no React Compiler in this build; used as TanStack documents
  const v = useVirtualizer({
    count: aligned.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 30,
    overscan: 10
  })
  return (
    <div className="compare" data-testid="compare-view">
      <div className="compare__row compare__row--runs">
        <span />
        <span />
        <span className="compare__run" title={leftName} data-testid="compare-left-name">
          <span className="compare__side">A</span> {leftName}
        </span>
        <span className="compare__run" title={rightName} data-testid="compare-right-name">
          <span className="compare__side">B</span> {rightName}
        </span>
        <button
          type="button"
          className="link compare__close"
          onClick={onClose}
          data-testid="compare-close"
          aria-label="Stop comparing"
        >
          ×
        </button>
      </div>
      <div className="compare__row compare__row--head" role="row">
        <span role="columnheader">Pos</span>
        <span role="columnheader">Token</span>
        <span role="columnheader">Explanation A</span>
        <span role="columnheader" className="num" title={`${metricLabel} of run A`}>
          {metricLabel} A
        </span>
        <span role="columnheader">Explanation B</span>
        <span role="columnheader" className="num" title={`${metricLabel} of run B`}>
          {metricLabel} B
        </span>
      </div>
      <div className="compare__body" ref={scroller}>
        <div style={{ height: v.getTotalSize(), position: 'relative' }}>
          {v.getVirtualItems().map((item) => {
            const a = aligned[item.index]!
            const l = a.left ? metricValue(a.left, metric) : Number.NaN
            const r = a.right ? metricValue(a.right, metric) : Number.NaN
            return (
              <div
                key={item.key}
                className={`compare__row${a.tokenMismatch ? ' compare__row--mismatch' : ''}`}
                style={{ transform: `translateY(${item.start}px)` }}
                data-testid="compare-row"
              >
                <span className="muted num">{a.position}</span>
                <span className="token">{displayToken((a.left ?? a.right)?.token ?? '')}</span>
                <span>{a.left ? <Explanation row={a.left} salienceTop={salienceTop} /> : '—'}</span>
                <span
                  className={`num${Number.isFinite(l) && Number.isFinite(r) && l < r ? ' better' : ''}`}
                >
                  {format.format(l)}
                </span>
                <span>
                  {a.right ? <Explanation row={a.right} salienceTop={salienceTop} /> : '—'}
                </span>
                <span
                  className={`num${Number.isFinite(l) && Number.isFinite(r) && r < l ? ' better' : ''}`}
                >
                  {format.format(r)}
                </span>
              </div>
            )
          })}
        </div>
      </div>
    </div>
  )
}
