import { max, mean, median, min, quantile } from 'd3-array'

/** A column's summary as the table's footer shows it; NaN fields when it has no finite value. */
export interface ColumnSummary {
  count: number
  mean: number
  median: number
  min: number
  max: number
}

function finite(values: ArrayLike<number | null>): number[] {
  const out: number[] = []
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (v !== null && v !== undefined && Number.isFinite(v)) out.push(v)
  }
  return out
}

/** Mean, median, min and max of the finite values (missing ones, e.g. KL off, are left out). */
export function summarize(values: ArrayLike<number | null>): ColumnSummary {
  const v = finite(values)
  if (v.length === 0) return { count: 0, mean: NaN, median: NaN, min: NaN, max: NaN }
  return {
    count: v.length,
    mean: mean(v) ?? NaN,
    median: median(v) ?? NaN,
    min: min(v) ?? NaN,
    max: max(v) ?? NaN
  }
}

export type AxisScale = 'linear' | 'log'

/** The y range a plot draws, and how many values fall outside it (drawn as marks on its edge). */
export interface PlotDomain {
  lo: number
  hi: number
  clippedBelow: number
  clippedAbove: number
  /** Values that cannot be drawn at all on this scale (zero or negative on a log axis, NaN). */
  undrawable: number
}

/** The percentiles the domain is built from; values beyond them by more than HEADROOM are clipped. */
const LOW_PERCENTILE = 0.05
const HIGH_PERCENTILE = 0.95
/** Room kept beyond the 5th–95th percentile span, as a share of that span. */
const HEADROOM = 0.5

/**
 * A plot's y range that one outlier (the `<bos>` position, where a lens is never trained) cannot
 * flatten: the 5th–95th percentile span with half of it again as headroom, never wider than the
 * data. On a linear axis of non-negative values it starts at 0; on a log axis only positive values
 * count, and the span is measured in decades.
 */
export function plotDomain(values: ArrayLike<number | null>, scale: AxisScale): PlotDomain {
  const all = finite(values)
  const usable = scale === 'log' ? all.filter((v) => v > 0) : all
  const undrawable = values.length - usable.length
  if (usable.length === 0) {
    return scale === 'log'
      ? { lo: 1e-3, hi: 1, clippedBelow: 0, clippedAbove: 0, undrawable }
      : { lo: 0, hi: 1, clippedBelow: 0, clippedAbove: 0, undrawable }
  }
  const t = scale === 'log' ? usable.map(Math.log10) : usable
  t.sort((a, b) => a - b)
  const dataLo = t[0]!
  const dataHi = t[t.length - 1]!
  const pLo = quantile(t, LOW_PERCENTILE) ?? dataLo
  const pHi = quantile(t, HIGH_PERCENTILE) ?? dataHi
  let span = pHi - pLo
  if (!(span > 0)) span = scale === 'log' ? 1 : Math.abs(pHi) * 0.1 || 1
  let lo = Math.max(dataLo, pLo - span * HEADROOM)
  let hi = Math.min(dataHi, pHi + span * HEADROOM)
  if (scale === 'linear' && dataLo >= 0) lo = 0
  if (hi <= lo || dataHi === dataLo) {
    // Every value equal: a small band around it.
    const pad = scale === 'log' ? 0.5 : Math.abs(hi) * 0.1 || 1
    lo -= pad
    hi += pad
    if (scale === 'linear' && dataLo >= 0) lo = Math.max(0, lo)
  }
  let clippedBelow = 0
  let clippedAbove = 0
  for (const v of t) {
    if (v < lo) clippedBelow++
    else if (v > hi) clippedAbove++
  }
  if (scale === 'linear') return { lo, hi, clippedBelow, clippedAbove, undrawable }
  // Back from decades; an end at the data's own extreme is that value exactly (10 ** log10(v) can
  // land a hair inside it, and the value would then read as clipped).
  const sorted = [...usable].sort((a, b) => a - b)
  return {
    lo: lo === dataLo ? sorted[0]! : 10 ** lo,
    hi: hi === dataHi ? sorted[sorted.length - 1]! : 10 ** hi,
    clippedBelow,
    clippedAbove,
    undrawable
  }
}
