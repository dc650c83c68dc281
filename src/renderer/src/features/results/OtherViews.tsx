import { useVirtualizer } from '@tanstack/react-virtual'
import { useMemo, useRef, useState, type JSX } from 'react'
import type { AnalysisRow } from '@shared/domain/analysis'
import { alignByPosition } from '../../lib/compare'
import { metricColor, normalize, readableText, rgbCss, salienceColor, type ClippedRange } from '../../lib/colorScale'
import { displayToken, formatMetric, metricValue, type MetricKey } from '../../lib/metrics'
import { Explanation } from './Explanation'

/** One column per token, explanation words stacked under it; virtualised horizontally. */
export function TransposedView({ rows, metric, range, salienceTop }: { rows: AnalysisRow[]; metric: MetricKey; range: ClippedRange; salienceTop: number }): JSX.Element {
  const scroller = useRef<HTMLDivElement>(null)
  // eslint-disable-next-line react-hooks/incompatible-library -- no React Compiler in this build; used as TanStack documents
  const v = useVirtualizer({ horizontal: true, count: rows.length, getScrollElement: () => scroller.current, estimateSize: () => 96, overscan: 8 })
  return (
    <div className="transposed" ref={scroller} data-testid="transposed-view">
      <div style={{ width: v.getTotalSize(), position: 'relative', height: '100%' }}>
        {v.getVirtualItems().map((item) => {
          const row = rows[item.index]
          const c = metricColor(normalize(metricValue(row, metric), range))
          return (
            <div key={item.key} className="transposed__col" style={{ transform: `translateX(${item.start}px)` }} data-position={row.position}>
              <div className="transposed__token" style={{ background: rgbCss(c, 0.85), color: readableText(c) }} title={`${metric} ${formatMetric(metricValue(row, metric))}`}>
                {displayToken(row.token)}
              </div>
              {row.explanationStructured.map((w, i) => {
                const s = row.tokenSalience[i]
                const sc = s === undefined ? null : salienceColor(s, salienceTop)
                return (
                  <div key={i} className="transposed__word" style={sc ? { background: rgbCss(sc), color: readableText(sc) } : undefined}>
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

/** The text as it reads, each token a box; hovering (or focusing) one shows its explanation. */
export function FullTextView({ rows, metric, range, salienceTop }: { rows: AnalysisRow[]; metric: MetricKey; range: ClippedRange; salienceTop: number }): JSX.Element {
  const [hovered, setHovered] = useState<number | null>(null)
  const row = hovered === null ? null : rows[hovered]
  return (
    <div className="fulltext" data-testid="fulltext-view">
      <p className="fulltext__tokens">
        {rows.map((r, i) => {
          const c = metricColor(normalize(metricValue(r, metric), range))
          return (
            <span
              key={r.position}
              tabIndex={0}
              className="fulltext__token"
              style={{ borderBottomColor: rgbCss(c) }}
              onMouseEnter={() => setHovered(i)}
              onFocus={() => setHovered(i)}
              data-testid="fulltext-token"
            >
              {displayToken(r.token)}
            </span>
          )
        })}
      </p>
      {row && (
        <div className="hover-card" role="tooltip" data-testid="hover-card">
          <div>
            <strong>{displayToken(row.token)}</strong> <span className="muted">@{row.position}</span>
          </div>
          <Explanation row={row} salienceTop={salienceTop} />
          <div className="muted small">
            MSE {formatMetric(row.mse)} · rel. RMSE {formatMetric(row.relativeRmse)} · KL {formatMetric(row.klDivergence)}
          </div>
          {row.logitLensTop && <div className="muted small">logit lens: {row.logitLensTop}</div>}
        </div>
      )}
    </div>
  )
}

/** The chosen metric per position as an SVG line, clipped range shaded. */
export function MetricPlot({ rows, metric, range, label }: { rows: AnalysisRow[]; metric: MetricKey; range: ClippedRange; label: string }): JSX.Element {
  const width = 900
  const height = 200
  const pad = 32
  const values = rows.map((r) => metricValue(r, metric))
  const finite = values.filter(Number.isFinite)
  const max = finite.length ? Math.max(...finite) : 1
  const min = finite.length ? Math.min(0, ...finite) : 0
  const span = max - min || 1
  const lastPos = rows.length ? rows[rows.length - 1].position : 1
  const firstPos = rows.length ? rows[0].position : 0
  const x = (p: number): number => pad + ((p - firstPos) / Math.max(1, lastPos - firstPos)) * (width - 2 * pad)
  const y = (v: number): number => height - pad - ((v - min) / span) * (height - 2 * pad)
  const path = rows
    .map((r, i) => (Number.isFinite(values[i]) ? `${x(r.position).toFixed(1)},${y(values[i]).toFixed(1)}` : null))
    .filter(Boolean)
    .join(' ')
  return (
    <svg className="plot" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${label} per position`} data-testid="metric-plot">
      <rect x={pad} y={y(Math.min(range.max, max))} width={width - 2 * pad} height={Math.max(0, y(Math.max(range.min, min)) - y(Math.min(range.max, max)))} className="plot__band" />
      <line x1={pad} y1={height - pad} x2={width - pad} y2={height - pad} className="plot__axis" />
      <line x1={pad} y1={pad} x2={pad} y2={height - pad} className="plot__axis" />
      <text x={pad} y={height - 8} className="plot__label">{firstPos}</text>
      <text x={width - pad} y={height - 8} className="plot__label" textAnchor="end">{lastPos}</text>
      <text x={4} y={pad} className="plot__label">{formatMetric(max)}</text>
      <text x={width / 2} y={height - 8} className="plot__label" textAnchor="middle">position · {label}</text>
      <polyline points={path} className="plot__line" />
      {rows.length < 400 &&
        rows.map((r, i) =>
          Number.isFinite(values[i]) ? (
            <circle key={r.position} cx={x(r.position)} cy={y(values[i])} r={2.5} className="plot__dot">
              <title>{`${r.position} ${r.token}: ${formatMetric(values[i])}`}</title>
            </circle>
          ) : null
        )}
    </svg>
  )
}

/** Two runs aligned by position: explanation and metric of each, difference highlighted. */
export function CompareView({ left, right, leftName, rightName, metric, salienceTop }: { left: AnalysisRow[]; right: AnalysisRow[]; leftName: string; rightName: string; metric: MetricKey; salienceTop: number }): JSX.Element {
  const aligned = useMemo(() => alignByPosition(left, right), [left, right])
  const scroller = useRef<HTMLDivElement>(null)
  // eslint-disable-next-line react-hooks/incompatible-library -- no React Compiler in this build; used as TanStack documents
  const v = useVirtualizer({ count: aligned.length, getScrollElement: () => scroller.current, estimateSize: () => 30, overscan: 10 })
  return (
    <div className="compare" data-testid="compare-view">
      <div className="compare__row compare__row--head">
        <span>Pos</span>
        <span>Token</span>
        <span>{leftName}</span>
        <span>{metric}</span>
        <span>{rightName}</span>
        <span>{metric}</span>
      </div>
      <div className="compare__body" ref={scroller}>
        <div style={{ height: v.getTotalSize(), position: 'relative' }}>
          {v.getVirtualItems().map((item) => {
            const a = aligned[item.index]
            const l = a.left ? metricValue(a.left, metric) : Number.NaN
            const r = a.right ? metricValue(a.right, metric) : Number.NaN
            return (
              <div key={item.key} className={`compare__row${a.tokenMismatch ? ' compare__row--mismatch' : ''}`} style={{ transform: `translateY(${item.start}px)` }} data-testid="compare-row">
                <span className="muted">{a.position}</span>
                <span className="token">{displayToken((a.left ?? a.right)?.token ?? '')}</span>
                <span>{a.left ? <Explanation row={a.left} salienceTop={salienceTop} /> : '—'}</span>
                <span className={Number.isFinite(l) && Number.isFinite(r) && l < r ? 'better' : ''}>{formatMetric(l)}</span>
                <span>{a.right ? <Explanation row={a.right} salienceTop={salienceTop} /> : '—'}</span>
                <span className={Number.isFinite(l) && Number.isFinite(r) && r < l ? 'better' : ''}>{formatMetric(r)}</span>
              </div>
            )
          })}
        </div>
      </div>
    </div>
  )
}
