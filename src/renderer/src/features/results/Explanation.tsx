import type { JSX } from 'react'
import type { AnalysisRow } from '@shared/domain/analysis'
import { readableText, rgbCss, salienceColor } from '../../lib/colorScale'

/** The explanation word by word, each on its salience colour (plain when salience is off). */
export function Explanation({
  row,
  salienceTop
}: {
  row: AnalysisRow
  salienceTop: number
}): JSX.Element {
  const words =
    row.explanationStructured.length > 0 ? row.explanationStructured : row.explanation.split(' ')
  return (
    <span className="explanation" data-testid="explanation">
      {words.map((w, i) => {
        const s = row.tokenSalience[i]
        const c = s === undefined ? null : salienceColor(s, salienceTop)
        return (
          <span
            key={i}
            className="word"
            style={c ? { background: rgbCss(c), color: readableText(c) } : undefined}
            title={s === undefined ? undefined : `salience ${s.toFixed(3)}`}
          >
            {w}
          </span>
        )
      })}
    </span>
  )
}
