import type { WorkbenchApi } from '../shared/ipc/api'

declare global {
  interface Window {
    /** Supplied by the Electron preload or by the headless host's /bridge.js. */
    readonly api: WorkbenchApi
  }
}

export {}
