import { describe, expect, it } from 'vitest'
import { invokeChannelNames } from '@shared/ipc/contract'
import { probeProviders } from '../engine'
import { createServices } from '../services/createServices'
import {
  EVENT_STREAM_CHANNEL,
  checkSender,
  registerElectronIpc,
  type FrameLike,
  type InvokeEventLike,
  type IpcMainLike,
  type WebContentsLike
} from './electronIpc'

const APP_URL = 'file:///opt/workbench/out/renderer/index.html'
const trusted = (url: string): boolean => url === APP_URL

class FakeIpcMain implements IpcMainLike {
  readonly handlers = new Map<
    string,
    (event: InvokeEventLike, payload?: unknown) => Promise<unknown>
  >()
  handle(
    channel: string,
    listener: (event: InvokeEventLike, payload?: unknown) => Promise<unknown>
  ): void {
    if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`)
    this.handlers.set(channel, listener)
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel)
  }
}

class FakeContents implements WebContentsLike {
  static seq = 1
  readonly id = FakeContents.seq++
  readonly mainFrame: FrameLike = { url: APP_URL, parent: null }
  readonly sent: unknown[][] = []
  destroyed = false
  readonly #listeners = new Map<string, Array<() => void>>()
  isDestroyed(): boolean {
    return this.destroyed
  }
  send(channel: string, ...args: unknown[]): void {
    this.sent.push([channel, ...args])
  }
  once(event: string, listener: () => void): void {
    this.on(event, listener)
  }
  on(event: string, listener: () => void): void {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener])
  }
  fire(event: string): void {
    for (const l of this.#listeners.get(event) ?? []) l()
  }
}

function setup(): {
  ipcMain: FakeIpcMain
  services: ReturnType<typeof createServices>
  ipc: ReturnType<typeof registerElectronIpc>
} {
  const services = createServices({
    runCommand: async () => ({ stdout: '', stderr: '', exitCode: null, spawnError: 'ENOENT' }),
    probeProviders: () => probeProviders(['cpu']),
    pollIntervalMs: 20
  })
  const ipcMain = new FakeIpcMain()
  const ipc = registerElectronIpc({
    ipcMain,
    router: services.router,
    hub: services.hub,
    isTrustedUrl: trusted
  })
  return { ipcMain, services, ipc }
}

describe('checkSender', () => {
  const contents = new FakeContents()
  it('accepts the app page in its main frame', () => {
    expect(
      checkSender({ sender: contents, senderFrame: contents.mainFrame }, trusted)
    ).toBeUndefined()
  })
  it('refuses a gone frame, an iframe and an untrusted page', () => {
    expect(checkSender({ sender: contents, senderFrame: null }, trusted)).toMatch(/gone/)
    const iframe = { url: APP_URL, parent: contents.mainFrame }
    expect(checkSender({ sender: contents, senderFrame: iframe }, trusted)).toMatch(/main frame/)
    const navigated = new FakeContents()
    ;(navigated as { mainFrame: FrameLike }).mainFrame = {
      url: 'https://evil.example/',
      parent: null
    }
    expect(checkSender({ sender: navigated, senderFrame: navigated.mainFrame }, trusted)).toMatch(
      /untrusted page/
    )
  })
})

describe('registerElectronIpc', () => {
  it('registers one handler per contract channel and removes them on dispose', async () => {
    const { ipcMain, ipc, services } = setup()
    expect([...ipcMain.handlers.keys()].sort()).toEqual([...invokeChannelNames].sort())
    ipc.dispose()
    expect(ipcMain.handlers.size).toBe(0)
    await services.dispose()
  })

  it('dispatches a trusted call and answers an untrusted one with forbidden, as data', async () => {
    const { ipcMain, services } = setup()
    const contents = new FakeContents()
    const handler = ipcMain.handlers.get('system:state')!
    const ok = (await handler(
      { sender: contents, senderFrame: contents.mainFrame },
      undefined
    )) as { ok: boolean }
    expect(ok.ok).toBe(true)
    const iframe = { url: APP_URL, parent: contents.mainFrame }
    expect(await handler({ sender: contents, senderFrame: iframe }, undefined)).toEqual({
      ok: false,
      error: { code: 'forbidden', message: 'only the main frame may call the Workbench API' }
    })
    const bad = (await handler(
      { sender: contents, senderFrame: contents.mainFrame },
      { x: 1 }
    )) as {
      ok: boolean
      error: { code: string }
    }
    expect(bad).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    await services.dispose()
  })

  it('streams events to an attached window and cleans up when it is destroyed', async () => {
    const { ipc, services } = setup()
    const contents = new FakeContents()
    ipc.attach(contents)
    ipc.attach(contents)
    expect(ipc.attachedCount).toBe(1)
    expect(services.hub.size).toBe(1)
    await expect.poll(() => contents.sent.length).toBeGreaterThan(0)
    expect(contents.sent[0]![0]).toBe(EVENT_STREAM_CHANNEL)
    expect(contents.sent[0]![1]).toBe('system:changed')

    contents.destroyed = true
    contents.fire('destroyed')
    expect(ipc.attachedCount).toBe(0)
    expect(services.hub.size).toBe(0)
    expect(services.system.polling).toBe(false)
    await services.dispose()
  })

  it('a crashed renderer is unsubscribed too', async () => {
    const { ipc, services } = setup()
    const contents = new FakeContents()
    ipc.attach(contents)
    contents.fire('render-process-gone')
    expect(services.hub.size).toBe(0)
    await services.dispose()
  })
})
