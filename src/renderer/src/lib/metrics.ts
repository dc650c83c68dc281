import { formatValue } from './numberFormat'
import type { AnalysisRow } from '@shared/domain/analysis'

export type MetricKey = 'mse' | 'relativeRmse' | 'klDivergence'

export const METRICS: ReadonlyArray<{ key: MetricKey; label: string; description: string }> = [
  { key: 'mse', label: 'MSE', description: 'reconstruction error of the activation' },
  { key: 'relativeRmse', label: 'Relative RMSE', description: 'RMSE over the activation norm' },
  {
    key: 'klDivergence',
    label: 'KL',
    description: 'KL(original ‖ reconstructed) of the next-token distribution, nats'
  }
]

export function metricValue(row: AnalysisRow, key: MetricKey): number {
  const v = row[key]
  return v === null ? Number.NaN : v
}

/** One value outside a column (tooltips, legends): three significant figures; missing reads as —. */
export function formatMetric(value: number | null): string {
  return formatValue(value)
}

/** Tokens as they should look in a cell: whitespace made visible, nothing collapsed. */
export function displayToken(token: string): string {
  return token.replace(/\n/g, '↵').replace(/\t/g, '⇥') || '∅'
}

/** For a token that stands for a word the model does not know: what it received, for what. */
export function unknownWordHint(row: Pick<AnalysisRow, 'token' | 'sourceText'>): string | null {
  return row.sourceText === undefined
    ? null
    : `the model received ${row.token} here: its vocabulary does not have “${row.sourceText}”`
}
