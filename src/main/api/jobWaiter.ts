import { TERMINAL_JOB_STATUSES, type JobState } from '@shared/domain/jobs'
import { AppError } from '@shared/ipc/errors'
import type { Router } from '../router/router'
import type { EventHub } from '../router/eventHub'

interface Waiter {
  resolve: (state: JobState) => void
  reject: (err: AppError) => void
}

/**
 * Resolves when jobs finish, from the hub's `jobs:changed` events. It listens only while someone
 * waits, so an idle API does not count as a connected client (that would keep GPU polling on).
 */
export class JobWaiter {
  readonly #hub: EventHub
  readonly #router: Router
  readonly #waiting = new Map<string, Waiter[]>()
  #unsubscribe: (() => void) | undefined
  #closed = false

  constructor(hub: EventHub, router: Router) {
    this.#hub = hub
    this.#router = router
  }

  /**
   * The job's terminal state; null when the job is unknown. Rejects with `unavailable` when the
   * API closes first.
   */
  async wait(jobId: string, clientId: string): Promise<JobState | null> {
    if (this.#closed) throw closedError(jobId)
    const finished = new Promise<JobState>((resolve, reject) => {
      const list = this.#waiting.get(jobId) ?? []
      list.push({ resolve, reject })
      this.#waiting.set(jobId, list)
    })
    // close() may reject it before the caller gets it (while jobs:get is in flight).
    finished.catch(() => undefined)
    this.#unsubscribe ??= this.#hub.subscribe((channel, payload) => {
      if (channel !== 'jobs:changed') return
      const state = payload as JobState
      if (TERMINAL_JOB_STATUSES.includes(state.status)) this.#settle(state)
    })
    // Subscribed first, then read: a job that finished in between is seen here.
    const now = await this.#router.dispatch('jobs:get', { jobId }, { clientId })
    if (this.#closed) return finished
    if (!now.ok) {
      this.#drop(jobId)
      return null
    }
    const state = now.value as JobState
    if (TERMINAL_JOB_STATUSES.includes(state.status)) this.#settle(state)
    return finished
  }

  #settle(state: JobState): void {
    const list = this.#waiting.get(state.id)
    if (!list) return
    this.#drop(state.id)
    for (const waiter of list) waiter.resolve(state)
  }

  #drop(jobId: string): void {
    this.#waiting.delete(jobId)
    if (this.#waiting.size === 0 && this.#unsubscribe) {
      this.#unsubscribe()
      this.#unsubscribe = undefined
    }
  }

  /** Stops listening; every pending wait rejects, so no request handler is left hanging. */
  close(): void {
    this.#closed = true
    const pending = [...this.#waiting]
    this.#waiting.clear()
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    for (const [jobId, list] of pending)
      for (const waiter of list) waiter.reject(closedError(jobId))
  }
}

function closedError(jobId: string): AppError {
  return new AppError('unavailable', `the API is closing; job ${jobId} was not waited for`)
}
