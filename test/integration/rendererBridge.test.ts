/**
 * The renderer's bridge and store against the real main-side services, over the in-memory
 * transport: what the page would show, without a browser.
 */
import * as os from 'node:os'
import { afterEach, describe, expect, it } from 'vitest'
import { createStore } from 'zustand/vanilla'
import { probeProviders } from '../../src/main/engine/ort'
import { createMemoryClient } from '../../src/main/ipc/memoryTransport'
import { createServices, type Services } from '../../src/main/services/createServices'
import { startBridge } from '../../src/renderer/src/ipc/bridge'
import { initialAppState, type AppState } from '../../src/renderer/src/store'
import { selectDevices } from '../../src/renderer/src/store/selectors'

describe('renderer bridge on the real services', () => {
  let services: Services | undefined
  afterEach(async () => {
    await services?.dispose()
  })

  it('fills the store with this machine and keeps it live, then lets go', async () => {
    services = createServices({ probeProviders: () => probeProviders(['cpu']), pollIntervalMs: 25 })
    const client = createMemoryClient(services.router, services.hub, 'renderer')
    const store = createStore<AppState>()(() => ({ ...initialAppState }))
    const stop = startBridge(client, store)

    await expect.poll(() => store.getState().system.status).toBe('ready')
    const [cpu] = selectDevices(store.getState())
    expect(cpu).toMatchObject({
      id: 'cpu',
      cores: os.cpus().length,
      memoryTotalBytes: os.totalmem()
    })
    await expect.poll(() => store.getState().system.updates).toBeGreaterThan(0)

    stop()
    const updates = store.getState().system.updates
    await new Promise((r) => setTimeout(r, 100))
    expect(store.getState().system.updates).toBe(updates)
    client.close()
  })

  it('reads the whole state again when the host bridge says its socket reconnected', async () => {
    services = createServices({ probeProviders: () => probeProviders(['cpu']) })
    const client = createMemoryClient(services.router, services.hub, 'renderer')
    const invoked: string[] = []
    const counting = {
      invoke: (channel: string, input?: unknown) => {
        invoked.push(channel)
        return client.invoke(channel as never, input as never)
      },
      on: client.on.bind(client)
    } as unknown as typeof client
    // The page's window: bridge.js fires `workbench:reconnected` on it after a dropped socket.
    const page = new EventTarget()
    const g = globalThis as unknown as Record<string, unknown>
    g.addEventListener = page.addEventListener.bind(page)
    g.removeEventListener = page.removeEventListener.bind(page)
    try {
      const store = createStore<AppState>()(() => ({ ...initialAppState }))
      const stop = startBridge(counting, store)
      await expect.poll(() => store.getState().system.status).toBe('ready')
      const boot = invoked.filter((c) => c === 'sessions:list').length
      expect(boot).toBe(1)
      page.dispatchEvent(new Event('workbench:reconnected'))
      await expect.poll(() => invoked.filter((c) => c === 'sessions:list').length).toBe(2)
      expect(invoked.filter((c) => c === 'system:state')).toHaveLength(2)
      expect(invoked.filter((c) => c === 'devices:state')).toHaveLength(2)
      stop()
      page.dispatchEvent(new Event('workbench:reconnected'))
      await new Promise((r) => setTimeout(r, 50))
      expect(invoked.filter((c) => c === 'sessions:list')).toHaveLength(2)
    } finally {
      delete g.addEventListener
      delete g.removeEventListener
      client.close()
    }
  })

  it('shows an error, not a crash, when the main side refuses', async () => {
    services = createServices({ probeProviders: () => probeProviders(['cpu']) })
    const client = createMemoryClient(services.router, services.hub, 'renderer')
    // No event stream (a pushed snapshot would rightly turn the status back to ready) and an
    // invoke the router refuses.
    client.close()
    const refusing = {
      invoke: () => client.invoke('system:state', { nope: 1 } as never),
      on: () => () => undefined
    }
    const store = createStore<AppState>()(() => ({ ...initialAppState }))
    startBridge(refusing as unknown as typeof client, store)
    await expect.poll(() => store.getState().system.status).toBe('error')
    expect(store.getState().system.error?.code).toBe('invalid_input')
  })
})
