import { describe, expect, it } from 'vitest'
import { columnFormat, formatValue, MISSING } from './numberFormat'

describe('one number format per column', () => {
  it('writes a column spanning small magnitudes in scientific notation throughout', () => {
    // MSE of a demo run: 1.51e-4 … 0.0091 (a mixed table showed 1.51e-4 next to 0.0011).
    const f = columnFormat([0.000151, 0.0011, 0.0091, 0.00042])
    expect(f.kind).toBe('exponent')
    expect([0.000151, 0.0011, 0.0091].map(f.format)).toEqual(['1.51e-4', '1.10e-3', '9.10e-3'])
  })

  it('uses fixed decimals when they carry three significant digits of the smallest value', () => {
    const f = columnFormat([0.0875, 0.732, 0.2523])
    expect(f).toMatchObject({ kind: 'fixed', decimals: 4 })
    expect([0.0875, 0.732, 0.2523].map(f.format)).toEqual(['0.0875', '0.7320', '0.2523'])
    expect(columnFormat([1.5, 12.25]).format(12.25)).toBe('12.25')
    expect(columnFormat([150, 2300]).format(2300)).toBe('2300')
  })

  it('goes scientific for a column spanning four decades or more, or very large values', () => {
    // KL of a demo run: 8.26e-5 … 3.96.
    expect(columnFormat([8.26e-5, 0.0341, 3.9598]).kind).toBe('exponent')
    expect(columnFormat([8.26e-5, 0.0341, 3.9598]).format(3.9598)).toBe('3.96e+0')
    expect(columnFormat([0.5, 6000]).kind).toBe('exponent')
    expect(columnFormat([2e5, 3e5]).kind).toBe('exponent')
  })

  it('ignores zeros, NaN and null when choosing, and shows missing values as a dash', () => {
    const f = columnFormat([0, Number.NaN, null, 0.25, 0.5])
    expect(f).toMatchObject({ kind: 'fixed', decimals: 3 })
    expect(f.format(0)).toBe('0.000')
    expect(f.format(null)).toBe(MISSING)
    expect(f.format(Number.NaN)).toBe(MISSING)
    expect(columnFormat([]).format(1)).toBe('1.00')
    expect(columnFormat([null, null]).format(null)).toBe(MISSING)
  })

  it('writes negatives with an ASCII minus, so a copied cell pastes as a number', () => {
    expect(columnFormat([-0.25, 0.5]).format(-0.25)).toBe('-0.250')
    expect(Number(columnFormat([-1e-5, 1e-5]).format(-1e-5))).toBe(-1e-5)
  })

  it('formats single values with the same rules', () => {
    expect(formatValue(0.0056)).toBe('0.00560')
    expect(formatValue(0.00056)).toBe('5.60e-4')
    expect(formatValue(0.25)).toBe('0.250')
    expect(formatValue(null)).toBe(MISSING)
  })
})
