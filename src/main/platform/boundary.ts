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
  try {
    const result = handler()
    if (isThenable(result)) {
      // Kept as the caller's value, with the rejection handled here once.
      Promise.resolve(result).catch((error: unknown) => fail(log, what, answer, error))
    }
    return result
  } catch (error) {
    fail(log, what, answer, error)
    return undefined
  }
}

/** A handler failed: logged as `<what> failed`, then answered; a throwing `answer` is logged. */
function fail(
  log: Logger,
  what: string | (() => string),
  answer: ((error: unknown) => void) | undefined,
  error: unknown
): void {
  const label = typeof what === 'string' ? what : safeLabel(what)
  log.error(`${label} failed`, error)
  if (!answer) return
  try {
    answer(error)
  } catch (answerError) {
    log.error(`answering the failure of ${label} failed`, answerError)
  }
}

/**
 * A listener that runs inside the boundary: `guarded(log, 'a worker message', (m) => …)`. The
 * returned function never throws and never leaves a rejection unhandled. It makes no closure per
 * call unless the call fails (a worker's messages come through here several times a job).
 */
export function guarded<A extends unknown[]>(
  log: Logger,
  what: string | ((...args: A) => string),
  handler: (...args: A) => unknown,
  answer?: (error: unknown, ...args: A) => void
): (...args: A) => void {
  const failed = (error: unknown, args: A): void =>
    fail(
      log,
      typeof what === 'string' ? what : () => what(...args),
      answer ? (e) => answer(e, ...args) : undefined,
      error
    )
  return (...args: A): void => {
    try {
      const result = handler(...args)
      if (isThenable(result)) Promise.resolve(result).catch((error: unknown) => failed(error, args))
    } catch (error) {
      failed(error, args)
    }
  }
}

function safeLabel(what: () => string): string {
  try {
    return what()
  } catch {
    return 'a handler'
  }
}
