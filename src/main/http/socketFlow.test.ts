import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { createLogger, setLogSink, type LogEntry } from '../platform/logger'
import { handleMessagesWithFlow, sendWithLimit, type FlowLimits } from './socketFlow'

const log = createLogger('test')

interface Harness {
  client: WebSocket
  handled: string[]
  answers: string[]
  logged: LogEntry[]
  closed: Promise<{ code: number; reason: string }>
  close(): Promise<void>
}

/**
 * A real server and client on a loopback port; the server handles messages through the flow
 * with `limits` and `handle`.
 */
async function harness(
  limits: Partial<FlowLimits>,
  handle: (text: string, reply: (t: string) => void) => unknown
): Promise<Harness> {
  const logged: LogEntry[] = []
  const restore = setLogSink((e) => logged.push(e))
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((r) => wss.once('listening', r))
  const handled: string[] = []
  const answers: string[] = []
  wss.on('connection', (ws) => {
    const reply = (t: string): void => sendWithLimit(ws, t, log, 'test ws')
    handleMessagesWithFlow(ws, {
      log,
      label: 'test ws',
      limits,
      handle(data) {
        const text = data.toString()
        handled.push(text)
        return handle(text, reply)
      },
      answerFailure: () => reply('failure answered')
    })
  })
  const { port } = wss.address() as AddressInfo
  const client = new WebSocket(`ws://127.0.0.1:${port}`)
  client.on('message', (d) => answers.push(d.toString()))
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    client.once('close', (code, reason) => r({ code, reason: reason.toString() }))
  )
  await new Promise<void>((r, j) => {
    client.once('open', () => r())
    client.once('error', j)
  })
  return {
    client,
    handled,
    answers,
    logged,
    closed,
    async close() {
      client.terminate()
      await new Promise((r) => wss.close(r))
      restore()
    }
  }
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

let current: Harness | undefined
afterEach(async () => {
  await current?.close()
  current = undefined
})

describe('handleMessagesWithFlow', () => {
  it('handles every message, in order, one answer each', async () => {
    current = await harness({}, (t, reply) => reply(`re:${t}`))
    for (let i = 0; i < 50; i++) current.client.send(String(i))
    await until(() => current!.answers.length === 50)
    expect(current.answers).toEqual(Array.from({ length: 50 }, (_, i) => `re:${i}`))
  })

  it('a throwing or rejecting handler is logged and answered; the socket stays open', async () => {
    current = await harness({}, (t, reply) => {
      if (t === 'throw') throw new Error('handler bug')
      if (t === 'reject') return Promise.reject(new Error('async handler bug'))
      reply(`re:${t}`)
    })
    current.client.send('throw')
    current.client.send('reject')
    current.client.send('after')
    await until(() => current!.answers.includes('re:after') && current!.answers.length === 3)
    expect(current.answers.filter((a) => a === 'failure answered')).toHaveLength(2)
    expect(current.client.readyState).toBe(WebSocket.OPEN)
    const errors = current.logged.filter((e) => e.level === 'error').map((e) => e.error)
    expect(errors).toEqual(expect.arrayContaining(['handler bug', 'async handler bug']))
  })

  it('never handles more than the burst plus the rate allows', async () => {
    const started = performance.now()
    current = await harness({ ratePerSecond: 20, burst: 5 }, (t, reply) => reply(t))
    for (let i = 0; i < 100; i++) current.client.send(String(i))
    await new Promise((r) => setTimeout(r, 500))
    // A loaded machine only handles fewer; the bound is what the limiter allows at most.
    const allowed = 5 + Math.ceil(((performance.now() - started) / 1000) * 20) + 1
    expect(current.handled.length).toBeGreaterThan(0)
    expect(current.handled.length).toBeLessThanOrEqual(allowed)
    expect(current.client.readyState).toBe(WebSocket.OPEN)
  })

  it('at most maxInFlight slow messages run at once', async () => {
    let running = 0
    let most = 0
    current = await harness({ maxInFlight: 3 }, async (t, reply) => {
      running++
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, 20))
      running--
      reply(t)
    })
    for (let i = 0; i < 12; i++) current.client.send(String(i))
    await until(() => current!.answers.length === 12)
    expect(most).toBe(3)
  })

  it('closes, with a reason, a client that keeps sending past the queue limit', async () => {
    current = await harness({ ratePerSecond: 1, burst: 1, maxQueued: 10 }, (t, reply) => reply(t))
    for (let i = 0; i < 200; i++) current.client.send(String(i))
    const { code, reason } = await current.closed
    expect(code).toBe(1008)
    expect(reason).toMatch(/more than 10 messages waiting/)
    expect(current.logged.some((e) => e.level === 'warn' && /closing/.test(e.message))).toBe(true)
  })
})

describe('sendWithLimit', () => {
  it('ends a connection whose unsent data would pass the limit instead of buffering it', async () => {
    const logged: LogEntry[] = []
    const restore = setLogSink((e) => logged.push(e))
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    try {
      await new Promise((r) => wss.once('listening', r))
      const serverSide = new Promise<WebSocket>((r) => wss.once('connection', r))
      const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`)
      const closed = new Promise((r) => client.once('close', r))
      const ws = await serverSide
      sendWithLimit(ws, 'small', log, 'test ws', 1024)
      sendWithLimit(ws, 'x'.repeat(2048), log, 'test ws', 1024)
      await closed
      expect(logged.some((e) => /unread by the client/.test(e.message))).toBe(true)
    } finally {
      await new Promise((r) => wss.close(r))
      restore()
    }
  })
})
