/**
 * The only thing the sandboxed renderer gets from Electron: `window.api` (invoke + on). Channel
 * names are checked against the contract here as well as in main, so a typo fails fast in the page.
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron'
import type { WorkbenchApi } from '@shared/ipc/api'
import { isEventChannel, isInvokeChannel } from '@shared/ipc/contract'
import type { InvokeResult } from '@shared/ipc/errors'

// Must equal EVENT_STREAM_CHANNEL in src/main/ipc/electronIpc.ts (the preload bundle cannot
// import main code); the smoke test checks both sides agree.
const EVENT_STREAM_CHANNEL = 'workbench:event'

const listeners = new Map<string, Set<(payload: unknown) => void>>()

ipcRenderer.on(
  EVENT_STREAM_CHANNEL,
  (_event: IpcRendererEvent, channel: unknown, payload: unknown) => {
    if (typeof channel !== 'string') return
    for (const listener of [...(listeners.get(channel) ?? [])]) {
      try {
        listener(payload)
      } catch (err) {
        console.error(`listener for ${channel} failed`, err)
      }
    }
  }
)

const api: WorkbenchApi = {
  async invoke(channel, input) {
    if (!isInvokeChannel(channel)) {
      return {
        ok: false,
        error: { code: 'unknown_channel', message: `unknown channel ${JSON.stringify(channel)}` }
      }
    }
    try {
      return (await ipcRenderer.invoke(channel, input)) as InvokeResult<never>
    } catch (err) {
      return {
        ok: false,
        error: { code: 'internal', message: err instanceof Error ? err.message : String(err) }
      }
    }
  },
  on(channel, listener) {
    if (!isEventChannel(channel))
      throw new Error(`unknown event channel ${JSON.stringify(channel)}`)
    const set = listeners.get(channel) ?? new Set()
    listeners.set(channel, set)
    const typed = listener as (payload: unknown) => void
    set.add(typed)
    return () => {
      set.delete(typed)
    }
  },
  pathForFile(file) {
    // Only a real dropped File has a path; anything else (or a file made in the page) has none.
    try {
      const p = webUtils.getPathForFile(file as File)
      return p || null
    } catch {
      return null
    }
  }
}

contextBridge.exposeInMainWorld('api', api)
