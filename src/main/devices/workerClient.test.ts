/**
 * The main-process end of the worker-message boundary (docs/architecture.md, "Error boundaries"),
 * over a scripted transport: a message that fails the protocol's schemas, or whose handler throws,
 * fails the call it belongs to with an error value and stops that task on the worker; a message
 * that belongs to no call is logged and dropped; nothing escapes the listener. Ends with a seeded
 * fuzz of generated messages (TALKATIVE_FUZZ_SEED replays one).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AppError } from '@shared/ipc/errors'
import { setLogSink, type LogEntry } from '../platform/logger'
import type { WorkerEvent } from '../worker/protocol'
import type { WorkerExit, WorkerTransport } from './transport'
import { WorkerClient } from './workerClient'

const SEED = Number(process.env.TALKATIVE_FUZZ_SEED ?? 20261130)

class ScriptedTransport implements WorkerTransport {
  readonly pid = 4242
  readonly sent: { seq: number; request: { op: string; taskId?: string } }[] = []
  deliver: (m: unknown) => void = () => undefined
  send(message: unknown): void {
    this.sent.push(message as ScriptedTransport['sent'][number])
  }
  onMessage(listener: (m: unknown) => void): void {
    this.deliver = listener
  }
  onExit(_listener: (e: WorkerExit) => void): void {}
  onOutput(): void {}
  kill(): void {}
  lastSeq(op: string): number {
    return [...this.sent].reverse().find((m) => m.request.op === op)!.seq
  }
}

const progress = { batch: 1, totalBatches: 2, rowsDone: 1, rowsTotal: 2, etaSeconds: null }
const analyzeRequest = (taskId: string) =>
  ({ op: 'analyze', taskId, groupId: 'g', lensId: 'l', text: 'x' }) as const

describe('WorkerClient message boundary', () => {
  let transport: ScriptedTransport
  let events: WorkerEvent[]
  let throwOnEvent: boolean
  let client: WorkerClient
  const logged: LogEntry[] = []
  let restore: () => void

  beforeEach(() => {
    logged.length = 0
    restore = setLogSink((e) => void logged.push(e))
    transport = new ScriptedTransport()
    events = []
    throwOnEvent = false
    client = new WorkerClient('cpu:9', transport, {
      onEvent: (e) => {
        if (throwOnEvent) throw new Error('handler bug')
        events.push(e)
      },
      onExit: () => undefined
    })
  })
  afterEach(() => restore())

  it('hands valid events on and resolves a call with its checked answer', async () => {
    const call = client.call({ op: 'cancel', taskId: 't' })
    transport.deliver({
      type: 'event',
      event: { kind: 'stage', groupId: 'g', stage: 's', fraction: 0.5 }
    })
    transport.deliver({
      type: 'response',
      seq: transport.lastSeq('cancel'),
      ok: true,
      value: { found: true }
    })
    await expect(call).resolves.toEqual({ found: true })
    expect(events).toHaveLength(1)
  })

  it('a rows event that fails validation fails the call running its task, and stops the task', async () => {
    const call = client.call(analyzeRequest('task-1'))
    transport.deliver({
      type: 'event',
      event: { kind: 'rows', taskId: 'task-1', rows: [{ position: 'x' }], progress }
    })
    await expect(call).rejects.toMatchObject({
      code: 'internal',
      message: expect.stringMatching(
        /a rows event for analyze that could not be handled: malformed: event\.rows\.0\.\w+: /
      )
    })
    expect(transport.sent.at(-1)?.request).toEqual({ op: 'cancel', taskId: 'task-1' })
    // The worker's late answer to the failed call is logged and dropped.
    transport.deliver({ type: 'response', seq: transport.lastSeq('analyze'), ok: true, value: {} })
    expect(logged.some((e) => /to no pending call/.test(e.message))).toBe(true)
  })

  it('an event whose handler throws fails the call running its task', async () => {
    const call = client.call(analyzeRequest('task-2'))
    throwOnEvent = true
    transport.deliver({
      type: 'event',
      event: {
        kind: 'optimiser',
        taskId: 'task-2',
        progress: { batch: 1, totalBatches: 1, step: 1, steps: 2, message: 'm' }
      }
    })
    await expect(call).rejects.toThrow(/could not be handled: handler bug/)
    expect(logged.some((e) => e.level === 'error' && e.error === 'handler bug')).toBe(true)
  })

  it('an answer that fails validation fails its call', async () => {
    const call = client.call({ op: 'cancel', taskId: 't' })
    transport.deliver({ type: 'response', seq: transport.lastSeq('cancel'), ok: 'yes' })
    await expect(call).rejects.toThrow(
      /a response \(seq \d+\) for cancel that could not be handled/
    )
  })

  it('messages that belong to no call are logged, and later calls still work', async () => {
    for (const m of [
      null,
      'text',
      { type: 'teleport' },
      { type: 'event', event: { kind: 'rows', taskId: 'nobody', rows: [], progress } },
      { type: 'event', event: { kind: 'log', level: 'warn', message: 'from the worker' } }
    ])
      transport.deliver(m)
    expect(logged.filter((e) => e.level === 'error').map((e) => e.error)).toEqual([
      'malformed: Invalid input: expected object, received null',
      'malformed: Invalid input: expected object, received string',
      'malformed: type: unknown message type'
    ])
    expect(
      logged.some((e) => /rows event .* no running task \(nobody\) dropped/.test(e.message))
    ).toBe(true)
    expect(logged.some((e) => /from the worker/.test(e.message))).toBe(true)
    expect(events).toEqual([])
    const call = client.call({ op: 'cancel', taskId: 't' })
    transport.deliver({
      type: 'response',
      seq: transport.lastSeq('cancel'),
      ok: true,
      value: { found: false }
    })
    await expect(call).resolves.toEqual({ found: false })
  })

  it(`survives 3000 generated messages (seed ${SEED}); every call settles with a value or an AppError`, async () => {
    let a = SEED >>> 0
    const rand = (): number => {
      a = (a + 0x6d2b79f5) >>> 0
      let t = Math.imul(a ^ (a >>> 15), 1 | a)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!
    const odd = [undefined, null, 0, -1, 1.5, 'x', '', [], {}, true, NaN]
    const calls: Promise<unknown>[] = []
    const settled: unknown[] = []
    for (let i = 0; i < 3000; i++) {
      if (rand() < 0.1) {
        const p = client.call(analyzeRequest(`t${i}`))
        calls.push(
          p.then(
            (v) => settled.push(v),
            (e: unknown) => settled.push(e)
          )
        )
      }
      throwOnEvent = rand() < 0.1
      const seq = pick([...transport.sent.map((m) => m.seq), 0, 99_999, pick(odd)])
      const taskId = pick([...transport.sent.map((m) => m.request.taskId), 'nobody', pick(odd)])
      const message = pick([
        () => ({
          type: 'response',
          seq,
          ok: true,
          value: pick([{}, { metadata: pick(odd), rowCount: 1 }, pick(odd)])
        }),
        () => ({
          type: 'response',
          seq,
          ok: false,
          error: pick([{ code: 'internal', message: 'm' }, pick(odd)])
        }),
        () => ({
          type: 'event',
          event: { kind: 'rows', taskId, rows: pick([[], [pick(odd)]]), progress }
        }),
        () => ({
          type: 'event',
          event: { kind: pick(['stage', 'optimiser', 'log', 'interventions', pick(odd)]), taskId }
        }),
        () => ({ type: 'hello', pid: pick([1, pick(odd)]) }),
        () => pick(odd)
      ])()
      expect(() => transport.deliver(message)).not.toThrow()
    }
    // Whatever is still pending gets its answer now.
    throwOnEvent = false
    for (const m of transport.sent)
      transport.deliver({
        type: 'response',
        seq: m.seq,
        ok: false,
        error: { code: 'cancelled', message: 'end' }
      })
    await Promise.all(calls)
    expect(settled).toHaveLength(calls.length)
    for (const s of settled) if (s instanceof Error) expect(s, String(s)).toBeInstanceOf(AppError)
  })
})
