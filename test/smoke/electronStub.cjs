/*
 * Loads the built Electron main bundle (out/main/index.js) in plain Node with a stub `electron`
 * module, drives it through app start-up, and prints one JSON report for mainBundle.test.ts.
 * The stub records; the bundle under test is the real build.
 */
'use strict'
const Module = require('node:module')
const path = require('node:path')
const { pathToFileURL } = require('node:url')

const root = path.resolve(__dirname, '../..')
const report = { handled: [], windows: [], appEvents: [], permissionHandler: false, errors: [] }
const handlers = new Map()
let readyResolve
const ready = new Promise((r) => (readyResolve = r))

function emitterish(target) {
  const listeners = new Map()
  target.on = (name, fn) => {
    listeners.set(name, [...(listeners.get(name) || []), fn])
    return target
  }
  target.once = target.on
  target.emit = (name, ...args) => (listeners.get(name) || []).forEach((fn) => fn(...args))
  target.listenerNames = () => [...listeners.keys()]
  return target
}

let contentsSeq = 1
class BrowserWindow {
  static all = []
  static getAllWindows() {
    return BrowserWindow.all
  }
  constructor(options) {
    const mainFrame = { url: '', parent: null }
    this.options = options
    this.webContents = emitterish({
      id: contentsSeq++,
      mainFrame,
      sent: [],
      isDestroyed: () => false,
      send: (...args) => this.webContents.sent.push(args),
      setWindowOpenHandler: (fn) => (this.webContents.windowOpenHandler = fn)
    })
    emitterish(this)
    BrowserWindow.all.push(this)
    report.windows.push({ webPreferences: options.webPreferences })
  }
  loadFile(file) {
    this.webContents.mainFrame.url = pathToFileURL(file).href
    report.windows.at(-1).loadedFile = file
    return Promise.resolve()
  }
  loadURL(url) {
    report.windows.at(-1).loadedUrl = url
    return Promise.resolve()
  }
  show() {}
}

const electronStub = {
  app: emitterish({
    isPackaged: true,
    enableSandbox: () => (report.sandboxEnabled = true),
    getVersion: () => '0.0.0-smoke',
    whenReady: () => ready,
    quit: () => report.appEvents.push('quit')
  }),
  BrowserWindow,
  ipcMain: {
    handle: (channel, fn) => {
      report.handled.push(channel)
      handlers.set(channel, fn)
    },
    removeHandler: (channel) => handlers.delete(channel)
  },
  session: {
    defaultSession: { setPermissionRequestHandler: () => (report.permissionHandler = true) }
  },
  shell: { openExternal: () => Promise.resolve() },
  // Device workers are utilityProcesses in the app: record what would be forked. The stand-in never
  // answers, which the device manager treats as a worker that is still starting.
  utilityProcess: {
    fork: (modulePath, args) => {
      report.utilityForks = report.utilityForks || []
      report.utilityForks.push({ modulePath, args })
      const { EventEmitter } = require('node:events')
      const proc = new EventEmitter()
      proc.pid = 0
      proc.stdout = null
      proc.stderr = null
      proc.postMessage = () => {}
      proc.kill = () => true
      return proc
    }
  }
}

const originalLoad = Module._load
Module._load = function (request, parent, isMain) {
  if (request === 'electron') return electronStub
  return originalLoad.call(this, request, parent, isMain)
}

async function main() {
  require(path.join(root, 'out/main/index.js'))
  report.appEvents.push(...electronStub.app.listenerNames())
  readyResolve()
  await new Promise((r) => setTimeout(r, 50))

  const win = BrowserWindow.all[0]
  if (win) {
    const wc = win.webContents
    let prevented = false
    wc.emit('will-navigate', { preventDefault: () => (prevented = true) }, 'https://example.com/')
    report.navigationPrevented = prevented
    report.windowOpen = wc.windowOpenHandler
      ? wc.windowOpenHandler({ url: 'https://example.com/' })
      : null
    const event = { sender: wc, senderFrame: wc.mainFrame }
    report.stateFromWindow = await handlers.get('system:state')(event, undefined)
    report.invalidFromWindow = await handlers.get('system:state')(event, { nope: 1 })
    const iframe = { url: wc.mainFrame.url, parent: wc.mainFrame }
    report.fromIframe = await handlers.get('system:state')(
      { sender: wc, senderFrame: iframe },
      undefined
    )
    const deadline = Date.now() + 5000
    while (wc.sent.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25))
    report.firstEvent = wc.sent[0] ? [wc.sent[0][0], wc.sent[0][1]] : null
  }
  process.stdout.write(`SMOKE-REPORT ${JSON.stringify(report)}\n`)
  process.exit(0)
}

main().catch((err) => {
  process.stdout.write(
    `SMOKE-REPORT ${JSON.stringify({ ...report, errors: [String(err && err.stack)] })}\n`
  )
  process.exit(1)
})
