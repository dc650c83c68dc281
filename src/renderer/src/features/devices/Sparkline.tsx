import type { JSX } from 'react'
import { SPARKLINE_WINDOW_MS, type UtilisationSample } from '../../store/slices/managerSlice'

/** Utilisation over the last minute, 0..100 %, newest at the right. */
export function Sparkline({
  samples,
  label
}: {
  samples: UtilisationSample[]
  label: string
}): JSX.Element {
  const width = 120
  const height = 28
  const last = samples.at(-1)
  const end = last?.at ?? 0
  const points = samples.map((s) => {
    const x = width - ((end - s.at) / SPARKLINE_WINDOW_MS) * width
    const y = height - Math.min(1, Math.max(0, s.value)) * (height - 2) - 1
    return `${x.toFixed(1)},${y.toFixed(1)}`
  })
  return (
    <svg
      className="sparkline"
      viewBox={`0 0 ${width} ${height}`}
      width={width}
      height={height}
      role="img"
      aria-label={`${label}: ${last ? Math.round(last.value * 100) : 0} % now, ${samples.length} samples over the last minute`}
      data-testid="utilisation-sparkline"
      data-samples={samples.length}
    >
      <rect x="0" y="0" width={width} height={height} className="sparkline__bg" />
      {points.length > 1 ? (
        <polyline points={points.join(' ')} className="sparkline__line" />
      ) : (
        <text x="4" y="18" className="sparkline__empty">
          collecting…
        </text>
      )}
    </svg>
  )
}
