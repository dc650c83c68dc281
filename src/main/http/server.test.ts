import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpHost } from './server'
import { parseRequestTarget } from './requests'

/** Sends raw bytes and resolves with the status line of the answer (or '' when the socket closed). */
export function rawRequest(port: number, text: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolvePromise) => {
    let answer = ''
    const socket = connect(port, '127.0.0.1', () => socket.write(text))
    const done = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolvePromise(answer.split('\r\n')[0] ?? '')
    }
    const timer = setTimeout(done, timeoutMs)
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1')
      if (answer.includes('\r\n')) done()
    })
    socket.on('close', done)
    socket.on('error', done)
  })
}

function upgradeRequest(port: number, target: string, extraHeaders = ''): string {
  return (
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extraHeaders}Connection: Upgrade\r\n` +
    'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
  )
}

describe('request targets', () => {
  it.each([
    ['/', true],
    ['/api/v2/jobs?x=1', true],
    ['/assets/a%20b.js', true],
    ['//', false],
    ['/\\', false],
    ['//x:99999/', false],
    ['/\\evil.example/x', false],
    ['http://127.0.0.1/', false],
    ['*', false],
    ['', false],
    ['/a b', false],
    ['/a\u0000b', false],
    ['a 9000-byte path', false]
  ])('%j is accepted: %s', (label, accepted) => {
    const target = label === 'a 9000-byte path' ? `/${'a'.repeat(9000)}` : label
    const parsed = parseRequestTarget(target)
    expect(parsed.ok).toBe(accepted)
    if (parsed.ok) expect(parsed.url.origin).toBe('http://workbench.invalid')
  })
})

describe('HttpHost: malformed requests are refused and the server keeps serving', () => {
  let host: HttpHost

  beforeAll(async () => {
    host = new HttpHost({ port: 0 })
    host.addUpgrade('/ipc', (_req, socket) => void socket.destroy())
    host.addRoute('/', (_req, res) => {
      res.end('ok')
      return true
    })
    await host.listen()
  })
  afterAll(() => host.close())

  it.each(['//', '/\\', '//x:99999/'])(
    'an upgrade to %j is a 400, never a crash',
    async (target) => {
      expect(await rawRequest(host.port, upgradeRequest(host.port, target))).toBe(
        'HTTP/1.1 400 Bad Request'
      )
      expect(
        await rawRequest(host.port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\n\r\n`)
      ).toBe('HTTP/1.1 200 OK')
    }
  )

  it.each(['//', '/\\', '//x:99999/'])('GET %j is a 400, not a 500', async (target) => {
    expect(
      await rawRequest(host.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\n\r\n`)
    ).toBe('HTTP/1.1 400 Bad Request')
  })

  it('a repeated Host header makes the request invalid (requests and upgrades)', async () => {
    const twoHosts = `Host: 127.0.0.1:${host.port}\r\n`
    expect(
      await rawRequest(
        host.port,
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\n${twoHosts}\r\n`
      )
    ).toBe('HTTP/1.1 400 Bad Request')
    expect(await rawRequest(host.port, upgradeRequest(host.port, '/ipc', twoHosts))).toBe(
      'HTTP/1.1 400 Bad Request'
    )
  })
})
