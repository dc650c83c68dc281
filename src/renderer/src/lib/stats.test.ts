import { describe, expect, it } from 'vitest'
import { plotDomain, summarize } from './stats'

describe('column summary', () => {
  it('gives mean, median, min and max of the finite values, leaving missing ones out', () => {
    expect(summarize([4, 1, Number.NaN, 3, null, 2])).toEqual({
      count: 4,
      mean: 2.5,
      median: 2.5,
      min: 1,
      max: 4
    })
    expect(summarize([5])).toEqual({ count: 1, mean: 5, median: 5, min: 5, max: 5 })
    const none = summarize([null, Number.NaN])
    expect(none.count).toBe(0)
    expect(none.mean).toBeNaN()
  })
})

describe('plot domain', () => {
  // A demo run's MSE: <bos> (0.0091) far above the rest, one unknown word (0.0044) in between.
  const mse = [
    0.0091, 1.51e-4, 4.89e-4, 5.76e-4, 4.6e-4, 3.61e-4, 0.0011, 7.53e-4, 7.57e-4, 3.34e-4, 6.8e-4,
    0.0044, 5.08e-4, 4.91e-4, 6.1e-4, 3.9e-4
  ]

  it('keeps one outlier from flattening the rest on a linear axis, and counts it as clipped', () => {
    const d = plotDomain(mse, 'linear')
    expect(d.lo).toBe(0)
    expect(d.hi).toBeLessThan(0.0091)
    expect(d.hi).toBeGreaterThan(0.0044)
    expect(d).toMatchObject({ clippedAbove: 1, clippedBelow: 0, undrawable: 0 })
  })

  it('on a log axis spreads the decades and draws every positive value', () => {
    const d = plotDomain(mse, 'log')
    // Exactly the extremes: every value is inside, none reads as clipped.
    expect(d.lo).toBe(1.51e-4)
    expect(d.hi).toBe(0.0091)
    expect(mse.every((v) => v >= d.lo && v <= d.hi)).toBe(true)
    expect(d.clippedAbove + d.clippedBelow).toBe(0)
    const withZero = plotDomain([0, ...mse, Number.NaN], 'log')
    expect(withZero.undrawable).toBe(2)
  })

  it('never reaches beyond the data, and gives a band around a constant series', () => {
    const d = plotDomain([1, 2, 3, 4, 5], 'linear')
    expect(d).toMatchObject({ lo: 0, hi: 5, clippedAbove: 0 })
    const flat = plotDomain([2, 2, 2], 'linear')
    expect(flat.hi).toBeGreaterThan(2)
    expect(flat.lo).toBeLessThan(2)
    const negative = plotDomain([-3, -1, 1, 3], 'linear')
    expect(negative.lo).toBe(-3)
    expect(plotDomain([], 'log')).toMatchObject({ lo: 1e-3, hi: 1 })
  })
})
