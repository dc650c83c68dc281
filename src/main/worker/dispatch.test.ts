import { describe, expect, it } from 'vitest'
import { AppError } from '@shared/ipc/errors'
import { createLogger, setLogSink, type LogEntry } from '../platform/logger'
import { createDispatcher, type WorkerHandlers } from './dispatch'
import type { WorkerToMain } from './protocol'

const pong = { memory: { rssBytes: 1, heapUsedBytes: 1, externalBytes: 1 }, groups: [], tasks: [] }

/** A dispatcher whose handlers all refuse, except those given; what it posts is collected. */
function setup(overrides: Partial<WorkerHandlers>, post?: (m: WorkerToMain) => void) {
  const sent: WorkerToMain[] = []
  const refuse = async (): Promise<never> => {
    throw new AppError('not_found', 'not here')
  }
  const handlers = new Proxy(overrides, {
    get: (target, op: string) => target[op as keyof WorkerHandlers] ?? refuse
  }) as WorkerHandlers
  const receive = createDispatcher({
    handlers,
    post: (m) => {
      post?.(m)
      sent.push(m)
    },
    log: createLogger('worker-test'),
    deviceId: () => 'cpu:test'
  })
  return { sent, receive }
}

const request = (seq: number, req: unknown): unknown => ({ type: 'request', seq, request: req })

describe('the worker-message boundary', () => {
  it('answers each request with exactly one response for its seq', async () => {
    const { sent, receive } = setup({ ping: async () => pong })
    await receive(request(1, { op: 'ping' }))
    expect(sent).toEqual([{ type: 'response', seq: 1, ok: true, value: pong }])
  })

  it.each<[string, unknown, Record<string, unknown>]>([
    ['an unknown op', request(2, { op: 'teleport' }), { code: 'invalid_input', field: 'op' }],
    ['a request without an op', request(3, { groupId: 'g' }), { code: 'invalid_input' }],
    [
      'a payload that fails the schema',
      request(4, { op: 'plan', groupId: 'g', text: 5 }),
      { code: 'invalid_input', field: 'text' }
    ],
    ['a handler that refuses', request(5, { op: 'unload', groupId: 'g' }), { code: 'not_found' }]
  ])('answers %s with an error for its seq', async (_name, message, error) => {
    const { sent, receive } = setup({})
    await receive(message)
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ type: 'response', ok: false, error })
  })

  it('answers a handler that throws synchronously, logged at error level', async () => {
    const logged: LogEntry[] = []
    const restore = setLogSink((e) => void logged.push(e))
    try {
      const { sent, receive } = setup({
        ping: (() => {
          throw new Error('bug in ping')
        }) as unknown as WorkerHandlers['ping']
      })
      await receive(request(6, { op: 'ping' }))
      expect(sent).toEqual([
        {
          type: 'response',
          seq: 6,
          ok: false,
          error: expect.objectContaining({ code: 'internal', message: 'bug in ping' })
        }
      ])
      expect(logged).toContainEqual(
        expect.objectContaining({ level: 'error', error: 'bug in ping' })
      )
    } finally {
      restore()
    }
  })

  it('answers with an error when the value cannot be sent, and serves the next request', async () => {
    let refuseValues = true
    const { sent, receive } = setup({ ping: async () => pong }, (m) => {
      if (refuseValues && m.type === 'response' && m.ok) {
        refuseValues = false
        throw new Error('could not be cloned')
      }
    })
    await receive(request(7, { op: 'ping' }))
    await receive(request(8, { op: 'ping' }))
    expect(sent).toEqual([
      {
        type: 'response',
        seq: 7,
        ok: false,
        error: expect.objectContaining({ message: 'could not be cloned' })
      },
      { type: 'response', seq: 8, ok: true, value: pong }
    ])
  })

  it.each([
    ['no seq', { type: 'request', request: { op: 'ping' } }],
    ['not an object', 'x']
  ])('reports a message with %s as a log event', async (_name, message) => {
    const { sent, receive } = setup({})
    await receive(message)
    expect(sent).toEqual([
      {
        type: 'event',
        event: { kind: 'log', level: 'error', message: expect.stringMatching(/dropped/) }
      }
    ])
  })

  it('never throws, even when the error answer cannot be sent', async () => {
    const { receive } = setup({}, () => {
      throw new Error('channel closed')
    })
    await expect(receive(request(9, { op: 'ping' }))).resolves.toBeUndefined()
    await expect(receive('x')).resolves.toBeUndefined()
  })
})
