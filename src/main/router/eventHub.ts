import { eventChannels, type EventChannel, type EventPayload } from '@shared/ipc/contract'
import { AppError, describeZodError } from '@shared/ipc/errors'
import { createLogger } from '../platform/logger'

const log = createLogger('events')

type Listener = (channel: EventChannel, payload: unknown) => void

/**
 * Fan-out of pushed events to every connected client. Services get `emit` injected; transports
 * `subscribe` per client and call the returned function when the client goes away.
 */
export class EventHub {
  readonly #listeners = new Set<Listener>()
  /** Listeners that are no client (metrics): they hear everything but do not count. */
  readonly #observers = new Set<Listener>()
  readonly #onCountChange: ((count: number) => void) | undefined

  constructor(onCountChange?: (count: number) => void) {
    this.#onCountChange = onCountChange
  }

  emit<E extends EventChannel>(channel: E, payload: EventPayload<E>): void {
    // Validate outgoing payloads too: a service that drifts from the contract fails loudly in tests.
    const parsed = eventChannels[channel].payload.safeParse(payload)
    if (!parsed.success) {
      throw new AppError(
        'internal',
        `event ${channel} payload does not match the contract: ${describeZodError(parsed.error).message}`
      )
    }
    for (const l of [...this.#listeners, ...this.#observers]) {
      try {
        l(channel, parsed.data)
      } catch (err) {
        // One broken client must not stop the others from hearing the event.
        log.error(`a listener of ${channel} failed`, err)
      }
    }
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener)
    this.#onCountChange?.(this.#listeners.size)
    return () => {
      if (this.#listeners.delete(listener)) this.#onCountChange?.(this.#listeners.size)
    }
  }

  /**
   * Hears every event without counting as a connected client, so a listener that is always there
   * (the metrics) does not keep the hardware polling on.
   */
  observe(listener: Listener): () => void {
    this.#observers.add(listener)
    return () => {
      this.#observers.delete(listener)
    }
  }

  get size(): number {
    return this.#listeners.size
  }
}
