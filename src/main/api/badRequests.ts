import { guarded } from '../platform/boundary'
import { createLogger } from '../platform/logger'

const log = createLogger('api')

/**
 * Counts rejected requests (4xx) and logs their rate at most once per interval, so a misbehaving
 * script or a scan shows up in the log without one line per request.
 */
export class BadRequestLog {
  readonly #intervalMs: number
  readonly #log: (line: string) => void
  readonly #now: () => number
  #windowStart: number
  #byStatus = new Map<number, number>()
  #total = 0
  readonly #timer: NodeJS.Timeout

  constructor(options: { intervalMs?: number; log?: (line: string) => void; now?: () => number }) {
    this.#intervalMs = options.intervalMs ?? 60_000
    this.#log = options.log ?? ((line) => console.warn(line))
    this.#now = options.now ?? Date.now
    this.#windowStart = this.#now()
    this.#timer = setInterval(
      guarded(log, 'the bad-request summary', () => this.flush()),
      this.#intervalMs
    )
    this.#timer.unref()
  }

  /** Every rejected request since launch. */
  get total(): number {
    return this.#total
  }

  record(status: number): void {
    this.#total += 1
    this.#byStatus.set(status, (this.#byStatus.get(status) ?? 0) + 1)
  }

  flush(): void {
    const now = this.#now()
    const count = [...this.#byStatus.values()].reduce((a, b) => a + b, 0)
    if (count > 0) {
      const seconds = Math.max(1, Math.round((now - this.#windowStart) / 1000))
      const parts = [...this.#byStatus.entries()]
        .sort(([a], [b]) => a - b)
        .map(([status, n]) => `${status}: ${n}`)
      this.#log(
        `api/v2: ${count} bad request${count === 1 ? '' : 's'} in the last ${seconds} s (${parts.join(', ')})`
      )
    }
    this.#byStatus = new Map()
    this.#windowStart = now
  }

  close(): void {
    clearInterval(this.#timer)
    this.flush()
  }
}
