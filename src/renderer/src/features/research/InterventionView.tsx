import type { JSX } from 'react'
import type { InterventionRow, Prediction } from '@shared/domain/research'
import { displayToken } from '../../lib/metrics'
import { formatValue } from '../../lib/numberFormat'
import { fitNote } from '../../lib/research'

const RUNS = [
  ['original', 'Original (A)'],
  ['intervention', 'Intervention (A_int)'],
  ['decoded', 'Original decoded (Â)']
] as const

function Predictions({ list }: { list: Prediction[] }): JSX.Element {
  return (
    <ol className="predictions">
      {list.map((p, i) => (
        <li key={i}>
          <span className="token">{displayToken(p.token)}</span>{' '}
          <span className="muted small">{(p.probability * 100).toFixed(1)}%</span>
        </li>
      ))}
    </ol>
  )
}

/** One intervention: the three runs side by side, the divergences, and how the string was fitted. */
function InterventionCard({ row }: { row: InterventionRow }): JSX.Element {
  const predictions = {
    original: row.topPredictionsOriginal,
    intervention: row.topPredictionsIntervention,
    decoded: row.topPredictionsOriginalDecoded
  }
  const continuations = {
    original: row.continuationOriginal,
    intervention: row.continuationIntervention,
    decoded: row.continuationOriginalDecoded
  }
  const note = fitNote(row)
  return (
    <article
      className="intervention"
      data-testid="intervention-row"
      data-position={row.interventionPosition}
    >
      <header className="intervention__head">
        <strong>“{row.interventionText}”</strong>{' '}
        <span className="muted small">
          at position {row.interventionPosition} (
          <span className="token">{displayToken(row.intervenedToken)}</span>), predictions after
          position {row.nextTokenPosition} (
          <span className="token">{displayToken(row.predictionContextToken)}</span>); own
          explanation “{row.explanationOriginal}”
        </span>
      </header>
      {note && (
        <p className="note small" data-testid="intervention-truncated">
          {note} Encoded as “{row.interventionString}”.
        </p>
      )}
      <dl className="intervention__metrics" data-testid="intervention-metrics">
        <div>
          <dt>KL(P_A‖P_int)</dt>
          <dd data-metric="kl-int">{formatValue(row.klDivergence)}</dd>
        </div>
        <div>
          <dt>KL(P_A‖P_Â)</dt>
          <dd data-metric="kl-decoded">{formatValue(row.klDivOrigDecoded)}</dd>
        </div>
        <div>
          <dt>MSE(A, A_int)</dt>
          <dd data-metric="mse-int">{formatValue(row.mse)}</dd>
        </div>
        <div>
          <dt>MSE(A, Â)</dt>
          <dd data-metric="mse-decoded">{formatValue(row.mseOrigDecoded)}</dd>
        </div>
      </dl>
      <div className="intervention__runs">
        {RUNS.map(([key, label]) => (
          <section key={key} className="intervention__run" data-testid={`intervention-${key}`}>
            <h4>{label}</h4>
            <Predictions list={predictions[key]} />
            <p className="intervention__continuation small">
              <span className="muted">continues: </span>
              {continuations[key] || <span className="muted">(no continuation)</span>}
            </p>
          </section>
        ))}
      </div>
    </article>
  )
}

/** An intervene result: one card per position and string, in the job's order. */
export function InterventionView({ rows }: { rows: InterventionRow[] }): JSX.Element {
  return (
    <div className="interventions" data-testid="intervention-view">
      {rows.map((row) => (
        <InterventionCard key={row.index} row={row} />
      ))}
    </div>
  )
}
