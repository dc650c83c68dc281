/**
 * The error-boundary harness: through the real headless host, a handler of each kind of entry
 * point (HTTP route, upgrade, WebSocket message, IPC call, timer) throws, and the host must answer
 * that caller with an error (or close only that socket), raise no uncaught exception, and keep
 * serving: the state endpoint still answers 200 afterwards (docs/architecture.md, "Error
 * boundaries"). Worker messages, both ways, run against a real worker process on the demo group.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import type { JobState } from '@shared/domain/jobs'
import { ensureDemoBundle, probeProviders } from '../../src/main/engine'
import { startHost, type RunningHost } from '../../src/main/host/startHost'
import {
  childProcessSpawner,
  type SpawnWorker,
  type WorkerTransport
} from '../../src/main/devices/transport'
import { createMemoryClient, type MemoryClient } from '../../src/main/ipc/memoryTransport'
import { setLogSink, type LogEntry } from '../../src/main/platform/logger'
import type { WorkerToMain } from '../../src/main/worker/protocol'
import { finished, ok } from '../helpers/workbench'

/** Set by a test: the row assembler (a handler of worker rows events) throws once. */
let throwInAcceptRows = false
vi.mock('../../src/main/devices/rowAssembler', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/main/devices/rowAssembler')>()
  return {
    ...actual,
    acceptRows: (...args: Parameters<typeof actual.acceptRows>) => {
      if (throwInAcceptRows) {
        throwInAcceptRows = false
        throw new Error(BOOM)
      }
      return actual.acceptRows(...args)
    }
  }
})

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

/**
 * Worker messages, main side: a real worker on the demo group behind a tapped transport, which can
 * rewrite a message on its way from the worker or deliver one of its own, as if the worker had
 * sent it. Messages that belong to no call are logged and dropped; one that cannot be handled
 * fails the job it belongs to with an error value; the host keeps serving and later jobs complete.
 */
