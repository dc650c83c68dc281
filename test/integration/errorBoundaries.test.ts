/**
 * The error-boundary harness: through the real headless host, a handler of each kind of entry
 * point (HTTP route, upgrade, WebSocket message, IPC call, timer) throws, and the host must answer
 * that caller with an error (or close only that socket), raise no uncaught exception, and keep
 * serving: the state endpoint still answers 200 afterwards (docs/architecture.md, "Error
 * boundaries"). Worker messages are covered by the worker-death tests, which need a device worker.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { probeProviders } from '../../src/main/engine'
import { startHost, type RunningHost } from '../../src/main/host/startHost'

const BOOM = 'boundary harness: thrown on purpose'

function boom(): never {
  throw new Error(BOOM)
}

function get(port: number, token: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      }
    )
    req.on('error', reject)
    req.end()
  })
}

async function openSocket(url: string, origin: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { origin })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  return ws
}

describe('error boundaries of the headless host', () => {
  let host: RunningHost
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => void uncaught.push(err)
  const rendererDir = mkdtempSync(join(tmpdir(), 'talkative-boundary-renderer-'))
  writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><html><body></body></html>')

  const stillServing = async (): Promise<void> => {
    expect(await get(host.http.port, host.http.token, '/api/v2/system/state')).toBe(200)
    expect(uncaught).toEqual([])
  }

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onUncaught)
    host = await startHost({
      port: 0,
      rendererDir,
      services: { probeProviders: () => probeProviders(['cpu']), pollIntervalMs: 20 }
    })
  })
  afterEach(() => {
    vi.restoreAllMocks()
  })
  afterAll(async () => {
    await host?.stop()
    rmSync(rendererDir, { recursive: true, force: true })
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
  })

  it('an HTTP route that throws answers that request with an error', async () => {
    vi.spyOn(host.services.system, 'state').mockImplementation(boom)
    const status = await get(host.http.port, host.http.token, '/api/v2/system/state')
    expect(status).toBeGreaterThanOrEqual(400)
    vi.restoreAllMocks()
    await stillServing()
  })

  it('an upgrade handler that throws closes only that socket', async () => {
    const { port, token } = host.http
    host.http.addUpgrade('/boundary-upgrade', boom)
    const closed = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(
          [
            `GET /boundary-upgrade?token=${token} HTTP/1.1`,
            `Host: 127.0.0.1:${port}`,
            `Origin: http://127.0.0.1:${port}`,
            'Upgrade: websocket',
            'Connection: Upgrade',
            'Sec-WebSocket-Version: 13',
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
            '',
            ''
          ].join('\r\n')
        )
      })
      let text = ''
      socket.on('data', (d) => (text += d.toString()))
      socket.on('close', () => resolve(text))
      socket.on('error', reject)
      socket.setTimeout(10_000, () => reject(new Error('upgrade socket left open')))
    })
    expect(closed).not.toMatch(/^HTTP\/1\.1 101/)
    await stillServing()
  })

  it('an IPC call whose handler throws answers that call with an error; the socket stays open', async () => {
    const { port, token } = host.http
    const ws = await openSocket(
      `ws://127.0.0.1:${port}/ipc?token=${token}`,
      `http://127.0.0.1:${port}`
    )
    const answers: string[] = []
    ws.on('message', (d) => answers.push(d.toString()))
    vi.spyOn(host.services.system, 'state').mockImplementation(boom)
    ws.send(JSON.stringify({ type: 'invoke', id: 'boom', channel: 'system:state' }))
    await expect
      .poll(() => answers.find((a) => a.includes('"boom"')), { timeout: 10_000 })
      .toBeTruthy()
    expect(answers.find((a) => a.includes('"boom"'))).toMatch(/error/i)
    vi.restoreAllMocks()
    ws.send(JSON.stringify({ type: 'invoke', id: 'after', channel: 'system:state' }))
    await expect
      .poll(() => answers.some((a) => a.includes('"after"')), { timeout: 10_000 })
      .toBe(true)
    expect(ws.readyState).toBe(WebSocket.OPEN)
    ws.close()
    await stillServing()
  })

  it('a WebSocket API message whose handler throws gets an error; the socket stays open', async () => {
    const { port, token } = host.http
    const ws = await openSocket(
      `ws://127.0.0.1:${port}/api/v2/ws?token=${token}`,
      `http://127.0.0.1:${port}`
    )
    const answers: string[] = []
    ws.on('message', (d) => answers.push(d.toString()))
    await expect.poll(() => answers.length, { timeout: 10_000 }).toBeGreaterThan(0)
    vi.spyOn(host.services.system, 'state').mockImplementation(boom)
    const before = answers.length
    ws.send(JSON.stringify({ type: 'get_state' }))
    await expect.poll(() => answers.length, { timeout: 10_000 }).toBeGreaterThan(before)
    vi.restoreAllMocks()
    ws.send(JSON.stringify({ type: 'ping' }))
    await expect
      .poll(() => answers.some((a) => a.includes('"pong"')), { timeout: 10_000 })
      .toBe(true)
    expect(ws.readyState).toBe(WebSocket.OPEN)
    ws.close()
    await stillServing()
  })

  it('a timer whose callback throws (the hardware poll) leaves the host serving', async () => {
    const { port, token } = host.http
    const poll = vi.spyOn(host.services.system, 'pollOnce').mockImplementation(boom)
    // A connected client is what starts the poll timer.
    const ws = await openSocket(
      `ws://127.0.0.1:${port}/ipc?token=${token}`,
      `http://127.0.0.1:${port}`
    )
    await expect.poll(() => poll.mock.calls.length, { timeout: 10_000 }).toBeGreaterThan(2)
    ws.close()
    vi.restoreAllMocks()
    await stillServing()
  })
})
