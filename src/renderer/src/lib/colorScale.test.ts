import { describe, expect, it } from 'vitest'
import { clippedRange, metricColor, normalize, percentile, salienceColor } from './colorScale'
import { alignByPosition, meanDifference } from './compare'
import type { AnalysisRow } from '@shared/domain/analysis'

describe('percentile clipping', () => {
  it('interpolates between ranks and ignores NaN', () => {
    expect(percentile([1, 2, 3, 4, 5], 50)).toBe(3)
    expect(percentile([0, 10], 25)).toBe(2.5)
    expect(percentile([Number.NaN, 4], 90)).toBe(4)
    expect(percentile([], 50)).toBeNaN()
  })

  it('keeps one outlier from washing out the scale, and counts what it clipped', () => {
    const values = [...Array.from({ length: 99 }, (_, i) => i / 1000), 50]
    const r = clippedRange(values)
    expect(r.max).toBeLessThan(0.1)
    expect(r.clippedHigh).toBe(5)
    expect(r.clippedLow).toBe(5)
    expect(normalize(50, r)).toBe(1)
    expect(normalize(r.min, r)).toBe(0)
    expect(normalize(Number.NaN, r)).toBeNaN()
  })

  it('matches percentiles read off a full sort, for ties, NaN and every rank', () => {
    let seed = 7
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const reference = (values: number[], p: number): number => {
      const s = values.filter(Number.isFinite).sort((a, b) => a - b)
      const rank = (p / 100) * (s.length - 1)
      const lo = Math.floor(rank)
      const hi = Math.ceil(rank)
      return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo)
    }
    for (const n of [1, 2, 3, 10, 101, 1000]) {
      // Few distinct values (many ties), a NaN and an infinity that must be ignored.
      const values = Array.from({ length: n }, () => Math.round(random() * 20) / 4)
      values.push(Number.NaN, Number.POSITIVE_INFINITY)
      for (const p of [0, 1, 5, 37.5, 50, 95, 99, 100])
        expect(percentile(values, p)).toBeCloseTo(reference(values, p), 12)
      const r = clippedRange(values)
      const finite = values.filter(Number.isFinite)
      expect(r.clippedLow).toBe(finite.filter((v) => v < r.min).length)
      expect(r.clippedHigh).toBe(finite.filter((v) => v > r.max).length)
    }
    expect(percentile(new Float64Array([3, 1, 2]), 50)).toBe(2)
  })

  it('gives a usable range for constant or empty inputs', () => {
    const flat = clippedRange([2, 2, 2])
    expect(flat.max).toBeGreaterThan(flat.min)
    expect(clippedRange([])).toMatchObject({ min: 0, max: 1 })
  })
})

describe('colours', () => {
  it('metric scale runs pale yellow → dark red, lightness falling, and has no colour for NaN', () => {
    expect(metricColor(0)).toEqual({ r: 255, g: 255, b: 204 })
    expect(metricColor(1)).toEqual({ r: 128, g: 0, b: 38 })
    expect(metricColor(0.5)).toEqual({ r: 253, g: 141, b: 60 })
    expect(metricColor(Number.NaN)).toBeNull()
    const lightness = (t: number): number => {
      const c = metricColor(t)!
      return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b
    }
    for (let t = 0; t < 1; t += 0.05) expect(lightness(t + 0.05)).toBeLessThan(lightness(t))
  })

  it('salience diverges from white: red where the word matters, blue where it hurts (RdBu)', () => {
    expect(salienceColor(0)).toEqual({ r: 255, g: 255, b: 255 })
    expect(salienceColor(0.3, 0.3)).toEqual({ r: 178, g: 24, b: 43 })
    expect(salienceColor(5, 0.3)).toEqual({ r: 178, g: 24, b: 43 })
    expect(salienceColor(-0.3, 0.3)).toEqual({ r: 33, g: 102, b: 172 })
    expect(salienceColor(-5, 0.3)).toEqual({ r: 33, g: 102, b: 172 })
    // No red–green pair: the negative end is blue, not green.
    const negative = salienceColor(-0.3, 0.3)!
    expect(negative.b).toBeGreaterThan(negative.g)
    // Log scale: a tenth of the top is already a third of the way (a linear scale gives g ≈ 241).
    expect(salienceColor(0.03, 0.3)!.g).toBeLessThan(210)
  })

  it('log normalisation measures decades, and puts values without a logarithm at the low end', () => {
    const range = { min: 1e-4, max: 1e-2 }
    expect(normalize(1e-3, range, 'log')).toBeCloseTo(0.5, 12)
    expect(normalize(1e-3, range, 'linear')).toBeCloseTo(0.0909, 3)
    expect(normalize(0, range, 'log')).toBe(0)
    expect(normalize(1, range, 'log')).toBe(1)
    expect(normalize(Number.NaN, range, 'log')).toBeNaN()
  })
})

function row(position: number, token: string, mse: number): AnalysisRow {
  return {
    position,
    token,
    tokenId: position,
    explanation: token,
    explanationStructured: [token],
    mse,
    relativeRmse: mse,
    klDivergence: null,
    tokenSalience: [],
    logitLensTop: null
  }
}

describe('compare alignment', () => {
  it('lines two runs up by position, leaving gaps instead of shifting', () => {
    const left = [row(0, 'a', 1), row(1, 'b', 1), row(3, 'd', 1)]
    const right = [row(1, 'b', 0.5), row(2, 'c', 0.5), row(3, 'X', 3)]
    const aligned = alignByPosition(left, right)
    expect(aligned.map((a) => [a.position, a.left?.token ?? null, a.right?.token ?? null])).toEqual(
      [
        [0, 'a', null],
        [1, 'b', 'b'],
        [2, null, 'c'],
        [3, 'd', 'X']
      ]
    )
    expect(aligned.map((a) => a.tokenMismatch)).toEqual([false, false, false, true])
    expect(meanDifference(aligned, (r) => r.mse)).toBeCloseTo((-0.5 + 2) / 2)
  })
})
