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
