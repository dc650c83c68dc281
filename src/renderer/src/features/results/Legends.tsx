import type { JSX } from 'react'
import {
  METRIC_STOPS,
  rgbCss,
  SALIENCE_NEGATIVE,
  SALIENCE_POSITIVE,
  type ClippedRange
} from '../../lib/colorScale'
import { formatValue } from '../../lib/numberFormat'
import type { AxisScale } from '../../lib/stats'

function gradient(stops: ReadonlyArray<Parameters<typeof rgbCss>[0]>): string {
  return `linear-gradient(to right, ${stops.map((c) => rgbCss(c)).join(', ')})`
}

/** The metric colour scale: its ends, the gradient, what was clipped, linear or log. */
export function MetricLegend({
  label,
  range,
  scale
}: {
  label: string
  range: ClippedRange
  scale: AxisScale
}): JSX.Element {
  const clipped = range.clippedLow + range.clippedHigh
  return (
    <div
      className="legend"
      data-testid="legend"
      title={`${label} colour: ${scale === 'log' ? 'log' : 'linear'} scale over the 5th–95th percentile; values beyond it take the end colours`}
    >
      <span className="legend__name">{label}</span>
      <span className="legend__end">{formatValue(range.min)}</span>
      <span className="legend__bar" style={{ background: gradient(METRIC_STOPS) }} />
      <span className="legend__end">{formatValue(range.max)}</span>
      <span className="muted small">
        {scale === 'log' ? 'log' : ''}
        {clipped > 0 ? `${scale === 'log' ? ' · ' : ''}${clipped} clipped` : ''}
      </span>
    </div>
  )
}

/** The salience scale: blue where blanking a word lowers the MSE, red where it raises it. */
export function SalienceLegend({ top }: { top: number }): JSX.Element {
  const stops = [...SALIENCE_NEGATIVE].reverse().concat(SALIENCE_POSITIVE.slice(1))
  return (
    <div
      className="legend"
      data-testid="salience-legend"
      title="Salience of an explanation word: the relative MSE change when it is blanked (log scale of magnitude)"
    >
      <span className="legend__name">Salience</span>
      <span className="legend__end">−{formatValue(top, 2)}</span>
      <span className="legend__bar" style={{ background: gradient(stops) }} />
      <span className="legend__end">+{formatValue(top, 2)}</span>
      <span className="muted small">red matters · blue hurts</span>
    </div>
  )
}
