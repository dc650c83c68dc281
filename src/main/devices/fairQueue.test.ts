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

/** The rounds, without the one-client shortcut: what fairOrder answered before it had one. */
function byRounds<T extends { id: string; clientId: string; seq: number }>(
  items: T[],
  lastServed: ReadonlyMap<string, number>
): string[] {
  const byClient = new Map<string, T[]>()
  for (const it of [...items].sort((a, b) => a.seq - b.seq))
    byClient.set(it.clientId, [...(byClient.get(it.clientId) ?? []), it])
  const clients = [...byClient.keys()].sort(
    (a, b) =>
      (lastServed.get(a) ?? -Infinity) - (lastServed.get(b) ?? -Infinity) ||
      byClient.get(a)![0]!.seq - byClient.get(b)![0]!.seq
  )
  const out: string[] = []
  for (let round = 0; out.length < items.length; round++)
    for (const c of clients) {
      const it = byClient.get(c)![round]
      if (it) out.push(it.id)
    }
  return out
}

describe('fairOrder: one client', () => {
  const served = new Map([['A', 3]])
  it.each([
    ['empty', []],
    ['one job', [item('a1', 'A', 7)]],
    ['in order', [item('a1', 'A', 1), item('a2', 'A', 2), item('a3', 'A', 5)]],
    ['out of order', [item('a3', 'A', 9), item('a1', 'A', 2), item('a2', 'A', 4)]],
    ['a client never served', [item('b2', 'B', 6), item('b1', 'B', 5)]]
  ])('%s: submission order, as the rounds give', (_, items) => {
    const got = fairOrder(items, served).map((i) => i.id)
    expect(got).toEqual(byRounds(items, served))
    expect(got).toEqual([...items].sort((a, b) => a.seq - b.seq).map((i) => i.id))
  })

  it('two clients still take turns (the shortcut is for one client only)', () => {
    const items = [item('a1', 'A', 1), item('a2', 'A', 2), item('b1', 'B', 3)]
    expect(fairOrder(items, served).map((i) => i.id)).toEqual(byRounds(items, served))
    expect(fairOrder(items, served).map((i) => i.id)).toEqual(['b1', 'a1', 'a2'])
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
