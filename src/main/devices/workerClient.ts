/**
 * The main-process end of one device worker: seq-numbered requests with one response each,
 * events, liveness. Every inbound message is checked against the protocol before use.
 */
import type { z } from 'zod'
import { AppError, fromSerializedError } from '@shared/ipc/errors'
import {
  parseWorkerToMain,
  workerOps,
  type WorkerEvent,
  type WorkerOp,
  type WorkerRequest,
  type WorkerResponse
} from '../worker/protocol'
import { systemClock, type Clock, type Timer } from '../platform/clock'
import { guarded } from '../platform/boundary'
import { createLogger } from '../platform/logger'
import type { WorkerExit, WorkerTransport } from './transport'

const log = createLogger('devices')

interface Pending {
  op: WorkerOp
  /** The task the request runs (analyze, generate, …): its events belong to this call. */
  taskId?: string
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  timer?: Timer
}

export interface WorkerClientHooks {
  onEvent(event: WorkerEvent): void
  onExit(exit: WorkerExit): void
  onOutput?(line: string, stream: 'stdout' | 'stderr'): void
}

export class WorkerClient {
  readonly deviceId: string
  readonly #transport: WorkerTransport
  readonly #clock: Clock
  readonly #pending = new Map<number, Pending>()
  /** taskId → seq of the pending call that runs it. */
  readonly #tasks = new Map<string, number>()
  #seq = 0
  #exit: WorkerExit | null = null
  #heartbeat: Timer | undefined
  #pingInFlight = false

