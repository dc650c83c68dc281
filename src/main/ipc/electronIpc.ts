/**
 * Electron's ipcMain glue, written against the few members it uses (structural types, no runtime
 * import of electron), so the sender checks and subscription cleanup are unit-tested with plain
 * objects and the smoke test can load the real bundle with a stubbed module.
 */
import { invokeChannelNames, type InvokeChannel } from '@shared/ipc/contract'
import type { InvokeResult } from '@shared/ipc/errors'
import type { Router } from '../router/router'
import type { EventHub } from '../router/eventHub'

/** The one channel main pushes events on; the preload fans them out by contract channel name. */
export const EVENT_STREAM_CHANNEL = 'workbench:event'

export interface FrameLike {
  readonly url: string
  readonly parent: FrameLike | null
}

export interface WebContentsLike {
  readonly id: number
  readonly mainFrame: FrameLike
  isDestroyed(): boolean
  send(channel: string, ...args: unknown[]): void
  once(event: 'destroyed', listener: () => void): unknown
  on(event: 'render-process-gone', listener: () => void): unknown
}

export interface InvokeEventLike {
  readonly sender: WebContentsLike
  /** Null when the frame navigated away or was destroyed before the message was handled. */
  readonly senderFrame: FrameLike | null
}

export interface IpcMainLike {
  handle(
    channel: string,
    listener: (event: InvokeEventLike, payload?: unknown) => Promise<unknown>
  ): void
  removeHandler(channel: string): void
}

/**
 * Only the app's own page, in its top frame, may call main. An iframe or a page the window was
 * somehow navigated to gets `forbidden` as data.
 */
export function checkSender(
  event: InvokeEventLike,
  isTrustedUrl: (url: string) => boolean
): string | undefined {
  const frame = event.senderFrame
  if (!frame) return 'the calling frame is gone'
  if (frame.parent !== null || frame !== event.sender.mainFrame) {
    return 'only the main frame may call the Workbench API'
  }
  if (!isTrustedUrl(frame.url)) return `untrusted page ${JSON.stringify(frame.url)}`
  return undefined
}

export interface ElectronIpc {
  /** Streams hub events to one window's renderer until that webContents goes away. */
  attach(contents: WebContentsLike): void
  readonly attachedCount: number
  /** Removes every handler and subscription (app quit, tests). */
  dispose(): void
}

export function registerElectronIpc(options: {
  ipcMain: IpcMainLike
  router: Router
  hub: EventHub
  isTrustedUrl: (url: string) => boolean
}): ElectronIpc {
  const { ipcMain, router, hub, isTrustedUrl } = options
  const subscriptions = new Map<number, () => void>()

  // One ipcMain handler per contract channel (not one generic channel), so Electron itself
  // rejects anything the contract does not name.
  for (const channel of invokeChannelNames) {
    ipcMain.handle(channel, async (event, payload): Promise<InvokeResult<unknown>> => {
      const refusal = checkSender(event, isTrustedUrl)
      if (refusal) return { ok: false, error: { code: 'forbidden', message: refusal } }
      return router.dispatch(channel, payload, { clientId: `window:${event.sender.id}` })
    })
  }

  function detach(id: number): void {
    subscriptions.get(id)?.()
    subscriptions.delete(id)
  }

  return {
    attach(contents) {
      if (subscriptions.has(contents.id)) return
      const id = contents.id
      const unsubscribe = hub.subscribe((channel, payload) => {
        if (contents.isDestroyed()) {
          detach(id)
          return
        }
        contents.send(EVENT_STREAM_CHANNEL, channel, payload)
      })
      subscriptions.set(id, unsubscribe)
      contents.once('destroyed', () => detach(id))
      contents.on('render-process-gone', () => detach(id))
    },
    get attachedCount() {
      return subscriptions.size
    },
    dispose() {
      for (const channel of invokeChannelNames) ipcMain.removeHandler(channel as InvokeChannel)
      for (const id of [...subscriptions.keys()]) detach(id)
    }
  }
}
