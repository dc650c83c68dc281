/**
 * Import progress: tensors and checkpoint bytes done, the rate so far and the time left, reported
 * at most every `intervalMs` (a 300-tensor checkpoint would otherwise flood a UI with events) plus
 * at every stage change and at the end.
 */
import type { ImportProgress } from '@shared/domain/imports'

/** MB/s (10⁶ bytes) so far and the seconds left at that rate; null while unknown. */
export function rateAndEta(
  bytesDone: number,
  bytesTotal: number,
  elapsedMs: number
): { mbPerSecond: number | null; etaSeconds: number | null } {
  if (bytesDone <= 0 || elapsedMs <= 0) return { mbPerSecond: null, etaSeconds: null }
  const perMs = bytesDone / elapsedMs
  return {
    mbPerSecond: (perMs * 1000) / 1e6,
    etaSeconds: Math.max(0, bytesTotal - bytesDone) / perMs / 1000
  }
}

export interface ProgressMeterOptions {
  tensorsTotal: number
  bytesTotal: number
  report: (p: ImportProgress) => void
  now?: () => number
  intervalMs?: number
}

export class ProgressMeter {
  readonly #o: Required<ProgressMeterOptions>
  readonly #startedAt: number
  #stage = 'starting'
  #tensorsDone = 0
  #bytesDone = 0
  #lastReport = -Infinity

  constructor(options: ProgressMeterOptions) {
    this.#o = { now: Date.now, intervalMs: 250, ...options }
    this.#startedAt = this.#o.now()
  }

  get bytesDone(): number {
    return this.#bytesDone
  }

  get elapsedMs(): number {
    return this.#o.now() - this.#startedAt
  }

  /** A new stage is always reported. */
  stage(name: string): void {
    this.#stage = name
    this.flush()
  }

  bytes(n: number): void {
    this.#bytesDone += n
    this.#maybeReport()
  }

  tensorDone(): void {
    this.#tensorsDone++
    this.#maybeReport()
  }

  snapshot(): ImportProgress {
    return {
      stage: this.#stage,
      tensorsDone: this.#tensorsDone,
      tensorsTotal: this.#o.tensorsTotal,
      bytesDone: this.#bytesDone,
      bytesTotal: this.#o.bytesTotal,
      ...rateAndEta(this.#bytesDone, this.#o.bytesTotal, this.elapsedMs)
    }
  }

  flush(): void {
    this.#lastReport = this.#o.now()
    this.#o.report(this.snapshot())
  }

  #maybeReport(): void {
    if (this.#o.now() - this.#lastReport >= this.#o.intervalMs) this.flush()
  }
}