  constructor(
    deviceId: string,
    transport: WorkerTransport,
    hooks: WorkerClientHooks,
    clock: Clock = systemClock
  ) {
    this.deviceId = deviceId
    this.#transport = transport
    this.#clock = clock
    // The two worker-message entry points, each inside its error boundary: a message that cannot
    // be handled (malformed, or its handler throws) is logged, fails the call it belongs to with an
    // error value (so its job fails, never finishes short of rows), and the next message is
    // handled as usual.
    transport.onMessage(
      guarded(
        log,
        (m: unknown) => `handling ${describeMessage(m)} from the worker for ${deviceId}`,
        (m) => this.#receive(m, hooks),
        (error, m) => this.#failOwner(m, error)
      )
    )
    transport.onExit(
      guarded(log, `the exit of the worker for ${deviceId}`, (exit: WorkerExit) => {
        this.#exit = exit
        this.stopHeartbeat()
        const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`
        this.#tasks.clear()
        for (const [seq, p] of this.#pending) {
          p.timer?.cancel()
          p.reject(
            new AppError(
              'worker_crashed',
              `the worker for ${deviceId} exited (${how}) during ${p.op}`
            )
          )
          this.#pending.delete(seq)
        }
        hooks.onExit(exit)
      })
    )
    if (hooks.onOutput)
      transport.onOutput(guarded(log, `output of the worker for ${deviceId}`, hooks.onOutput))
  }

  get pid(): number | undefined {
    return this.#transport.pid
  }

  get alive(): boolean {
    return this.#exit === null
  }

  /** Sends one request; resolves with its validated answer, rejects with the worker's AppError. */
  call<O extends WorkerOp>(
    request: WorkerRequest<O> & { op: O },
    timeoutMs?: number
  ): Promise<WorkerResponse<O>> {
    if (this.#exit) {
      return Promise.reject(
        new AppError('worker_crashed', `the worker for ${this.deviceId} is not running`)
      )
    }
    const seq = ++this.#seq
    return new Promise<WorkerResponse<O>>((resolve, reject) => {
      const taskId = (request as { taskId?: unknown }).taskId
      const pending: Pending = {
        op: request.op,
        resolve: resolve as (v: unknown) => void,
        reject,
        ...(typeof taskId === 'string' && request.op !== 'cancel' ? { taskId } : {})
      }
      if (timeoutMs !== undefined) {
        pending.timer = this.#clock.after(timeoutMs, () => {
          this.#forget(seq)
          reject(
            new AppError(
              'unavailable',
              `the worker for ${this.deviceId} did not answer ${request.op} within ${timeoutMs} ms`
            )
          )
        })
      }
      this.#pending.set(seq, pending)
      if (pending.taskId !== undefined) this.#tasks.set(pending.taskId, seq)
      try {
        this.#transport.send({ type: 'request', seq, request })
      } catch (err) {
        this.#forget(seq)
        pending.timer?.cancel()
        reject(
          new AppError(
            'worker_crashed',
            `cannot reach the worker for ${this.deviceId}: ${(err as Error).message}`
          )
        )
      }
    })
  }

  /**
   * Pings every `intervalMs`; a ping unanswered after `graceMs` calls `onUnresponsive` once (the
   * manager kills and restarts the process). The answer's memory figures go to `onPong`.
   */
  startHeartbeat(
    intervalMs: number,
    graceMs: number,
    onUnresponsive: () => void,
    onPong: (pong: WorkerResponse<'ping'>) => void
  ): void {
    this.stopHeartbeat()
    this.#heartbeat = this.#clock.every(intervalMs, () => {
      if (this.#pingInFlight || this.#exit) return
      this.#pingInFlight = true
      this.call({ op: 'ping' }, graceMs).then(
        (pong) => {
          this.#pingInFlight = false
          onPong(pong)
        },
        (err: AppError) => {
          this.#pingInFlight = false
          if (err.code === 'unavailable' && !this.#exit) {
            this.stopHeartbeat()
            onUnresponsive()
          }
        }
      )
    })
  }

  stopHeartbeat(): void {
    this.#heartbeat?.cancel()
    this.#heartbeat = undefined
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#transport.kill(signal)
  }

  /** Asks the worker to release everything and exit; kills it if it has not within `graceMs`. */
  async shutdown(graceMs = 3000): Promise<void> {
    this.stopHeartbeat()
    if (this.#exit) return
    const exited = new Promise<void>((resolve) => this.#transport.onExit(() => resolve()))
    const timer = this.#clock.after(graceMs, () => this.kill('SIGKILL'))
    this.call({ op: 'shutdown' }, graceMs).catch(() => this.kill('SIGKILL'))
    await exited
    timer.cancel()
  }

  /** Removes a pending call (answered, timed out, failed) and its task. */
  #forget(seq: number): Pending | undefined {
    const pending = this.#pending.get(seq)
    if (!pending) return undefined
    this.#pending.delete(seq)
    if (pending.taskId !== undefined && this.#tasks.get(pending.taskId) === seq)
      this.#tasks.delete(pending.taskId)
    return pending
  }

  /**
   * A message that could not be handled: the call it belongs to (by its `seq`, or by the task its
   * event names) fails with an error value, and the worker is asked to stop that task, which
   * nobody waits for any more. A message that belongs to no call was only logged.
   */
  #failOwner(raw: unknown, error: unknown): void {
    const seq = ownerSeq(raw, this.#tasks)
    const pending = seq === undefined ? undefined : this.#forget(seq)
    if (!pending) return
    pending.timer?.cancel()
    const reason = error instanceof Error ? error.message : String(error)
    pending.reject(
      new AppError(
        'internal',
        `the worker for ${this.deviceId} sent ${describeMessage(raw)} for ${pending.op} that could not be handled: ${reason}`
      )
    )
    if (pending.taskId !== undefined) {
      this.call({ op: 'cancel', taskId: pending.taskId }, 30_000).catch(
        log.failed(`stopping ${pending.taskId} on ${this.deviceId}`, 'debug')
      )
    }
  }

  #receive(raw: unknown, hooks: WorkerClientHooks): void {
    const parsed = parseWorkerToMain(raw)
    if (!parsed.success)
      throw new AppError('internal', `malformed: ${describeIssue(parsed.error.issues)}`)
    const msg = parsed.data
    if (msg.type === 'event') {
      const event = msg.event
      if (event.kind === 'log') {
        log[event.level](`worker for ${this.deviceId}: ${event.message}`)
        return
      }
      if ('taskId' in event && !this.#tasks.has(event.taskId)) {
        // Its call already ended (failed above, or the worker is confused): nobody wants it.
        log.warn(
          `a ${event.kind} event from the worker for ${this.deviceId} for no running task (${event.taskId.slice(0, 80)}) dropped`
        )
        return
      }
      return hooks.onEvent(event)
    }
    if (msg.type === 'hello') return
    const pending = this.#forget(msg.seq)
    if (!pending) {
      // A call that timed out or was failed above: nobody waits for this answer any more.
      log.warn(
        `an answer from the worker for ${this.deviceId} to no pending call (seq ${msg.seq}) dropped`
      )
      return
    }
    pending.timer?.cancel()
    if (!msg.ok) return pending.reject(fromSerializedError(msg.error))
    const value = workerOps[pending.op].response.safeParse(msg.value)
    if (!value.success) {
      pending.reject(
        new AppError(
          'internal',
          `the worker for ${this.deviceId} answered ${pending.op} with a malformed value`
        )
      )
      return
    }
    pending.resolve(value.data)
  }
}

/**
 * What is wrong with a message, as `path: problem`. In a union (the message types) the branch of
 * the message's own `type` says it; a type no branch has is named as such.
 */
function describeIssue(issues: readonly z.core.$ZodIssue[], at: PropertyKey[] = []): string {
  const issue = issues[0]
  if (!issue) return 'invalid'
  const path = [...at, ...issue.path]
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const matched = issue.errors.filter((b) => !b.some((i) => i.path[0] === 'type'))
    if (matched.length === 0)
      return `${[...path, 'type'].map(String).join('.')}: unknown message type`
    return describeIssue(matched[0]!, path)
  }
  return path.length ? `${path.map(String).join('.')}: ${issue.message}` : issue.message
}

/** `a rows event`, `a response (seq 4)`, `a message`: what a log line calls a message. */
function describeMessage(raw: unknown): string {
  if (typeof raw !== 'object' || raw === null) return 'a message'
  const m = raw as { type?: unknown; seq?: unknown; event?: { kind?: unknown } | null }
  if (m.type === 'response')
    return typeof m.seq === 'number' ? `a response (seq ${m.seq})` : 'a response'
  if (m.type === 'event' && typeof m.event === 'object' && m.event !== null) {
    const kind = m.event.kind
    return typeof kind === 'string' ? `a ${kind.slice(0, 40)} event` : 'an event'
  }
  return 'a message'
}

/** The seq of the pending call a message belongs to: its own `seq`, or its event's task. */
function ownerSeq(raw: unknown, tasks: ReadonlyMap<string, number>): number | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined
  const m = raw as { type?: unknown; seq?: unknown; event?: { taskId?: unknown } | null }
  if (m.type === 'response' && typeof m.seq === 'number') return m.seq
  const taskId = typeof m.event === 'object' && m.event !== null ? m.event.taskId : undefined
  return typeof taskId === 'string' ? tasks.get(taskId) : undefined
}
