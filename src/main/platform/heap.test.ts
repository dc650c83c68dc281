import { describe, expect, it } from 'vitest'
import { collectGarbage } from './heap'

describe('collectGarbage', () => {
  it('frees unreachable objects at once, without --expose-gc', () => {
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined()
    collectGarbage()
    let garbage: { i: number; s: string }[] | null = []
    for (let i = 0; i < 500_000; i++) garbage.push({ i, s: `row ${i}` })
    const held = process.memoryUsage().heapUsed
    expect(garbage.length).toBe(500_000)
    garbage = null
    expect(collectGarbage()).toBe(true)
    // Half a million small objects and strings are tens of MB; all of them go.
    expect(held - process.memoryUsage().heapUsed).toBeGreaterThan(20e6)
    // The process's own global is left without `gc`.
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined()
  })
})
