import { describe, expect, it } from 'vitest'
import {
  KL_ROUNDING_TOLERANCE,
  argminRange,
  klFromLogits,
  klOrZeroIfRounding,
  meanSquaredError,
  relativeRmse,
  salience
} from './metrics'
import { Rng, sampleUniform, uniformsFor } from './random'

describe('metrics on hand-made vectors', () => {
  it('MSE is the mean squared difference over the hidden dimension', () => {
    expect(meanSquaredError([1, 2, 3, 4], [1, 2, 3, 4])).toBe(0)
    expect(meanSquaredError([1, 0, 0, 0], [0, 0, 0, 0])).toBe(0.25)
    expect(meanSquaredError([3, -1], [1, 1])).toBe(4)
  })

  it('relative RMSE is RMS(A − Â) / RMS(A)', () => {
    const a = [3, 4, 0, 0]
    const aHat = [3, 4, 2, 0]
    const mse = meanSquaredError(a, aHat) // 1
    expect(mse).toBe(1)
    // RMS(A) = sqrt(25 / 4) = 2.5
    expect(relativeRmse(mse, a)).toBeCloseTo(1 / 2.5, 12)
    expect(relativeRmse(0, [0, 0])).toBe(0)
    expect(relativeRmse(1, [0, 0])).toBe(Number.POSITIVE_INFINITY)
  })

  it('salience is positive when ablating a token hurts, negative when it helps, finite at MSE 0', () => {
    expect(salience(0.3, 0.1)).toBeCloseTo(2, 12)
    expect(salience(0.05, 0.1)).toBeCloseTo(-0.5, 12)
    expect(Number.isFinite(salience(0.1, 0))).toBe(true)
    expect(salience(0.1, 0)).toBeGreaterThan(0)
  })

  it('KL: only rounding noise below 0 becomes 0; a real negative value stays visible', () => {
    expect(klOrZeroIfRounding(0.25)).toBe(0.25)
    expect(klOrZeroIfRounding(-1e-8)).toBe(0)
    expect(klOrZeroIfRounding(-0.5 * KL_ROUNDING_TOLERANCE)).toBe(0)
    expect(klOrZeroIfRounding(-2 * KL_ROUNDING_TOLERANCE)).toBe(-2 * KL_ROUNDING_TOLERANCE)
    expect(klOrZeroIfRounding(-0.3)).toBe(-0.3)
  })

  it('KL(P‖Q) is 0 for equal logits (even shifted), positive otherwise', () => {
    expect(klFromLogits([1, 2, 3], [1, 2, 3])).toBeCloseTo(0, 12)
    expect(klFromLogits([1, 2, 3], [11, 12, 13])).toBeCloseTo(0, 12)
    // P = (1/2, 1/2), Q = (e/(1+e), 1/(1+e)) by hand.
    const q0 = Math.E / (1 + Math.E)
    const expected = 0.5 * Math.log(0.5 / q0) + 0.5 * Math.log(0.5 / (1 - q0))
    expect(klFromLogits([0, 0], [1, 0])).toBeCloseTo(expected, 12)
  })

  it('argmin prefers the lowest index on ties', () => {
    expect(argminRange([5, 1, 1, 0, 9], 0, 3)).toBe(1)
    expect(argminRange([5, 1, 1, 0, 9], 2, 3)).toBe(1)
  })
})

describe('counter-based sample stream', () => {
  it('depends only on (seed, position, rollout, step) and lies strictly inside (0, 1)', () => {
    const a = uniformsFor(
      42,
      [
        { position: 3, rollout: 1 },
        { position: 9, rollout: 0 }
      ],
      4
    )
    const b = uniformsFor(42, [{ position: 9, rollout: 0 }], 4)
    expect(Array.from(a.subarray(4, 8))).toEqual(Array.from(b))
    expect(sampleUniform(42, 3, 1, 2)).toBe(a[2])
    expect(sampleUniform(43, 3, 1, 2)).not.toBe(a[2])
    const many = Array.from({ length: 5000 }, (_, i) => sampleUniform(7, i, i % 3, i % 5))
    expect(Math.min(...many)).toBeGreaterThan(0)
    expect(Math.max(...many)).toBeLessThan(1)
    const mean = many.reduce((x, y) => x + y, 0) / many.length
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.02)
  })

  it('the weight generator is reproducible from its seed', () => {
    expect(Array.from(new Rng(5).normals(8))).toEqual(Array.from(new Rng(5).normals(8)))
    expect(Array.from(new Rng(5).normals(8))).not.toEqual(Array.from(new Rng(6).normals(8)))
  })
})
