import { TERMINAL_JOB_STATUSES, type JobState } from '@shared/domain/jobs'
import type { EventHub, Router } from '../ipc/router'

/**
 * Resolves when jobs finish, from the hub's `jobs:changed` events. It listens only while someone
 * waits, so an idle API does not count as a connected client (that would keep GPU polling on).
 */
export class JobWaiter {
  readonly #hub: EventHub
  readonly #router: Router
  readonly #waiting = new Map<string, Array<(state: JobState) => void>>()
  #unsubscribe: (() => void) | undefined

  constructor(hub: EventHub, router: Router) {
    this.#hub = hub
    this.#router = router
  }

  /** The job's terminal state; null when the job is unknown. */
  async wait(jobId: string, clientId: string): Promise<JobState | null> {
    const finished = new Promise<JobState>((resolve) => {
      const list = this.#waiting.get(jobId) ?? []
      list.push(resolve)
      this.#waiting.set(jobId, list)
    })
    this.#unsubscribe ??= this.#hub.subscribe((channel, payload) => {
      if (channel !== 'jobs:changed') return
      const state = payload as JobState
      if (TERMINAL_JOB_STATUSES.includes(state.status)) this.#settle(state)
    })
    // Subscribed first, then read: a job that finished in between is seen here.
    const now = await this.#router.dispatch('jobs:get', { jobId }, { clientId })
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
    for (const resolve of list) resolve(state)
  }

  #drop(jobId: string): void {
    this.#waiting.delete(jobId)
    if (this.#waiting.size === 0 && this.#unsubscribe) {
      this.#unsubscribe()
      this.#unsubscribe = undefined
    }
  }

  close(): void {
    this.#waiting.clear()
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
  }
}
