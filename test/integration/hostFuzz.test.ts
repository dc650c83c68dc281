/**
 * A bounded, seeded fuzz of the headless host's entry points: raw HTTP requests with generated
 * targets, methods and headers (repeated Host, odd origins, upgrades to any path), then generated
 * frames on /ipc and /api/v2/ws. Whatever arrives: no 5xx, no uncaught exception, and the state
 * endpoint still answers afterwards. The seed is printed with a failure, so a case replays
 * (TALKATIVE_FUZZ_SEED; TALKATIVE_FUZZ_CASES sets how many requests and frames).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { probeProviders } from '../../src/main/engine'
import { startHost, type RunningHost } from '../../src/main/host/startHost'

const SEED = Number(process.env.TALKATIVE_FUZZ_SEED ?? 20261129)
const REQUESTS = Number(process.env.TALKATIVE_FUZZ_CASES ?? 300)
const FRAMES = Number(process.env.TALKATIVE_FUZZ_CASES ?? 300)

/** mulberry32: a small, well-mixed seeded generator (tests need replay, not cryptography). */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const PIECES = [
  '/',
  '//',
  '\\',
  '/\\',
  '..',
  '.',
  '%',
  '%2e',
  '%2F',
  '%00',
  '%zz',
  ':',
  '::',
  '@',
  '?',
  '#',
  '&',
  '=',
  'x',
  'ipc',
  'api',
  'v2',
  'ws',
  'system',
  'state',
  'jobs',
  'token=',
  '~',
  '*',
  'http:',
  '99999',
  '[::1]',
  '\u00e9',
  '\u2028',
  'a'.repeat(300)
]
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'G€T', 'CONNECT']

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)]!
}

function target(rand: () => number): string {
  const parts = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => pick(rand, PIECES))
  const text = parts.join('')
  // Most start like a path; some do not (absolute-form, asterisk, nothing at all).
  return rand() < 0.8 && !text.startsWith('/') ? `/${text}` : text
}

/** Sends one raw request; resolves to its status code, or 0 when the host closed without one. */
function rawRequest(port: number, text: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    const done = (): void => {
      socket.destroy()
      resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0))
    }
    socket.setTimeout(10_000, done)
    socket.on('data', (b) => {
      answer += b.toString('latin1')
      if (answer.includes('\r\n')) done()
    })
    socket.on('error', done)
    socket.on('close', done)
    socket.write(Buffer.from(text, 'latin1'))
  })
}

function generatedRequest(rand: () => number, port: number, token: string): string {
  const host = `127.0.0.1:${port}`
  const lines = [`${pick(rand, METHODS)} ${target(rand)} HTTP/1.1`]
  if (rand() < 0.9) lines.push(`Host: ${rand() < 0.9 ? host : pick(rand, PIECES)}`)
  if (rand() < 0.15) lines.push(`Host: ${rand() < 0.5 ? host : 'evil.example'}`)
  if (rand() < 0.4)
    lines.push(`Origin: ${pick(rand, [`http://${host}`, 'null', 'http://evil.example', '//'])}`)
  if (rand() < 0.5) lines.push(`Authorization: Bearer ${rand() < 0.6 ? token : pick(rand, PIECES)}`)
  if (rand() < 0.35) {
    lines.push('Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13')
    if (rand() < 0.8) lines.push('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')
  }
  if (rand() < 0.1)
    lines.push(`X-${pick(rand, PIECES).replace(/[^\w]/g, '')}: ${pick(rand, PIECES)}`)
  return `${lines.join('\r\n')}\r\n\r\n`
}

function stateAnswers(port: number, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/v2/system/state',
        headers: { authorization: `Bearer ${token}` }
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      }
    )
    req.on('error', reject)
    req.end()
  })
}

const CHANNELS = ['system:state', 'devices:state', 'jobs:get', 'no:such', '', '__proto__']
const TYPES = [
  'invoke',
  'get_state',
  'ping',
  'status',
  'subscribe',
  'unsubscribe',
  'cancel_request',
  'x'
]

