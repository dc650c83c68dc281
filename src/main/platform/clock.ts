/**
 * Time as a dependency: the device manager and its worker clients read the time and set every
 * timer through a Clock, so tests drive them with a manual clock instead of sleeping.
 */
import { guarded } from './boundary'
import { createLogger } from './logger'

export interface Timer {
  cancel(): void
}

export interface Clock {
  now(): number
  /**
   * Runs `fn` once after `ms`. A `background` timer does not keep the process alive on its own
   * (Node's `unref`).
   */
  after(ms: number, fn: () => void, options?: { background?: boolean }): Timer
  /** Runs `fn` every `ms` until cancelled (always `background`). */
  every(ms: number, fn: () => void): Timer
  /** Runs `fn` once the current work (and its promise callbacks) is done: `setImmediate`. */
  defer(fn: () => void): void
}

const log = createLogger('timers')

/** Every timer callback runs inside the timer boundary: a throw is logged, the process lives on. */
function inBoundary(fn: () => void): () => void {
  return guarded(log, 'a timer callback', fn)
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn, options = {}) {
    const handle = setTimeout(inBoundary(fn), ms)
    if (options.background) handle.unref()
    return { cancel: () => clearTimeout(handle) }
  },
  every(ms, fn) {
    const handle = setInterval(inBoundary(fn), ms)
    handle.unref()
    return { cancel: () => clearInterval(handle) }
  },
  defer(fn) {
    setImmediate(inBoundary(fn))
  }
}
