/**
 * Colour scales for per-token metrics. A few outlier positions (the first tokens, where a lens is
 * never trained) would otherwise wash every other row out, so the range is clipped to percentiles.
 */

/** The finite values, copied into a typed array (in input order). */
function finiteValues(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length)
  let n = 0
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    if (Number.isFinite(v)) out[n++] = v
  }
  return out.subarray(0, n)
}

/**
 * Rearranges `a` so that a[k] holds its k-th smallest value, smaller or equal ones before it and
 * larger or equal ones after (Hoare's selection, expected linear time). The scale is recomputed
 * on every streamed batch over every row, and for salience over every explanation word: a full
 * sort each time was the largest part of a batch's render.
 */
function selectKth(a: Float64Array, k: number): void {
  let lo = 0
  let hi = a.length - 1
  while (hi > lo) {
    const pivot = a[(lo + hi) >>> 1]!
    let i = lo
    let j = hi
    while (i <= j) {
      while (a[i]! < pivot) i++
      while (a[j]! > pivot) j--
      if (i <= j) {
        const t = a[i]!
        a[i] = a[j]!
        a[j] = t
        i++
        j--
      }
    }
    if (k <= j) hi = j
    else if (k >= i) lo = i
    else return
  }
}

/** Linear-interpolated percentile of finite values; reorders `a`. */
function percentileInPlace(a: Float64Array, p: number): number {
  if (a.length === 0) return Number.NaN
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (a.length - 1)
  const lo = Math.floor(rank)
  selectKth(a, lo)
  const low = a[lo]!
  if (rank === lo) return low
  // The next order statistic is the smallest value above index lo.
  let next = Number.POSITIVE_INFINITY
  for (let i = lo + 1; i < a.length; i++) if (a[i]! < next) next = a[i]!
  return low + (next - low) * (rank - lo)
}

/** Linear-interpolated percentile (p in 0..100) of the finite values; NaN when there are none. */
export function percentile(values: ArrayLike<number>, p: number): number {
  return percentileInPlace(finiteValues(values), p)
}

export interface ClippedRange {
  min: number
  max: number
  /** How many values fall outside [min, max] and are drawn at the ends of the scale. */
  clippedLow: number
  clippedHigh: number
}

/** The [low, high] percentile range of the values (default 5th–95th). */
export function clippedRange(values: ArrayLike<number>, low = 5, high = 95): ClippedRange {
  const finite = finiteValues(values)
  const min = percentileInPlace(finite, low)
  let max = percentileInPlace(finite, high)
  if (!Number.isFinite(min) || !Number.isFinite(max))
    return { min: 0, max: 1, clippedLow: 0, clippedHigh: 0 }
  if (max <= min) max = min + (Math.abs(min) > 0 ? Math.abs(min) * 1e-6 : 1e-9)
  let clippedLow = 0
  let clippedHigh = 0
  for (const v of finite) {
    if (v < min) clippedLow++
    else if (v > max) clippedHigh++
  }
  return { min, max, clippedLow, clippedHigh }
}

/**
 * Position of v in the range, clamped to 0..1 (NaN stays NaN: the cell shows no colour). On a log
 * scale the position is measured in decades; a value that has no logarithm (0 or below) sits at
 * the low end.
 */
export function normalize(
  value: number,
  range: Pick<ClippedRange, 'min' | 'max'>,
  scale: 'linear' | 'log' = 'linear'
): number {
  if (!Number.isFinite(value)) return Number.NaN
  let t: number
  if (scale === 'log' && range.min > 0 && range.max > range.min) {
    if (value <= 0) return 0
    t =
      (Math.log10(value) - Math.log10(range.min)) / (Math.log10(range.max) - Math.log10(range.min))
  } else {
    t = (value - range.min) / (range.max - range.min)
  }
  return Math.min(1, Math.max(0, t))
}

export interface Rgb {
  r: number
  g: number
  b: number
}

function hex(h: string): Rgb {
  const n = Number.parseInt(h.slice(1), 16)
  return { r: (n >> 16) & 255, g: (n >> 8) & 255, b: n & 255 }
}

function interpolate(stops: readonly Rgb[], t: number): Rgb {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1)
  const i = Math.min(stops.length - 2, Math.floor(x))
  const f = x - i
  const a = stops[i]!
  const b = stops[i + 1]!
  return {
    r: Math.round(a.r + (b.r - a.r) * f),
    g: Math.round(a.g + (b.g - a.g) * f),
    b: Math.round(a.b + (b.b - a.b) * f)
  }
}

/**
 * Sequential scale for error metrics, low = pale yellow, high = dark red (ColorBrewer YlOrRd):
 * its lightness falls monotonically, so it reads the same to colour-blind eyes and in greyscale.
 */
export const METRIC_STOPS: readonly Rgb[] = [
  '#ffffcc',
  '#fed976',
  '#fd8d3c',
  '#e31a1c',
  '#800026'
].map(hex)

export function metricColor(t: number): Rgb | null {
  if (!Number.isFinite(t)) return null
  return interpolate(METRIC_STOPS, t)
}

/**
 * Diverging scale for salience (ColorBrewer RdBu, safe for the common colour-vision
 * deficiencies): white at 0, red where blanking the word raises the MSE (the word matters), blue
 * where it lowers it (the word hurts).
 */
export const SALIENCE_POSITIVE: readonly Rgb[] = [
  '#ffffff',
  '#fddbc7',
  '#f4a582',
  '#d6604d',
  '#b2182b'
].map(hex)
export const SALIENCE_NEGATIVE: readonly Rgb[] = [
  '#ffffff',
  '#d1e5f0',
  '#92c5de',
  '#4393c3',
  '#2166ac'
].map(hex)

/**
 * Salience of one explanation word: the relative MSE increase when it is blanked. Magnitudes go on
 * a log scale so small values still show; `max` is the magnitude drawn at full colour.
 */
export function salienceColor(value: number, max = 0.3): Rgb | null {
  if (!Number.isFinite(value)) return null
  const top = max > 0 ? max : 0.3
  const m = Math.min(top, Math.abs(value))
  const t = Math.log10(1 + 50 * m) / Math.log10(1 + 50 * top)
  return interpolate(value >= 0 ? SALIENCE_POSITIVE : SALIENCE_NEGATIVE, t)
}

export function rgbCss(c: Rgb | null, alpha = 1): string {
  if (!c) return 'transparent'
  return alpha >= 1 ? `rgb(${c.r}, ${c.g}, ${c.b})` : `rgba(${c.r}, ${c.g}, ${c.b}, ${alpha})`
}

/** Black or white text, whichever reads better on the background. */
export function readableText(c: Rgb | null): string {
  if (!c) return 'inherit'
  const luminance = (0.299 * c.r + 0.587 * c.g + 0.114 * c.b) / 255
  return luminance > 0.6 ? '#111' : '#fff'
}

/** The upper end of the salience scale for one result: its 95th percentile, at least 0.05. */
export function salienceMax(saliences: ArrayLike<number>): number {
  const p95 = percentile(saliences, 95)
  return Number.isFinite(p95) ? Math.max(0.05, p95) : 0.3
}
