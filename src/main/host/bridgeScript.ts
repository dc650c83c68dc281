/**
 * /bridge.js: the browser-side twin of the Electron preload. It defines `window.api` (invoke + on,
 * results as data) over one WebSocket to /ipc on the page's own origin, authenticated with the
 * per-launch token from the page URL. Kept as plain ES2020 text because it is served as-is, before
 * the renderer bundle; the wire format it speaks is `WireMessage` in ./wsIpc.ts.
 */
export function createBridgeScript(eventChannels: readonly string[]): string {
  return String.raw`(() => {
  'use strict'
  const EVENT_CHANNELS = new Set(${JSON.stringify(eventChannels)})
  const TOKEN_KEY = 'workbench.token'
  const params = new URLSearchParams(location.search)
  let token = params.get('token') || ''
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token)
    else token = sessionStorage.getItem(TOKEN_KEY) || ''
  } catch (_) {
    // Storage may be disabled; the token in the URL is enough.
  }
  const socketUrl =
    (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ipc?token=' +
    encodeURIComponent(token)

  const pending = new Map()
  const listeners = new Map()
  let nextId = 1
  let socket = null
  let opened = null
  let retryDelay = 250
  let everOpened = false

  function failAll(message) {
    for (const resolve of pending.values()) {
      resolve({ ok: false, error: { code: 'unavailable', message } })
    }
    pending.clear()
  }

  function connect() {
    if (opened) return opened
    opened = new Promise((resolve) => {
      const ws = new WebSocket(socketUrl)
      socket = ws
      ws.onopen = () => {
        retryDelay = 250
        resolve(ws)
        // Events pushed while the socket was down are lost: tell the page to read the state again.
        if (everOpened) window.dispatchEvent(new Event('workbench:reconnected'))
        everOpened = true
      }
      ws.onmessage = (message) => {
        let data
        try {
          data = JSON.parse(message.data)
        } catch (_) {
          return
        }
        if (data && data.type === 'result') {
          const done = pending.get(data.id)
          if (done) {
            pending.delete(data.id)
            done(data.result)
          }
        } else if (data && data.type === 'event') {
          for (const listener of Array.from(listeners.get(data.channel) || [])) {
            try {
              listener(data.payload)
            } catch (err) {
              console.error('listener for ' + data.channel + ' failed', err)
            }
          }
        }
      }
      ws.onclose = (event) => {
        socket = null
        opened = null
        resolve(null)
        failAll('connection to the Workbench host closed' + (event.code ? ' (' + event.code + ')' : ''))
        // Reconnect while anyone listens, so pushed events resume after a host restart.
        if (listeners.size > 0) {
          setTimeout(connect, retryDelay)
          retryDelay = Math.min(retryDelay * 2, 5000)
        }
      }
    })
    return opened
  }

  const api = {
    invoke(channel, input) {
      return connect().then((ws) => {
        if (!ws || ws.readyState !== WebSocket.OPEN) {
          return { ok: false, error: { code: 'unavailable', message: 'cannot reach the Workbench host (wrong or missing token?)' } }
        }
        const id = nextId++
        return new Promise((resolve) => {
          pending.set(id, resolve)
          ws.send(JSON.stringify({ type: 'invoke', id, channel, payload: input }))
        })
      })
    },
    on(channel, listener) {
      if (!EVENT_CHANNELS.has(channel)) throw new Error('unknown event channel ' + JSON.stringify(channel))
      if (typeof listener !== 'function') throw new TypeError('api.on(channel, listener)')
      let set = listeners.get(channel)
      if (!set) {
        set = new Set()
        listeners.set(channel, set)
      }
      set.add(listener)
      connect()
      return () => {
        set.delete(listener)
        if (set.size === 0) listeners.delete(channel)
      }
    }
  }

  Object.defineProperty(window, 'api', {
    value: Object.freeze(api),
    writable: false,
    configurable: false,
    enumerable: true
  })
})()
`
}
