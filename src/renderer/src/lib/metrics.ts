import type { AnalysisRow } from '@shared/domain/analysis'

export type MetricKey = 'mse' | 'relativeRmse' | 'klDivergence'

export const METRICS: ReadonlyArray<{ key: MetricKey; label: string; description: string }> = [
  { key: 'mse', label: 'MSE', description: 'reconstruction error of the activation' },
  { key: 'relativeRmse', label: 'Relative RMSE', description: 'RMSE over the activation norm' },
  { key: 'klDivergence', label: 'KL', description: 'KL(original ‖ reconstructed) of the next-token distribution, nats' }
]

export function metricValue(row: AnalysisRow, key: MetricKey): number {
  const v = row[key]
  return v === null ? Number.NaN : v
}

/** Six significant figures are what people compare; NaN and null read as N/A. */
export function formatMetric(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return 'N/A'
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(2)
  return value.toFixed(4)
}

/** Tokens as they should look in a cell: whitespace made visible, nothing collapsed. */
export function displayToken(token: string): string {
  return token.replace(/\n/g, '↵').replace(/\t/g, '⇥') || '∅'
}
