import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { WorkbenchApi } from '@shared/ipc/api'
import { probeProviders } from '../engine'
import { parseHostArgs } from './args'
import { HttpHost, isLoopbackAddress } from '../http/server'
import { prepareIndexHtml } from './staticFiles'
import { startHost, type RunningHost } from './startHost'

const INDEX = `<!doctype html><html><head><meta charset="UTF-8" />
<meta http-equiv="Content-Security-Policy" content="default-src 'self'" />
<script type="module" crossorigin src="./assets/index-abc.js"></script></head><body></body></html>`

function rendererFixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'workbench-renderer-'))
  mkdirSync(join(dir, 'assets'))
  writeFileSync(join(dir, 'index.html'), INDEX)
  writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log("app")')
  writeFileSync(join(tmpdir(), 'workbench-secret.txt'), 'secret')
  return dir
}

interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

function get(
  port: number,
  path: string,
  headers: Record<string, string> = {}
): Promise<RawResponse> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (body += chunk))
      res.on('end', () =>
        resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body })
      )
    })
    req.on('error', reject)
    req.end()
  })
}

/** Opens /ipc with chosen headers; resolves to the socket or to the HTTP status it was refused with. */
function openSocket(
  port: number,
  opts: { token?: string; origin?: string; host?: string }
): Promise<WebSocket | number> {
  const query = opts.token === undefined ? '' : `?token=${encodeURIComponent(opts.token)}`
  return new Promise((resolvePromise) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ipc${query}`, {
      origin: opts.origin,
      headers: opts.host ? { host: opts.host } : {}
    })
    ws.once('open', () => resolvePromise(ws))
    ws.once('unexpected-response', (_req, res) => resolvePromise(res.statusCode ?? 0))
    ws.once('error', () => resolvePromise(-1))
  })
}

function call(ws: WebSocket, frame: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise) => {
    const onMessage = (data: WebSocket.RawData): void => {
      const message = JSON.parse(data.toString()) as Record<string, unknown>
      if (message.type !== 'result') return
      ws.off('message', onMessage)
      resolvePromise(message)
    }
    ws.on('message', onMessage)
    ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  })
}

describe('headless host', () => {
  let host: RunningHost
  let port: number
  let origin: string

  beforeAll(async () => {
    host = await startHost({
      port: 0,
      rendererDir: rendererFixture(),
      services: { probeProviders: () => probeProviders(['cpu']), pollIntervalMs: 25 }
    })
    port = host.http.port
    origin = `http://127.0.0.1:${port}`
  })

  afterAll(async () => {
    await host.stop()
  })

  it('prints a loopback URL with a long random token', () => {
    expect(host.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/)
    expect(new HttpHost().token).not.toBe(new HttpHost().token)
  })

  it('serves index.html with the bridge first and a strict CSP header instead of the meta', async () => {
    const res = await get(port, '/?token=whatever')
    expect(res.status).toBe(200)
    expect(res.body).toContain('<script src="/bridge.js"></script>')
    expect(res.body.indexOf('/bridge.js')).toBeLessThan(res.body.indexOf('./assets/index-abc.js'))
    expect(res.body).not.toContain('http-equiv')
    const csp = String(res.headers['content-security-policy'])
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${port}`)
    expect(csp).toContain("frame-ancestors 'none'")
    expect(res.headers['x-content-type-options']).toBe('nosniff')
  })

  it('serves assets and the bridge, nothing outside the renderer folder', async () => {
    expect((await get(port, '/assets/index-abc.js')).body).toBe('console.log("app")')
    expect((await get(port, '/bridge.js')).body).toContain("Object.defineProperty(window, 'api'")
    expect((await get(port, '/../workbench-secret.txt')).status).toBe(404)
    expect((await get(port, '/%2e%2e/workbench-secret.txt')).status).toBe(404)
    expect((await get(port, '/missing.js')).status).toBe(404)
  })

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    expect((await get(port, '/', { host: `evil.example:${port}` })).status).toBe(421)
    expect((await get(port, '/', { host: `localhost:${port}` })).status).toBe(200)
  })

  it('refuses WebSocket upgrades without the token, from another origin or host', async () => {
    expect(await openSocket(port, { origin })).toBe(401)
    expect(await openSocket(port, { token: 'wrong', origin })).toBe(401)
    expect(await openSocket(port, { token: host.http.token, origin: 'https://evil.example' })).toBe(
      403
    )
    expect(await openSocket(port, { token: host.http.token })).toBe(403)
    expect(await openSocket(port, { token: host.http.token, origin, host: 'evil.example' })).toBe(
      421
    )
  })

  it('speaks the contract over /ipc: results, errors as data, events', async () => {
    const ws = await openSocket(port, { token: host.http.token, origin })
    expect(ws).toBeInstanceOf(WebSocket)
    const socket = ws as WebSocket
    const events: unknown[] = []
    socket.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { type: string }
      if (m.type === 'event') events.push(m)
    })

    const ok = await call(socket, { type: 'invoke', id: 1, channel: 'system:state' })
    expect(ok).toMatchObject({
      type: 'result',
      id: 1,
      result: { ok: true, value: { cpu: { id: 'cpu' } } }
    })

    const invalid = await call(socket, {
      type: 'invoke',
      id: 2,
      channel: 'system:state',
      payload: { a: 1 }
    })
    expect(invalid).toMatchObject({
      id: 2,
      result: { ok: false, error: { code: 'invalid_input' } }
    })

    const unknown = await call(socket, { type: 'invoke', id: 3, channel: 'fs:delete' })
    expect(unknown).toMatchObject({
      id: 3,
      result: { ok: false, error: { code: 'unknown_channel' } }
    })

    const garbage = await call(socket, '{not json')
    expect(garbage).toMatchObject({
      id: null,
      result: { ok: false, error: { code: 'invalid_input' } }
    })

    // Other services (the device manager) push their own events too, in no fixed order with ours.
    // The first poll probes the providers and runs nvidia-smi: seconds on a loaded machine.
    await expect
      .poll(() => events.some((e) => (e as { channel?: string }).channel === 'system:changed'), {
        timeout: 15_000
      })
      .toBe(true)
    expect(
      events.find((e) => (e as { channel?: string }).channel === 'system:changed')
    ).toMatchObject({
      type: 'event',
      channel: 'system:changed',
      payload: { cpu: { id: 'cpu' } }
    })
    expect(host.services.system.polling).toBe(true)
    socket.close()
    await expect.poll(() => host.services.hub.size).toBe(0)
    expect(host.services.system.polling).toBe(false)
  })

  it('bridge.js gives a page a working window.api over the same socket', async () => {
    const script = (await get(port, '/bridge.js')).body
    class PageSocket extends WebSocket {
      constructor(url: string) {
        super(url, { origin })
      }
    }
    const window = {} as { api?: WorkbenchApi }
    const store = new Map<string, string>()
    runInNewContext(script, {
      window,
      location: {
        search: `?token=${host.http.token}`,
        host: `127.0.0.1:${port}`,
        protocol: 'http:'
      },
      sessionStorage: {
        getItem: (k: string) => store.get(k) ?? null,
        setItem: (k: string, v: string) => store.set(k, v)
      },
      WebSocket: PageSocket,
      URLSearchParams,
      console,
      setTimeout
    })
    const api = window.api!
    const state = await api.invoke('system:state')
    expect(state.ok && state.value.cpu.cores).toBeGreaterThan(0)
    expect(await api.invoke('system:state', { bad: true } as never)).toMatchObject({
      ok: false,
      error: { code: 'invalid_input' }
    })
    const pushed: number[] = []
    const off = api.on('system:changed', (s) => pushed.push(s.takenAt))
    await expect.poll(() => pushed.length).toBeGreaterThan(0)
    off()
    expect(() => api.on('nope:never' as never, () => undefined)).toThrow(/unknown event channel/)
    expect(store.get('workbench.token')).toBe(host.http.token)
  })

  it('a page with a wrong token gets an error as data, not a hang', async () => {
    const script = (await get(port, '/bridge.js')).body
    const window = {} as { api?: WorkbenchApi }
    runInNewContext(script, {
      window,
      location: { search: '?token=nope', host: `127.0.0.1:${port}`, protocol: 'http:' },
      sessionStorage: { getItem: () => null, setItem: () => undefined },
      WebSocket: class extends WebSocket {
        constructor(url: string) {
          super(url, { origin })
          this.on('error', () => undefined)
        }
      },
      URLSearchParams,
      console,
      setTimeout
    })
    expect(await window.api!.invoke('system:state')).toMatchObject({
      ok: false,
      error: { code: 'unavailable' }
    })
  })
})

describe('host pieces', () => {
  it('puts the bridge before the first script, or before </head> when there is none', () => {
    expect(prepareIndexHtml('<head><script src="a.js"></script></head>')).toMatch(
      /<script src="\/bridge.js"><\/script>\s*<script src="a.js">/
    )
    expect(prepareIndexHtml('<head></head>')).toContain('<script src="/bridge.js"></script>')
  })

  it('parses --port and --host and rejects nonsense', () => {
    expect(parseHostArgs([])).toEqual({ host: '127.0.0.1', port: 0, rendererDir: undefined })
    expect(parseHostArgs(['--port', '8123', '--host', '0.0.0.0'])).toMatchObject({
      port: 8123,
      host: '0.0.0.0'
    })
    expect(() => parseHostArgs(['--port', 'abc'])).toThrow(/--port must be an integer/)
    expect(() => parseHostArgs(['--port', '70000'])).toThrow(/--port/)
    expect(() => parseHostArgs(['--bogus'])).toThrow()
  })

  it('parses compat mode: --compat with repeatable --allow-origin, origins only', () => {
    expect(
      parseHostArgs([
        '--compat',
        '--allow-origin',
        'http://localhost:3000/',
        '--allow-origin',
        'https://a.example'
      ]).compatOrigins
    ).toEqual(['http://localhost:3000', 'https://a.example'])
    expect(parseHostArgs(['--compat']).compatOrigins).toEqual([])
    expect(() => parseHostArgs(['--allow-origin', 'http://localhost:3000'])).toThrow(/--compat/)
    expect(() => parseHostArgs(['--compat', '--allow-origin', '*'])).toThrow(/name each origin/)
    expect(() => parseHostArgs(['--compat', '--allow-origin', 'http://x.example/app'])).toThrow(
      /no path/
    )
    expect(() => parseHostArgs(['--compat', '--allow-origin', 'file:///x'])).toThrow(/http/)
  })

  it('knows loopback from LAN addresses', () => {
    expect(isLoopbackAddress('127.0.0.1')).toBe(true)
    expect(isLoopbackAddress('localhost')).toBe(true)
    expect(isLoopbackAddress('::1')).toBe(true)
    expect(isLoopbackAddress('0.0.0.0')).toBe(false)
    expect(isLoopbackAddress('192.168.1.20')).toBe(false)
  })
})
