/**
 * A Clock that only moves when a test moves it: timers fire in due order as the test advances
 * time, and promise callbacks settle between them. Code under test that uses the Clock for every
 * timer (the device manager, its worker clients, scripted workers) then runs the same way on every
 * machine, however loaded, and a test waits for a condition instead of sleeping.
 */
import type { Clock, Timer } from '../../src/main/platform/clock'

interface Pending {
  id: number
  /** Tie-break between timers due at the same time: the one set first fires first. */
  seq: number
  due: number
  fn: () => void
  /** Period of a repeating timer. */
  every?: number
}

/** Lets every promise callback that is ready run (a real turn of the event loop). */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

export class ManualClock implements Clock {
  #now: number
  #seq = 0
  #ids = 0
  readonly #timers = new Map<number, Pending>()

  constructor(start = 1_000_000) {
    this.#now = start
  }

  now(): number {
    return this.#now
  }

  after(ms: number, fn: () => void): Timer {
    return this.#add(this.#now + Math.max(0, ms), fn)
  }

  every(ms: number, fn: () => void): Timer {
    return this.#add(this.#now + Math.max(1, ms), fn, Math.max(1, ms))
  }

  defer(fn: () => void): void {
    this.#add(this.#now, fn)
  }

  #add(due: number, fn: () => void, every?: number): Timer {
    const id = ++this.#ids
    this.#timers.set(id, { id, seq: ++this.#seq, due, fn, every })
    return { cancel: () => this.#timers.delete(id) }
  }

  #next(): Pending | undefined {
    let next: Pending | undefined
    for (const t of this.#timers.values()) {
      if (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq)) next = t
    }
    return next
  }

  #fire(t: Pending): void {
    this.#now = Math.max(this.#now, t.due)
    if (t.every) {
      t.due += t.every
      t.seq = ++this.#seq
    } else {
      this.#timers.delete(t.id)
    }
    t.fn()
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms
    await flush()
    for (let next = this.#next(); next && next.due <= end; next = this.#next()) {
      this.#fire(next)
      await flush()
    }
    this.#now = end
    await flush()
  }

  /**
   * Runs timers in due order until `check` holds. Waiting on real work (file reads) does not move
   * time; `within` bounds how far time may move before the wait counts as failed.
   */
  async until(what: string, check: () => boolean, within = 10_000): Promise<void> {
    const limit = this.#now + within
    let idleTurns = 0
    await flush()
    while (!check()) {
      const next = this.#next()
      if (next && next.due <= limit) {
        this.#fire(next)
        idleTurns = 0
      } else if (next) {
        this.#now = limit
        throw new Error(`${what}: still waiting after ${within} ms`)
      } else if (++idleTurns > 10_000) {
        throw new Error(`${what}: nothing left to run`)
      }
      await flush()
    }
  }

  /** Runs the clock until `p` settles; its value (or its rejection). */
  async settle<T>(p: Promise<T>, within = 10_000): Promise<T> {
    let settled = false
    const watched = p.then(
      (value) => {
        settled = true
        return value
      },
      (err: unknown) => {
        settled = true
        throw err
      }
    )
    // Observed here so a rejection waiting for the clock is never reported as unhandled.
    watched.catch(() => undefined)
    await this.until('a promise to settle', () => settled, within)
    return watched
  }

  /** Whether `p` settles within `within` ms of this clock. */
  async settles(p: Promise<unknown>, within: number): Promise<'settled' | 'pending'> {
    let settled = false
    p.then(
      () => (settled = true),
      () => (settled = true)
    )
    try {
      await this.until('a promise to settle', () => settled, within)
      return 'settled'
    } catch {
      return 'pending'
    }
  }
}
