/**
 * Electron main process: thin glue. Services are built by the shared composition root and know
 * nothing of Electron; this file only connects them to ipcMain and creates the one window.
 */
import { app, BrowserWindow, ipcMain, session, utilityProcess } from 'electron'
import { join } from 'node:path'
import { registerElectronIpc } from './ipc/electronIpc'
import { createServices } from './services/createServices'
import { utilityProcessSpawner } from './devices/transport'
import { createMainWindow, lockDownNavigation } from './windows/mainWindow'
import { createUrlTrust, type RendererLocation } from './windows/urlTrust'

const renderer: RendererLocation = {
  file: join(__dirname, '../renderer/index.html'),
  devServerUrl: !app.isPackaged ? process.env['ELECTRON_RENDERER_URL'] : undefined
}
const preload = join(__dirname, '../preload/index.cjs')

app.enableSandbox()

// In the app each device worker is an Electron utilityProcess (the headless host and tests fork
// plain Node children); both speak the same seq-numbered protocol.
const services = createServices({
  appVersion: app.getVersion(),
  devices: { spawnWorker: utilityProcessSpawner(utilityProcess.fork, join(__dirname, 'worker.js')) }
})
const ipc = registerElectronIpc({
  ipcMain,
  router: services.router,
  hub: services.hub,
  isTrustedUrl: createUrlTrust(renderer)
})

function openWindow(): BrowserWindow {
  return createMainWindow({ preload, renderer, onContents: (contents) => ipc.attach(contents) })
}

// Belt and braces: whatever webContents appears (devtools, a future window), it cannot navigate
// or open windows.
app.on('web-contents-created', (_event, contents) => lockDownNavigation(contents))

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})

app.on('will-quit', () => {
  ipc.dispose()
  void services.dispose()
})

void app.whenReady().then(() => {
  // The app asks for no browser permission (camera, notifications, ...): refuse them all.
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) =>
    callback(false)
  )
  services.start()
  openWindow()
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) openWindow()
  })
})
