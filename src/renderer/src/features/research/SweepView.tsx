import { useMemo, useState, type JSX } from 'react'
import type { AnalysisRow } from '@shared/domain/analysis'
import { clippedRange } from '../../lib/colorScale'
import { displayToken, metricValue, METRICS, type MetricKey } from '../../lib/metrics'
import { formatValue } from '../../lib/numberFormat'
import type { AxisScale } from '../../lib/stats'
import { MetricPlot } from '../results/MetricPlot'

/**
 * A layer sweep: one row per layer (which lens explained it, trained at that layer or not) and the
 * chosen metric over layers, drawn by the results plot with the layer as its x.
 */
export function SweepView({ rows, scale }: { rows: AnalysisRow[]; scale: AxisScale }): JSX.Element {
  const [metric, setMetric] = useState<MetricKey>('mse')
  const byLayer = useMemo(
    () =>
      rows
        .filter((r) => r.layer !== undefined)
        .map((r) => ({ ...r, position: r.layer! }))
        .sort((a, b) => a.position - b.position),
    [rows]
  )
  const range = useMemo(
    () => clippedRange(byLayer.map((r) => metricValue(r, metric))),
    [byLayer, metric]
  )
  const label = METRICS.find((m) => m.key === metric)?.label ?? metric
  const first = rows[0]
  return (
    <div className="sweep" data-testid="sweep-view">
      <p className="muted small">
        Position {first?.position ?? '?'}{' '}
        {first && <span className="token">{displayToken(first.token)}</span>} explained at{' '}
        {byLayer.length} layers.
      </p>
      <div className="segmented" role="tablist" aria-label="Sweep metric">
        {METRICS.map((m) => (
          <button
            key={m.key}
            type="button"
            role="tab"
            aria-selected={metric === m.key}
            className={metric === m.key ? 'on' : ''}
            onClick={() => setMetric(m.key)}
            data-testid={`sweep-metric-${m.key}`}
          >
            {m.label}
          </button>
        ))}
      </div>
      <div className="sweep__plot" data-testid="sweep-plot">
        <MetricPlot
          rows={byLayer}
          metric={metric}
          range={range}
          label={label}
          scale={scale}
          xLabel="layer"
          onPick={() => undefined}
        />
      </div>
      <table className="sweep__table" data-testid="sweep-table">
        <thead>
          <tr>
            <th>Layer</th>
            <th>Lens</th>
            <th>Lens trained at</th>
            <th>Explanation</th>
            {METRICS.map((m) => (
              <th key={m.key}>{m.label}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {byLayer.map((r) => (
            <tr
              key={r.position}
              data-testid="sweep-row"
              data-layer={r.position}
              data-trained={r.trainedAtLayer ? 'yes' : 'no'}
            >
              <td className="num">{r.position}</td>
              <td>{r.lensId ?? '—'}</td>
              <td>
                {r.lensLayer ?? '—'}
                {r.trainedAtLayer ? (
                  <span className="badge" title="This lens was trained at this layer">
                    {' '}
                    trained here
                  </span>
                ) : (
                  <span className="muted small"> (another layer)</span>
                )}
              </td>
              <td>{r.explanation}</td>
              {METRICS.map((m) => (
                <td key={m.key} className="num">
                  {formatValue(metricValue(r, m.key))}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
