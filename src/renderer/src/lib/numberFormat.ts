import { formatLocale } from 'd3-format'

/**
 * One number format per table column, as research tables (W&B, TensorBoard) show them: every cell
 * of a column has the same shape, so values compare at a glance and line up when right-aligned.
 * A column whose values span many orders of magnitude (MSE from 1e-4 to 1e-2, KL from 1e-5 to 4)
 * is written in scientific notation throughout, never `1.51e-4` next to `0.0011`.
 */
export interface ColumnFormat {
  kind: 'fixed' | 'exponent'
  /** Decimals (fixed) or mantissa decimals (exponent). */
  decimals: number
  format(value: number | null | undefined): string
}

/** What a missing value (KL off, NaN from a failed stage) reads as in a cell. */
export const MISSING = '—'

/** Scientific when the largest value is at least this… */
const EXPONENT_ABOVE = 1e5
/** …or the smallest non-zero one is below this… */
const EXPONENT_BELOW = 1e-3
/** …or the column spans this many times between its smallest and largest magnitude. */
const EXPONENT_SPAN = 1e4
const MAX_DECIMALS = 8
/** An ASCII minus (d3's default is U+2212), so a copied cell pastes as a number. */
const d3Format = formatLocale({
  decimal: '.',
  thousands: ',',
  grouping: [3],
  currency: ['', ''],
  minus: '-'
}).format

/** The format of this kind and precision (the same format again for an unchanged key). */
export function makeFormat(kind: ColumnFormat['kind'], decimals: number): ColumnFormat {
  const f = d3Format(kind === 'fixed' ? `.${decimals}f` : `.${decimals}e`)
  return {
    kind,
    decimals,
    format: (value) =>
      value === null || value === undefined || !Number.isFinite(value) ? MISSING : f(value)
  }
}

/**
 * The format for a column: `significant` digits on its smallest non-zero magnitude, fixed decimals
 * when that reads well for the whole column, scientific otherwise.
 */
export function columnFormat(values: ArrayLike<number | null>, significant = 3): ColumnFormat {
  return columnFormatOf(values as ArrayLike<number | null>, (v) => v, significant)
}

/** `columnFormat` over a value read from each item (no array of values is made). */
export function columnFormatOf<T>(
  items: ArrayLike<T>,
  value: (item: T) => number | null | undefined,
  significant = 3
): ColumnFormat {
  let lo = Number.POSITIVE_INFINITY
  let hi = 0
  for (let i = 0; i < items.length; i++) {
    const v = value(items[i]!)
    if (v === null || v === undefined || !Number.isFinite(v) || v === 0) continue
    const a = Math.abs(v)
    if (a < lo) lo = a
    if (a > hi) hi = a
  }
  if (hi === 0) return makeFormat('fixed', Math.max(0, significant - 1))
  if (hi >= EXPONENT_ABOVE || lo < EXPONENT_BELOW || hi / lo >= EXPONENT_SPAN) {
    return makeFormat('exponent', Math.max(0, significant - 1))
  }
  const decimals = Math.min(MAX_DECIMALS, Math.max(0, significant - 1 - Math.floor(Math.log10(lo))))
  return makeFormat('fixed', decimals)
}

/** A single value outside a table (legends, tooltips): `significant` digits, same rules as a column. */
export function formatValue(value: number | null | undefined, significant = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING
  return columnFormat([value], significant).format(value)
}