describe('error boundaries of worker messages in the main process', () => {
  let host: RunningHost
  let client: MemoryClient
  let modelsDir: string
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => void uncaught.push(err)
  const logged: LogEntry[] = []
  let restoreLog: () => void = () => undefined
  /** Rewrites (or, returning undefined, drops) a message from the worker before main sees it. */
  let rewrite: ((message: WorkerToMain) => unknown) | null = null
  let deliver: (message: unknown) => void = () => undefined
  const rendererDir = mkdtempSync(join(tmpdir(), 'talkative-boundary-renderer-'))
  writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><html><body></body></html>')

  const tapped =
    (inner: SpawnWorker): SpawnWorker =>
    (options) => {
      const transport = inner(options)
      return {
        get pid() {
          return transport.pid
        },
        send: (m) => transport.send(m),
        onMessage: (listener) => {
          deliver = listener
          transport.onMessage((m) => {
            const out = rewrite ? rewrite(m as WorkerToMain) : m
            if (out !== undefined) listener(out)
          })
        },
        onExit: (l) => transport.onExit(l),
        onOutput: (l) => transport.onOutput(l),
        kill: (s) => transport.kill(s)
      }
    }

  const analyze = async (): Promise<JobState> => {
    const { jobId } = await ok(
      client.invoke('jobs:submit', {
        kind: 'analyze',
        groupId: 'demo-words',
        text: 'The cat sat on the red chair. A dog ran to the river.',
        options: { bestOfK: 2, salience: false, kl: false, rowsPerBatch: 4 }
      })
    )
    return finished(client, jobId)
  }

  const stillServing = async (): Promise<void> => {
    expect(await get(host.http.port, host.http.token, '/api/v2/system/state')).toBe(200)
    const after = await analyze()
    expect(after.status).toBe('done')
    expect(after.progress?.rowsDone).toBeGreaterThan(0)
    expect(after.progress?.rowsDone).toBe(after.progress?.rowsTotal)
    expect(uncaught).toEqual([])
  }

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onUncaught)
    restoreLog = setLogSink((e) => void logged.push(e), 'debug')
    modelsDir = mkdtempSync(join(tmpdir(), 'talkative-boundary-models-'))
    host = await startHost({
      port: 0,
      rendererDir,
      services: {
        probeProviders: () => probeProviders(['cpu']),
        pollIntervalMs: 1000,
        devices: {
          modelsDir,
          devices: [{ id: 'cpu:0', threads: 1 }],
          spawnWorker: tapped(childProcessSpawner()),
          heartbeatMs: 1000,
          graceMs: 20_000,
          watch: false
        }
      }
    })
    client = createMemoryClient(host.services.router, host.services.hub, 'boundary-worker')
    await host.services.devices.manager()
  }, 120_000)
  afterEach(() => {
    rewrite = null
    throwInAcceptRows = false
    logged.length = 0
  })
  afterAll(async () => {
    client?.close()
    await host?.stop()
    restoreLog()
    rmSync(rendererDir, { recursive: true, force: true })
    rmSync(modelsDir, { recursive: true, force: true })
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
  })

  it('a message that belongs to no call is logged and dropped, for every kind', async () => {
    expect((await analyze()).status).toBe('done')
    const strays: [string, unknown][] = [
      ['not an object', 42],
      ['an unknown type', { type: 'teleport', to: 'nowhere' }],
      ['an unknown event kind', { type: 'event', event: { kind: 'teleport' } }],
      ['a hello that fails validation', { type: 'hello', pid: 'x' }],
      ['an answer to no call', { type: 'response', seq: 987_654, ok: true, value: {} }],
      [
        'an error answer to no call',
        { type: 'response', seq: 987_655, ok: false, error: { code: 'internal', message: 'x' } }
      ],
      [
        'rows for an unknown task',
        {
          type: 'event',
          event: {
            kind: 'rows',
            taskId: 'nobody',
            rows: [],
            progress: { batch: 1, totalBatches: 1, rowsDone: 0, rowsTotal: 0, etaSeconds: null }
          }
        }
      ],
      [
        'optimiser steps for an unknown task',
        {
          type: 'event',
          event: {
            kind: 'optimiser',
            taskId: 'nobody',
            progress: { batch: 1, totalBatches: 1, step: 1, steps: 2, message: 'm' }
          }
        }
      ],
      [
        'an event that fails validation',
        { type: 'event', event: { kind: 'optimiser', taskId: 'nobody', progress: {} } }
      ],
      [
        'a log event',
        { type: 'event', event: { kind: 'log', level: 'error', message: 'stray log line' } }
      ]
    ]
    for (const [name, message] of strays) {
      const before = logged.length
      deliver(message)
      const lines = logged
        .slice(before)
        .filter((e) => e.level !== 'debug' || /dropped/.test(e.message))
      expect(lines.length, `${name} leaves a log line`).toBeGreaterThan(0)
    }
    expect(logged.some((e) => /malformed/.test(e.error ?? ''))).toBe(true)
    expect(logged.some((e) => /seq 987654/.test(e.message))).toBe(true)
    expect(
      logged.some((e) => /rows event .*no running task \(nobody\) dropped/.test(e.message))
    ).toBe(true)
    expect(logged.some((e) => /stray log line/.test(e.message))).toBe(true)
    await stillServing()
  }, 120_000)

  it('a rows event whose payload fails validation fails its job with an error value', async () => {
    let spoiled = 0
    rewrite = (m) => {
      if (m.type !== 'event' || m.event.kind !== 'rows' || spoiled > 0) return m
      spoiled += 1
      return { ...m, event: { ...m.event, rows: [{ position: 'first' }] } }
    }
    const job = await analyze()
    expect(spoiled).toBe(1)
    expect(job.status).toBe('failed')
    expect(job.error?.message).toMatch(/rows event .*could not be handled: malformed/)
    rewrite = null
    await stillServing()
  }, 120_000)

  it('an answer whose value fails validation fails its job with an error value', async () => {
    rewrite = (m) =>
      m.type === 'response' &&
      m.ok &&
      typeof m.value === 'object' &&
      m.value !== null &&
      'rowCount' in m.value
        ? { ...m, value: { metadata: 5, rowCount: 'many' } }
        : m
    const job = await analyze()
    expect(job.status).toBe('failed')
    expect(job.error?.message).toMatch(/answered analyze with a malformed value/)
    rewrite = null
    await stillServing()
  }, 120_000)

  it('a handler that throws on a valid message fails that job; the host keeps serving', async () => {
    throwInAcceptRows = true
    const job = await analyze()
    expect(job.status).toBe('failed')
    expect(job.error?.message).toContain(BOOM)
    expect(logged.some((e) => e.level === 'error' && e.error === BOOM)).toBe(true)
    throwInAcceptRows = false
    await stillServing()
  }, 120_000)
})

