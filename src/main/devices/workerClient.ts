/**
 * The main-process end of one device worker: seq-numbered requests with one response each,
 * events, liveness. Every inbound message is checked against the protocol before use.
 */
import { AppError, fromSerializedError } from '@shared/ipc/errors'
import {
  WorkerToMainSchema,
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
    // The two worker-message entry points, each inside its error boundary: a bug in handling one
    // message is logged and the next message is handled as usual.
    transport.onMessage(
      guarded(log, `a message from the worker for ${deviceId}`, (m) => this.#receive(m, hooks))
    )
    transport.onExit(
      guarded(log, `the exit of the worker for ${deviceId}`, (exit: WorkerExit) => {
        this.#exit = exit
        this.stopHeartbeat()
        const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`
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
      const pending: Pending = { op: request.op, resolve: resolve as (v: unknown) => void, reject }
      if (timeoutMs !== undefined) {
        pending.timer = this.#clock.after(timeoutMs, () => {
          this.#pending.delete(seq)
          reject(
            new AppError(
              'unavailable',
              `the worker for ${this.deviceId} did not answer ${request.op} within ${timeoutMs} ms`
            )
          )
        })
      }
      this.#pending.set(seq, pending)
      try {
        this.#transport.send({ type: 'request', seq, request })
      } catch (err) {
        this.#pending.delete(seq)
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

  #receive(raw: unknown, hooks: WorkerClientHooks): void {
    const parsed = WorkerToMainSchema.safeParse(raw)
    if (!parsed.success) {
      hooks.onEvent({
        kind: 'log',
        level: 'error',
        message: `malformed message from the worker for ${this.deviceId}`
      })
      return
    }
    const msg = parsed.data
    if (msg.type === 'event') return hooks.onEvent(msg.event)
    if (msg.type === 'hello') return
    const pending = this.#pending.get(msg.seq)
    if (!pending) return
    this.#pending.delete(msg.seq)
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
