/**
 * Error boundaries for the entry points of a long-lived process: an HTTP route, an upgrade, a
 * WebSocket message, an IPC call, a worker message, a timer. Whatever such a handler throws or
 * rejects with is logged here with what was being done, turned into the caller's error answer, and
 * never left to reach the process (Node ends the process on an uncaught exception). Each kind of
 * entry point wraps its handlers through `guarded` in exactly one place (docs/architecture.md,
 * "Error boundaries").
 */
import type { Logger } from './logger'

/** True when `value` is a promise-like (a handler that went async). */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

/**
 * Calls `handler`; a throw or a rejection is logged as `<what> failed` at error level and handed to
 * `answer` (to send the caller an error value). A throwing `answer` is logged too, never rethrown.
 * Returns the handler's result, or undefined when it failed synchronously.
 */
export function runGuarded<T>(
  log: Logger,
  what: string | (() => string),
  handler: () => T,
  answer?: (error: unknown) => void
): T | undefined {
  const fail = (error: unknown): void => {
    const label = typeof what === 'string' ? what : safeLabel(what)
    log.error(`${label} failed`, error)
    if (!answer) return
    try {
      answer(error)
    } catch (answerError) {
      log.error(`answering the failure of ${label} failed`, answerError)
    }
  }
  try {
    const result = handler()
    if (isThenable(result)) {
      // Kept as the caller's value, with the rejection handled here once.
      Promise.resolve(result).catch(fail)
    }
    return result
  } catch (error) {
    fail(error)
    return undefined
  }
}

/**
 * A listener that runs inside the boundary: `guarded(log, 'a worker message', (m) => …)`. The
 * returned function never throws and never leaves a rejection unhandled.
 */
export function guarded<A extends unknown[]>(
  log: Logger,
  what: string | ((...args: A) => string),
  handler: (...args: A) => unknown,
  answer?: (error: unknown, ...args: A) => void
): (...args: A) => void {
  return (...args: A): void => {
    runGuarded(
      log,
      typeof what === 'string' ? what : () => what(...args),
      () => handler(...args),
      answer ? (error) => answer(error, ...args) : undefined
    )
  }
}

function safeLabel(what: () => string): string {
  try {
    return what()
  } catch {
    return 'a handler'
  }
}
