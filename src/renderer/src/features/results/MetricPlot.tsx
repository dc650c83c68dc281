import { bisector } from 'd3-array'
import { scaleLinear, scaleLog } from 'd3-scale'
import {
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  type JSX,
  type KeyboardEvent,
  type MouseEvent
} from 'react'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { ClippedRange } from '../../lib/colorScale'
import { displayToken, metricValue, type MetricKey } from '../../lib/metrics'
import { columnFormat, formatValue } from '../../lib/numberFormat'
import { plotDomain, type AxisScale } from '../../lib/stats'

const MARGIN = { top: 18, right: 20, bottom: 40, left: 68 }
const MIN_HEIGHT = 220
/** Above this many points the dots are left out (the line and the hover still show every row). */
const MAX_DOTS = 400

function useSize(): [React.RefObject<HTMLDivElement | null>, { width: number; height: number }] {
  const ref = useRef<HTMLDivElement>(null)
  const [size, setSize] = useState({ width: 900, height: 300 })
  useLayoutEffect(() => {
    const el = ref.current
    if (!el) return
    const read = (): void => {
      const r = el.getBoundingClientRect()
      setSize((s) =>
        Math.abs(s.width - r.width) < 1 && Math.abs(s.height - r.height) < 1
          ? s
          : { width: Math.max(320, r.width), height: Math.max(MIN_HEIGHT, r.height) }
      )
    }
    read()
    const observer = new ResizeObserver(read)
    observer.observe(el)
    return () => observer.disconnect()
  }, [])
  return [ref, size]
}

const byPosition = bisector((r: AnalysisRow) => r.position).center

/**
 * The chosen metric per position: axes with ticks and titles, linear or log, the colour scale's
 * 5th–95th percentile band shaded and labelled, outliers beyond the y range drawn as marks on its
 * edge (hover one for its value) instead of flattening the rest. Hover shows a row; a click (or
 * Enter) opens it in the table.
 */