function value(rand: () => number, depth = 0): unknown {
  const r = rand()
  if (depth > 2 || r < 0.2) return pick(rand, [null, true, 0, -1, 1e308, 'x', '', '*', '../..'])
  if (r < 0.5) return pick(rand, PIECES)
  if (r < 0.7) return Array.from({ length: Math.floor(rand() * 3) }, () => value(rand, depth + 1))
  const out: Record<string, unknown> = {}
  for (let i = 0; i < 1 + Math.floor(rand() * 3); i++)
    out[pick(rand, ['jobId', 'job_id', 'request_id', 'groupId', 'text', 'id', 'constructor'])] =
      value(rand, depth + 1)
  return out
}

function frame(rand: () => number): string | Buffer {
  const r = rand()
  if (r < 0.1) return Buffer.from([0, 255, 1, 2])
  if (r < 0.2) return pick(rand, ['{', '[]', 'null', '"', '{"type":', '\u0000'])
  return JSON.stringify({
    type: pick(rand, TYPES),
    id: value(rand),
    channel: pick(rand, CHANNELS),
    payload: value(rand),
    job_id: value(rand),
    request_id: value(rand)
  })
}

describe(`host fuzz (seed ${SEED})`, () => {
  let host: RunningHost
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => void uncaught.push(err)

  // A renderer folder as a build leaves it (the fuzz is about the host, not the build).
  const rendererDir = mkdtempSync(join(tmpdir(), 'talkative-fuzz-renderer-'))
  writeFileSync(
    join(rendererDir, 'index.html'),
    '<!doctype html><html><head></head><body></body></html>'
  )

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onUncaught)
    host = await startHost({
      port: 0,
      rendererDir,
      services: { probeProviders: () => probeProviders(['cpu']) }
    })
  })
  afterAll(async () => {
    await host?.stop()
    rmSync(rendererDir, { recursive: true, force: true })
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
  })

  it(`${REQUESTS} generated requests: no 5xx, and the host keeps serving`, async () => {
    const rand = seeded(SEED)
    const { port, token } = host.http
    const failures: string[] = []
    for (let i = 0; i < REQUESTS; i++) {
      const text = generatedRequest(rand, port, token)
      const status = await rawRequest(port, text)
      if (status >= 500) failures.push(`${status} for ${JSON.stringify(text)}`)
    }
    expect(failures, `seed ${SEED}`).toEqual([])
    expect(await stateAnswers(port, token)).toBe(200)
    expect(uncaught).toEqual([])
  })

  it(`${FRAMES} generated WebSocket frames on /ipc and /api/v2/ws: no internal errors, still serving`, async () => {
    const rand = seeded(SEED + 1)
    const { port, token } = host.http
    const origin = `http://127.0.0.1:${port}`
    for (const url of [
      `ws://127.0.0.1:${port}/ipc?token=${token}`,
      `ws://127.0.0.1:${port}/api/v2/ws?token=${token}`
    ]) {
      const ws = new WebSocket(url, { origin })
      const answers: string[] = []
      ws.on('message', (d) => answers.push(d.toString()))
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('error', reject)
      })
      for (let i = 0; i < FRAMES / 2; i++) ws.send(frame(rand))
      // A last frame whose answer means every earlier one was handled (they are handled in order).
      ws.send(
        url.includes('/ipc')
          ? JSON.stringify({ type: 'invoke', id: 'last', channel: 'system:state' })
          : JSON.stringify({ type: 'ping' })
      )
      await expect
        .poll(() => answers.some((a) => /"id":"last"|"type":"pong"/.test(a)), { timeout: 30_000 })
        .toBe(true)
      expect(ws.readyState, url).toBe(WebSocket.OPEN)
      const internal = answers.filter((a) => /"code":"internal"/.test(a))
      expect(internal, `seed ${SEED + 1} on ${url}`).toEqual([])
      ws.close()
    }
    expect(await stateAnswers(port, token)).toBe(200)
    expect(uncaught).toEqual([])
  })
})
