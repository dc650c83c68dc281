import { describe, expect, it } from 'vitest'
import { fairOrder, nextChunkSize } from './fairQueue'

const item = (id: string, clientId: string, seq: number) => ({ id, clientId, seq })

describe('fairOrder', () => {
  it('takes one job per client per round instead of first come takes all', () => {
    const items = [
      item('a1', 'A', 1),
      item('a2', 'A', 2),
      item('a3', 'A', 3),
      item('b1', 'B', 4),
      item('c1', 'C', 5)
    ]
    expect(fairOrder(items, new Map()).map((i) => i.id)).toEqual(['a1', 'b1', 'c1', 'a2', 'a3'])
  })

  it('serves the client served longest ago first', () => {
    const items = [item('a1', 'A', 1), item('b1', 'B', 2)]
    expect(
      fairOrder(
        items,
        new Map([
          ['A', 5],
          ['B', 2]
        ])
      ).map((i) => i.id)
    ).toEqual(['b1', 'a1'])
    expect(fairOrder(items, new Map([['A', 1]])).map((i) => i.id)).toEqual(['b1', 'a1'])
  })

  it('keeps each client’s own order', () => {
    const items = [item('b2', 'B', 9), item('a2', 'A', 4), item('b1', 'B', 3), item('a1', 'A', 1)]
    expect(fairOrder(items, new Map()).map((i) => i.id)).toEqual(['a1', 'b1', 'a2', 'b2'])
  })
})

describe('nextChunkSize', () => {
  it.each([
    [100, 2, 2, 26],
    [10, 2, 2, 4],
    [3, 2, 2, 2],
    [1, 4, 2, 1],
    [0, 2, 2, 0],
    [100, 1, 2, 50],
    // Whole engine batches: 433 positions, batches of 32 → 128 (4 batches), never 109.
    [433, 2, 32, 128],
    [40, 2, 32, 32],
    [20, 2, 32, 20]
  ])('remaining %i on %i devices (batch %i) → %i', (remaining, devices, min, want) => {
    expect(nextChunkSize(remaining, devices, min)).toBe(want)
  })
})