/**
 * Worker messages, worker side: a real worker process spoken to over its own transport. Every
 * request whose handling fails — a malformed envelope, an unknown op, a payload that fails the
 * op's schema, a handler that throws — gets an error answer for its seq, and the worker serves
 * the next request; at the end a real analysis of the demo group still streams its rows.
 */
describe('error boundaries of worker messages in the worker process', () => {
  let transport: WorkerTransport
  const inbox: WorkerToMain[] = []
  let seq = 0

  const send = (request: unknown, withSeq = true): number => {
    const s = ++seq
    transport.send(withSeq ? { type: 'request', seq: s, request } : { type: 'request', request })
    return s
  }
  /** Waits for the answer to request `s` (a plain loop: beforeAll may call it too). */
  const answer = async (s: number): Promise<Extract<WorkerToMain, { type: 'response' }>> => {
    const started = Date.now()
    for (;;) {
      const found = inbox.find((m) => m.type === 'response' && m.seq === s)
      if (found) return found as Extract<WorkerToMain, { type: 'response' }>
      if (Date.now() - started > 60_000) throw new Error(`no answer to request ${s}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  const call = async (request: unknown): Promise<Extract<WorkerToMain, { type: 'response' }>> =>
    answer(send(request))
  const stillServing = async (): Promise<void> => {
    expect((await call({ op: 'ping' })).ok).toBe(true)
  }

  beforeAll(async () => {
    transport = childProcessSpawner()({ deviceId: 'cpu:boundary' })
    transport.onMessage((m) => void inbox.push(m as WorkerToMain))
    const init = await call({
      op: 'init',
      deviceId: 'cpu:boundary',
      target: { provider: 'cpu', threads: 1 }
    })
    expect(init.ok).toBe(true)
    const load = await call({ op: 'load', groupId: 'demo-words', dir: await ensureDemoBundle() })
    expect(load.ok).toBe(true)
  }, 120_000)
  afterAll(() => {
    transport?.kill('SIGKILL')
  })

  it('answers a malformed envelope, an unknown message type or op with an error for its seq', async () => {
    const unknown = await call({ op: 'teleport', groupId: 'demo-words' })
    expect(unknown).toMatchObject({ ok: false, error: { code: 'invalid_input', field: 'op' } })
    expect(!unknown.ok && unknown.error.message).toMatch(/unknown op "teleport"/)
    const noOp = await call({ groupId: 'demo-words' })
    expect(noOp).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    const unknownType = ++seq
    transport.send({ type: 'teleport', seq: unknownType, request: { op: 'ping' } })
    expect(await answer(unknownType)).toMatchObject({
      ok: false,
      error: { code: 'invalid_input', message: expect.stringMatching(/malformed message: type/) }
    })
    await stillServing()
  }, 60_000)

  it('reports a message without a seq as a log event and serves the next', async () => {
    const before = inbox.length
    send({ op: 'ping' }, false)
    transport.send('not even an object')
    await expect
      .poll(
        () =>
          inbox
            .slice(before)
            .filter(
              (m) => m.type === 'event' && m.event.kind === 'log' && /dropped/.test(m.event.message)
            ).length,
        { timeout: 30_000 }
      )
      .toBe(2)
    await stillServing()
  }, 60_000)

  // One payload per op that fails its schema (ping and shutdown take no fields to get wrong).
  const invalid: [string, Record<string, unknown>, string][] = [
    ['init', { op: 'init', deviceId: 5, target: { provider: 'cpu' } }, 'deviceId'],
    ['load', { op: 'load', groupId: 'demo-words' }, 'dir'],
    ['unload', { op: 'unload', groupId: 7 }, 'groupId'],
    ['plan', { op: 'plan', groupId: 'demo-words' }, 'text'],
    ['analyze', { op: 'analyze', taskId: 't', groupId: 'demo-words', text: 'x' }, 'lensId'],
    ['generate', { op: 'generate', taskId: 't', groupId: 'demo-words', text: 5 }, 'text'],
    [
      'intervene',
      { op: 'intervene', taskId: 't', groupId: 'demo-words', lensId: 'words-l1', text: 'x' },
      'intervention'
    ],
    [
      'sweep',
      {
        op: 'sweep',
        taskId: 't',
        groupId: 'demo-words',
        lensId: 'words-l1',
        text: 'x',
        sweep: { position: -1 }
      },
      'sweep.position'
    ],
    ['cancel', { op: 'cancel', taskId: 5 }, 'taskId']
  ]
  it.each(invalid)(
    'answers an invalid %s payload with invalid_input naming the field',
    async (_op, request, field) => {
      const res = await call(request)
      expect(res).toMatchObject({ ok: false, error: { code: 'invalid_input', field } })
      await stillServing()
    },
    60_000
  )

  // A valid request whose handler throws (the group is not loaded, the folder does not exist).
  const throwing: [string, Record<string, unknown>][] = [
    ['load', { op: 'load', groupId: 'missing', dir: join(tmpdir(), 'talkative-no-such-bundle') }],
    ['plan', { op: 'plan', groupId: 'missing', text: 'x' }],
    ['analyze', { op: 'analyze', taskId: 't1', groupId: 'missing', lensId: 'l', text: 'x' }],
    ['generate', { op: 'generate', taskId: 't2', groupId: 'missing', text: 'x' }],
    [
      'intervene',
      {
        op: 'intervene',
        taskId: 't3',
        groupId: 'missing',
        lensId: 'l',
        text: 'x',
        intervention: { positions: [0], strings: ['a'] }
      }
    ],
    [
      'sweep',
      {
        op: 'sweep',
        taskId: 't4',
        groupId: 'missing',
        lensId: 'l',
        text: 'x',
        sweep: { position: 0 }
      }
    ],
    [
      'analyze (unknown lens)',
      { op: 'analyze', taskId: 't5', groupId: 'demo-words', lensId: 'nope', text: 'x' }
    ]
  ]
  it.each(throwing)(
    'answers a %s whose handler throws with that error',
    async (_op, request) => {
      const res = await call(request)
      expect(res.ok).toBe(false)
      expect(!res.ok && res.error.message.length).toBeGreaterThan(0)
      await stillServing()
    },
    60_000
  )

  it('still runs a real analysis of the demo group afterwards', async () => {
    const s = send({
      op: 'analyze',
      taskId: 'after',
      groupId: 'demo-words',
      lensId: 'words-l1',
      text: 'The cat sat on the red chair.',
      options: { bestOfK: 2, salience: false, kl: false }
    })
    const res = await answer(s)
    expect(res.ok).toBe(true)
    const rows = inbox.filter(
      (m) => m.type === 'event' && m.event.kind === 'rows' && m.event.taskId === 'after'
    )
    expect(rows.length).toBeGreaterThan(0)
    expect(res.ok && (res.value as { rowCount: number }).rowCount).toBeGreaterThan(0)
  }, 60_000)
})
