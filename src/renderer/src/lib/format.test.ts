import { describe, expect, it } from 'vitest'
import { clampFraction, formatBytes, formatPercent } from './format'

describe('format', () => {
  it('formats memory as GiB with one decimal, MiB below', () => {
    expect(formatBytes(25_276_063_744)).toBe('23.5 GiB')
    expect(formatBytes(81559 * 1024 ** 2)).toBe('79.6 GiB')
    expect(formatBytes(512 * 1024 ** 2)).toBe('512 MiB')
    expect(formatBytes(-1)).toBe('—')
    expect(formatBytes(Number.NaN)).toBe('—')
  })

  it('formats fractions as percentages and clamps bar widths', () => {
    expect(formatPercent(0.374)).toBe('37 %')
    expect(formatPercent(1.5)).toBe('150 %')
    expect(clampFraction(1.5)).toBe(1)
    expect(clampFraction(-2)).toBe(0)
    expect(clampFraction(Number.NaN)).toBe(0)
  })
})
