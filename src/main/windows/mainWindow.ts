import { BrowserWindow, type WebContents } from 'electron'
import type { RendererLocation } from './urlTrust'

/** Navigation and new windows are denied for every webContents the app creates. */
export function lockDownNavigation(contents: WebContents): void {
  contents.setWindowOpenHandler(() => ({ action: 'deny' }))
  contents.on('will-navigate', (event) => event.preventDefault())
  contents.on('will-redirect', (event) => event.preventDefault())
  contents.on('will-attach-webview', (event) => event.preventDefault())
}

/** The one hardened window factory: every BrowserWindow of the app is made here. */
export function createMainWindow(options: {
  preload: string
  renderer: RendererLocation
  onContents?: (contents: WebContents) => void
}): BrowserWindow {
  const window = new BrowserWindow({
    width: 1280,
    height: 860,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'Talkative Workbench',
    autoHideMenuBar: true,
    webPreferences: {
      preload: options.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false
    }
  })
  lockDownNavigation(window.webContents)
  options.onContents?.(window.webContents)
  window.once('ready-to-show', () => window.show())
  if (options.renderer.devServerUrl) void window.loadURL(options.renderer.devServerUrl)
  else void window.loadFile(options.renderer.file)
  return window
}
