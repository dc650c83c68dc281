import { describe, expect, it } from 'vitest'
import { COLLECT_AFTER_PARSING_BYTES, collectGarbage, collectsAfterParsing } from './heap'

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

describe('collectsAfterParsing', () => {
  it.each([
    ['nothing parsed', 0, false],
    ["the demo's 3.5 kB tokenizer.json alone", 3_569, false],
    ["the demo's tokenizer.json and its 1.8 MB graph validated", 3_569 + 1_775_684, true],
    ['a file that could not be measured', Number.POSITIVE_INFINITY, true],
    ['just under the threshold', COLLECT_AFTER_PARSING_BYTES - 1, false],
    ['at the threshold', COLLECT_AFTER_PARSING_BYTES, true],
    ["GPT-2's 1.4 MB tokenizer.json", 1_355_256, true],
    ["Gemma-3's 33 MB tokenizer.json", 33_384_568, true]
  ])('%s (%d bytes) → %s', (_, bytes, expected) => {
    expect(collectsAfterParsing(bytes)).toBe(expected)
  })
})
