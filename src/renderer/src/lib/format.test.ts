import { describe, expect, it } from 'vitest'
import { clampFraction, formatBytes, formatLoad, formatPercent } from './format'

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

  it('says CPU load as a share of the cores, never a percentage above 100', () => {
    // 1-minute load average 2.34 on 2 cores: utilisation 1.17.
    expect(formatLoad(1.17, 2)).toEqual({ text: '2.3 of 2 cores', fraction: 1 })
    expect(formatLoad(0.25, 8)).toEqual({ text: '2.0 of 8 cores', fraction: 0.25 })
    expect(formatLoad(0.5, 1)).toEqual({ text: '0.5 of 1 core', fraction: 0.5 })
    expect(formatLoad(0.9, 64).text).toBe('58 of 64 cores')
    expect(formatLoad(Number.NaN, 2)).toEqual({ text: '—', fraction: 0 })
    expect(formatLoad(0.5, 0)).toEqual({ text: '—', fraction: 0 })
  })
})
