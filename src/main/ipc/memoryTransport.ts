import { isEventChannel, type EventChannel } from '@shared/ipc/contract'
import type { WorkbenchApi } from '@shared/ipc/api'
import type { InvokeResult } from '@shared/ipc/errors'
import type { Router } from '../router/router'
import type { EventHub } from '../router/eventHub'

export interface MemoryClient extends WorkbenchApi {
  readonly clientId: string
  /** Ends the client's event subscription, as a closed window or socket would. */
  close(): void
}

/** Round-trips a value through JSON, as every real transport serialises it. */
function overTheWire<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T)
}

/**
 * A `window.api` for tests and in-process callers: the same router and hub as the real transports,
 * with payloads serialised both ways so nothing that would not survive a wire slips through.
 */
export function createMemoryClient(router: Router, hub: EventHub, clientId: string): MemoryClient {
  const listeners = new Map<EventChannel, Set<(payload: unknown) => void>>()
  let unsubscribeHub: (() => void) | undefined = hub.subscribe((channel, payload) => {
    const wirePayload = overTheWire(payload)
    for (const listener of [...(listeners.get(channel) ?? [])]) listener(wirePayload)
  })

  return {
    clientId,
    async invoke(channel, input) {
      const result = await router.dispatch(channel, overTheWire(input), { clientId })
      return overTheWire(result) as InvokeResult<never>
    },
    on(channel, listener) {
      if (!isEventChannel(channel)) throw new Error(`unknown event channel ${String(channel)}`)
      const set = listeners.get(channel) ?? new Set()
      listeners.set(channel, set)
      const typed = listener as (payload: unknown) => void
      set.add(typed)
      return () => {
        set.delete(typed)
      }
    },
    close() {
      unsubscribeHub?.()
      unsubscribeHub = undefined
      listeners.clear()
    }
  }
}
