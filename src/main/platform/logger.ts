/**
 * A small logger: one line per event, prefixed with the part of the app that wrote it. Failures
 * that are deliberately not fatal (a best-effort cleanup, a cancel to a worker that already ended)
 * still leave a line here instead of vanishing in an empty `catch`. Lines go to stderr; tests
 * and hosts may redirect them with `setLogSink`.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export interface LogEntry {
  level: LogLevel
  scope: string
  message: string
  /** The error's message, when the entry reports one. */
  error?: string
}

export type LogSink = (entry: LogEntry) => void

export interface Logger {
  debug(message: string, error?: unknown): void
  info(message: string, error?: unknown): void
  warn(message: string, error?: unknown): void
  error(message: string, error?: unknown): void
  /**
   * A `.catch` handler that logs the failure with what was being done: `warn` by default, `debug`
   * for a failure that is expected now and then (a cancel racing a worker's exit).
   */
  failed(what: string, level?: LogLevel): (error: unknown) => void
}

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 }

function envLevel(): LogLevel {
  const wanted = process.env.TALKATIVE_LOG_LEVEL
  return wanted && wanted in LEVELS ? (wanted as LogLevel) : 'warn'
}

export const consoleSink: LogSink = (entry) => {
  const line = `[${entry.scope}] ${entry.message}${entry.error ? `: ${entry.error}` : ''}`
  if (entry.level === 'error' || entry.level === 'warn') console.error(line)
  else console.log(line)
}

let sink: LogSink = consoleSink
let threshold = envLevel()

/** Sends every entry to `next` (from `threshold` up); returns a function that restores the previous sink. */
export function setLogSink(next: LogSink, level: LogLevel = 'debug'): () => void {
  const previous = { sink, threshold }
  sink = next
  threshold = level
  return () => {
    sink = previous.sink
    threshold = previous.threshold
  }
}

function describe(error: unknown): string | undefined {
  if (error === undefined) return undefined
  if (error instanceof Error) return error.message
  return String(error)
}

export function createLogger(scope: string): Logger {
  const write = (level: LogLevel, message: string, error?: unknown): void => {
    if (LEVELS[level] < LEVELS[threshold]) return
    const entry: LogEntry = { level, scope, message }
    const detail = describe(error)
    if (detail !== undefined) entry.error = detail
    try {
      sink(entry)
    } catch {
      // A broken sink must never turn a log line into a crash.
    }
  }
  return {
    debug: (message, error) => write('debug', message, error),
    info: (message, error) => write('info', message, error),
    warn: (message, error) => write('warn', message, error),
    error: (message, error) => write('error', message, error),
    failed:
      (what, level = 'warn') =>
      (error) =>
        write(level, `${what} failed`, error)
  }
}