export function MetricPlot({
  rows,
  metric,
  range,
  label,
  scale,
  onPick,
  xLabel = 'token position'
}: {
  rows: AnalysisRow[]
  metric: MetricKey
  range: ClippedRange
  label: string
  scale: AxisScale
  onPick(position: number): void
  /** What `position` stands for on the x axis (a layer sweep plots layers as positions). */
  xLabel?: string
}): JSX.Element {
  const [wrap, { width, height }] = useSize()
  const [hover, setHover] = useState<number | null>(null)
  const values = useMemo(() => rows.map((r) => metricValue(r, metric)), [rows, metric])
  const domain = useMemo(() => plotDomain(values, scale), [values, scale])

  const innerW = width - MARGIN.left - MARGIN.right
  const innerH = height - MARGIN.top - MARGIN.bottom
  const first = rows[0]?.position ?? 0
  const last = rows.at(-1)?.position ?? 1
  const x = scaleLinear()
    .domain([first, Math.max(last, first + 1)])
    .range([MARGIN.left, MARGIN.left + innerW])
  const y = (scale === 'log' ? scaleLog() : scaleLinear())
    .domain([domain.lo, domain.hi])
    .range([MARGIN.top + innerH, MARGIN.top])
  // No .nice(): rounding the top up would bring back the outliers the domain leaves out.
  const [yLo, yHi] = y.domain() as [number, number]
  const xTicks = x
    .ticks(Math.max(2, Math.min(12, Math.floor(innerW / 90))))
    .filter(Number.isInteger)
  const yTickCount = Math.max(2, Math.min(8, Math.floor(innerH / 40)))
  let yTicks = y.ticks(yTickCount)
  // A log axis over many decades lists every sub-decade tick: keep the decades then.
  if (scale === 'log' && yTicks.length > 10)
    yTicks = yTicks.filter((t) => Number.isInteger(Math.log10(t)))

  // One format for every tick label, like a table column ("0.0000", never "0.0" next to "0.0080").
  const tickFormat = columnFormat(yTicks, 2)
  const drawable = (v: number): boolean => Number.isFinite(v) && (scale === 'linear' || v > 0)
  const yOf = (v: number): number => y(Math.min(yHi, Math.max(yLo, v)))

  // The line, broken where a value cannot be drawn (KL off, zero on a log axis).
  let path = ''
  let pen = false
  const clipped: Array<{ row: AnalysisRow; value: number; above: boolean }> = []
  for (let i = 0; i < rows.length; i++) {
    const v = values[i]!
    if (!drawable(v)) {
      pen = false
      continue
    }
    path += `${pen ? 'L' : 'M'}${x(rows[i]!.position).toFixed(1)},${yOf(v).toFixed(1)}`
    pen = true
    if (v > yHi || v < yLo) clipped.push({ row: rows[i]!, value: v, above: v > yHi })
  }

  const bandTop = y(Math.min(yHi, Math.max(yLo, range.max)))
  const bandBottom = y(Math.min(yHi, Math.max(yLo, range.min)))
  const hovered = hover === null ? null : rows[hover]
  const hoveredValue = hover === null ? Number.NaN : values[hover]!

  const pickAt = (clientX: number, target: SVGSVGElement): number | null => {
    if (rows.length === 0) return null
    const box = target.getBoundingClientRect()
    const px = ((clientX - box.left) / box.width) * width
    return byPosition(rows, x.invert(px))
  }
  const onMove = (e: MouseEvent<SVGSVGElement>): void =>
    setHover(pickAt(e.clientX, e.currentTarget))
  const onClick = (e: MouseEvent<SVGSVGElement>): void => {
    const i = pickAt(e.clientX, e.currentTarget)
    if (i !== null) onPick(rows[i]!.position)
  }
  const onKey = (e: KeyboardEvent<SVGSVGElement>): void => {
    if (rows.length === 0) return
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault()
      const step = e.key === 'ArrowRight' ? 1 : -1
      setHover((h) =>
        Math.min(rows.length - 1, Math.max(0, (h ?? (step > 0 ? -1 : rows.length)) + step))
      )
    } else if (e.key === 'Enter' && hover !== null) {
      onPick(rows[hover]!.position)
    }
  }

  const tooltipLeft = hovered ? x(hovered.position) : 0
  const flip = tooltipLeft > width - 280
  return (
    <div className="plot-wrap" data-testid="metric-plot-wrap">
      <div className="plot-area" ref={wrap}>
        <svg
          className="plot"
          width={width}
          height={height}
          viewBox={`0 0 ${width} ${height}`}
          role="img"
          aria-label={`${label} per ${xLabel}${scale === 'log' ? ', log scale' : ''}. Arrow keys move along the positions, Enter opens one in the table.`}
          tabIndex={0}
          data-testid="metric-plot"
          data-scale={scale}
          data-clipped={clipped.length}
          onMouseMove={onMove}
          onMouseLeave={() => setHover(null)}
          onClick={onClick}
          onKeyDown={onKey}
          onBlur={() => setHover(null)}
        >
          <rect
            x={MARGIN.left}
            y={MARGIN.top}
            width={innerW}
            height={innerH}
            className="plot__bg"
          />
          <g className="plot__grid">
            {yTicks.map((t) => (
              <line key={t} x1={MARGIN.left} x2={MARGIN.left + innerW} y1={y(t)} y2={y(t)} />
            ))}
          </g>
          {bandBottom - bandTop > 0.5 && (
            <g data-testid="plot-band">
              <rect
                x={MARGIN.left}
                y={bandTop}
                width={innerW}
                height={bandBottom - bandTop}
                className="plot__band"
              />
              <text
                x={MARGIN.left + innerW - 6}
                y={bandTop + 12}
                className="plot__band-label"
                textAnchor="end"
                data-testid="plot-band-label"
              >
                colour scale: 5th–95th percentile
              </text>
            </g>
          )}
          <g className="plot__axis" data-testid="plot-y-axis">
            <line x1={MARGIN.left} x2={MARGIN.left} y1={MARGIN.top} y2={MARGIN.top + innerH} />
            {yTicks.map((t) => (
              <g key={t} transform={`translate(${MARGIN.left},${y(t)})`}>
                <line x1={-5} x2={0} />
                <text x={-8} dy="0.32em" textAnchor="end" className="plot__tick">
                  {tickFormat.format(t)}
                </text>
              </g>
            ))}
            <text
              transform={`translate(14,${MARGIN.top + innerH / 2}) rotate(-90)`}
              textAnchor="middle"
              className="plot__title"
            >
              {label}
              {scale === 'log' ? ' (log scale)' : ''}
            </text>
          </g>
          <g className="plot__axis" data-testid="plot-x-axis">
            <line
              x1={MARGIN.left}
              x2={MARGIN.left + innerW}
              y1={MARGIN.top + innerH}
              y2={MARGIN.top + innerH}
            />
            {xTicks.map((t) => (
              <g key={t} transform={`translate(${x(t)},${MARGIN.top + innerH})`}>
                <line y1={0} y2={5} />
                <text y={17} textAnchor="middle" className="plot__tick">
                  {t}
                </text>
              </g>
            ))}
            <text
              x={MARGIN.left + innerW / 2}
              y={height - 6}
              textAnchor="middle"
              className="plot__title"
            >
              {xLabel}
            </text>
          </g>
          <path d={path} className="plot__line" />
          {rows.length <= MAX_DOTS &&
            rows.map((r, i) =>
              drawable(values[i]!) && values[i]! <= yHi && values[i]! >= yLo ? (
                <circle
                  key={r.position}
                  cx={x(r.position)}
                  cy={yOf(values[i]!)}
                  r={2.5}
                  className="plot__dot"
                />
              ) : null
            )}
          {clipped.map((c) => {
            const cx = x(c.row.position)
            const cy = c.above ? MARGIN.top : MARGIN.top + innerH
            const d = c.above ? `M${cx},${cy - 1}l-6,9h12z` : `M${cx},${cy + 1}l-6,-9h12z`
            return (
              <path
                key={c.row.position}
                d={d}
                className="plot__clipped"
                data-testid="plot-clipped"
                data-position={c.row.position}
              >
                <title>{`${displayToken(c.row.token)} @${c.row.position}: ${formatValue(c.value)} (${c.above ? 'above' : 'below'} the axis range)`}</title>
              </path>
            )
          })}
          {hovered && (
            <g className="plot__hover" pointerEvents="none">
              <line
                x1={x(hovered.position)}
                x2={x(hovered.position)}
                y1={MARGIN.top}
                y2={MARGIN.top + innerH}
              />
              {drawable(hoveredValue) && (
                <circle cx={x(hovered.position)} cy={yOf(hoveredValue)} r={5} />
              )}
            </g>
          )}
        </svg>
        {hovered && (
          <div
            className="plot-tooltip"
            role="tooltip"
            data-testid="plot-tooltip"
            data-position={hovered.position}
            style={{
              left: flip ? undefined : tooltipLeft + 12,
              right: flip ? width - tooltipLeft + 12 : undefined,
              top: MARGIN.top + 4
            }}
          >
            <div>
              <strong className="token">{displayToken(hovered.token)}</strong>{' '}
              <span className="muted">@{hovered.position}</span>
            </div>
            <div>
              {label} <strong>{formatValue(hoveredValue)}</strong>
              {(hoveredValue > yHi || hoveredValue < yLo) && (
                <span className="muted"> (off the axis)</span>
              )}
            </div>
            <div className="plot-tooltip__explanation">{hovered.explanation}</div>
            <div className="muted small">click to open this row in the table</div>
          </div>
        )}
      </div>
      {(clipped.length > 0 || domain.undrawable > 0) && (
        <p className="plot-note muted small" data-testid="plot-note">
          {clipped.length > 0 &&
            `${clipped.length} ${clipped.length === 1 ? 'value lies' : 'values lie'} beyond the y range, marked on its edge (▲ above, ▼ below; hover for the value). `}
          {domain.undrawable > 0 &&
            `${domain.undrawable} ${domain.undrawable === 1 ? 'value has' : 'values have'} no point on this axis${scale === 'log' ? ' (zero, negative or missing)' : ' (missing)'}.`}
        </p>
      )}
    </div>
  )
}
