import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../test/helpers/manualClock'
import { createLogger } from '../platform/logger'
import { ChangeNotifier } from './snapshots'

describe('ChangeNotifier', () => {
  it('sends once after the turn, however many changes the turn made', async () => {
    const clock = new ManualClock()
    let sent = 0
    const n = new ChangeNotifier(clock, () => sent++, createLogger('test'))
    n.notify()
    n.notify()
    n.notify()
    expect(sent).toBe(0)
    await clock.advance(0)
    expect(sent).toBe(1)
    n.notify()
    await clock.advance(0)
    expect(sent).toBe(2)
  })

  it('with an interval, coalesces the changes within it into one send at its end', async () => {
    const clock = new ManualClock()
    const sentAt: number[] = []
    const start = clock.now()
    const n = new ChangeNotifier(
      clock,
      () => sentAt.push(clock.now() - start),
      createLogger('test'),
      100
    )
    // The first change after a quiet time goes out after its turn, as without an interval.
    n.notify()
    await clock.advance(0)
    expect(sentAt).toEqual([0])
    // A burst of changes: none before the interval is over, then one.
    for (let t = 0; t < 5; t++) {
      await clock.advance(10)
      n.notify()
    }
    expect(sentAt).toEqual([0])
    await clock.advance(49)
    expect(sentAt).toEqual([0])
    await clock.advance(1)
    expect(sentAt).toEqual([0, 100])
    // Quiet again for longer than the interval: the next change goes out after its turn.
    await clock.advance(300)
    n.notify()
    await clock.advance(0)
    expect(sentAt).toEqual([0, 100, 400])
  })

  it('sends nothing once closed, not even a change already waiting', async () => {
    const clock = new ManualClock()
    let sent = 0
    const n = new ChangeNotifier(clock, () => sent++, createLogger('test'), 100)
    n.notify()
    await clock.advance(0)
    n.notify()
    n.close()
    await clock.advance(200)
    n.notify()
    await clock.advance(200)
    expect(sent).toBe(1)
  })
})
