/**
 * Inbound flow control for one WebSocket connection, shared by /ipc and /api/v2/ws: the
 * WebSocket-message entry point of the host. Every message runs inside the error boundary (a
 * throw is logged and answered, the socket stays open), at most `ratePerSecond` messages a second
 * (bursts up to `burst`), each in its own turn of the event loop so other clients are served in
 * between, and never while the client is not reading its answers:
 *
 * - the socket stops being read (`pause`) while messages wait, resumes when the queue drains;
 * - above `pauseAboveBytes` of unsent answers no further message is handled until they drain;
 * - above `closeAboveBytes` of unsent data, or `maxQueued` waiting messages (data that had arrived
 *   before the pause), the connection is closed: that client is not reading, or floods.
 *
 * Nothing is dropped silently: a message is handled, or the connection ends with a reason.
 */
import type { WebSocket, RawData } from 'ws'
import { runGuarded } from '../platform/boundary'
import type { Logger } from '../platform/logger'

export interface FlowLimits {
  ratePerSecond: number
  burst: number
  /** Messages handled at once on one connection (a slow handler does not block the rest). */
  maxInFlight: number
  /** Messages that may wait; more means the client kept sending while paused: closed. */
  maxQueued: number
  pauseAboveBytes: number
  closeAboveBytes: number
}

export const DEFAULT_FLOW_LIMITS: FlowLimits = {
  ratePerSecond: 200,
  burst: 400,
  maxInFlight: 32,
  maxQueued: 20_000,
  pauseAboveBytes: 1024 * 1024,
  closeAboveBytes: 16 * 1024 * 1024
}

/** WebSocket close code for a policy violation (RFC 6455). */
const POLICY_VIOLATION = 1008

export interface MessageFlowOptions {
  log: Logger
  /** For log lines: `/ipc ws:3`. */
  label: string
  limits?: Partial<FlowLimits>
  /** Handles one message; may be async (its completion frees an in-flight slot). */
  handle(data: RawData, isBinary: boolean): unknown
  /** Answers a message whose handling threw (an error value to the client). */
  answerFailure(error: unknown): void
}

/** Starts handling `ws`'s messages under the limits; returns how to read its state (tests). */
export function handleMessagesWithFlow(
  ws: WebSocket,
  options: MessageFlowOptions
): { readonly queued: number; readonly inFlight: number } {
  const limits = { ...DEFAULT_FLOW_LIMITS, ...options.limits }
  const { log, label } = options
  const queue: Array<{ data: RawData; isBinary: boolean }> = []
  let tokens = limits.burst
  let refilledAt = performance.now()
  let inFlight = 0
  let scheduled = false
  let closed = false

  const close = (reason: string): void => {
    if (closed) return
    closed = true
    queue.length = 0
    log.warn(`${label}: closing the connection: ${reason}`)
    ws.close(POLICY_VIOLATION, reason.slice(0, 120))
    // A peer that does not read will not read the close frame either.
    setTimeout(() => ws.terminate(), 1000).unref()
  }

  const refill = (): void => {
    const now = performance.now()
    tokens = Math.min(limits.burst, tokens + ((now - refilledAt) / 1000) * limits.ratePerSecond)
    refilledAt = now
  }

  /** Handles the next waiting message if the limits allow; otherwise tries again later. */
  const pump = (): void => {
    scheduled = false
    if (closed || ws.readyState !== ws.OPEN) return
    if (queue.length === 0) {
      if (ws.isPaused) ws.resume()
      return
    }
    if (ws.bufferedAmount > limits.closeAboveBytes) {
      close(`${ws.bufferedAmount} bytes of answers are not being read`)
      return
    }
    refill()
    if (ws.bufferedAmount > limits.pauseAboveBytes || inFlight >= limits.maxInFlight) {
      later(20)
      return
    }
    if (tokens < 1) {
      later(Math.ceil(((1 - tokens) / limits.ratePerSecond) * 1000))
      return
    }
    tokens -= 1
    const next = queue.shift()!
    inFlight++
    const done = (): void => {
      inFlight--
    }
    const result = runGuarded(
      log,
      `${label}: a message`,
      () => options.handle(next.data, next.isBinary),
      (error) => options.answerFailure(error)
    )
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      ;(result as Promise<unknown>).then(done, done)
    } else done()
    // One message per turn of the event loop: other connections' I/O runs in between.
    later(0)
  }

  const later = (ms: number): void => {
    if (scheduled || closed) return
    scheduled = true
    if (ms <= 0) setImmediate(pump)
    else setTimeout(pump, ms)
  }

  ws.on('message', (data, isBinary) => {
    if (closed) return
    queue.push({ data, isBinary })
    if (queue.length > limits.maxQueued) {
      close(`more than ${limits.maxQueued} messages waiting`)
      return
    }
    // Read no more from the socket until what arrived is handled.
    if (!ws.isPaused) ws.pause()
    later(0)
  })
  ws.on('close', () => {
    closed = true
    queue.length = 0
  })

  return {
    get queued() {
      return queue.length
    },
    get inFlight() {
      return inFlight
    }
  }
}

/**
 * A send that watches the connection's unsent data: past `closeAboveBytes` (a client that never
 * reads, while events keep coming) the connection is ended instead of growing the host's memory.
 */
export function sendWithLimit(
  ws: WebSocket,
  text: string,
  log: Logger,
  label: string,
  closeAboveBytes = DEFAULT_FLOW_LIMITS.closeAboveBytes
): void {
  if (ws.readyState !== ws.OPEN) return
  if (ws.bufferedAmount + text.length > closeAboveBytes) {
    log.warn(`${label}: closing the connection: ${ws.bufferedAmount} bytes unread by the client`)
    ws.terminate()
    return
  }
  ws.send(text)
}
