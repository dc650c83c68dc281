/**
 * The worker-message entry point of a device worker: every message from main goes through
 * `createDispatcher`'s one error boundary. A request that cannot be handled (a malformed envelope,
 * an unknown op, a payload that fails its schema, a handler that throws or rejects, an answer that
 * cannot be sent) gets an error response for its `seq`, and the next message is handled as usual;
 * a message without a usable `seq` is logged and dropped (docs/architecture.md, "Error
 * boundaries").
 */
import { AppError, describeZodError, toSerializedError } from '@shared/ipc/errors'
import { runGuarded } from '../platform/boundary'
import type { Logger } from '../platform/logger'
import {
  MainToWorkerSchema,
  WorkerRequestSchema,
  workerOps,
  type WorkerOp,
  type WorkerRequest,
  type WorkerResponse,
  type WorkerToMain
} from './protocol'

/** One handler per operation. */
export type WorkerHandlers = {
  [O in WorkerOp]: (req: WorkerRequest<O>) => Promise<WorkerResponse<O>>
}

export interface DispatcherDeps {
  handlers: WorkerHandlers
  /** Sends a message to main; may throw (a closed channel, a value that cannot be cloned). */
  post(message: WorkerToMain): void
  log: Logger
  /** The device this process serves (known after init), for messages. */
  deviceId(): string
}

/** The `seq` of a message, when it carries a usable one (what an error answer needs). */
function seqOf(raw: unknown): number | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined
  const seq = (raw as { seq?: unknown }).seq
  return typeof seq === 'number' && Number.isInteger(seq) && seq >= 0 ? seq : undefined
}

function opOf(raw: unknown): string {
  if (typeof raw !== 'object' || raw === null) return 'message'
  const request = (raw as { request?: unknown }).request
  if (typeof request !== 'object' || request === null) return 'message'
  const op = (request as { op?: unknown }).op
  return typeof op === 'string' ? op.slice(0, 40) : 'message'
}

/** Checks one message and runs its handler; throws what the boundary answers with. */
async function handle(raw: unknown, deps: DispatcherDeps): Promise<void> {
  const device = deps.deviceId()
  const envelope = MainToWorkerSchema.safeParse(raw)
  if (!envelope.success) {
    throw new AppError(
      'invalid_input',
      `${device}: malformed message: ${describeZodError(envelope.error).message}`
    )
  }
  const { seq, request } = envelope.data
  if (!Object.hasOwn(workerOps, request.op)) {
    throw new AppError('invalid_input', `${device}: unknown op ${JSON.stringify(opOf(raw))}`, {
      field: 'op'
    })
  }
  const parsed = WorkerRequestSchema.safeParse(request)
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error)
    throw new AppError(
      'invalid_input',
      `${device}: bad ${request.op} request: ${message}`,
      field ? { field } : {}
    )
  }
  const req = parsed.data as WorkerRequest
  const handler = deps.handlers[req.op as WorkerOp] as (r: WorkerRequest) => Promise<unknown>
  const value = await handler(req)
  deps.post({ type: 'response', seq, ok: true, value })
}

/**
 * The listener for messages from main. It never throws and never leaves a rejection: whatever
 * fails is logged, answered as an error response when the message has a `seq`, else reported to
 * main as a log event. The promise settles once the answer is sent.
 */
export function createDispatcher(deps: DispatcherDeps): (raw: unknown) => Promise<void> {
  // A handler's own refusal (a group not loaded, bad input) is an answer, not a fault of this
  // process: it is logged at debug level; anything else at error level.
  const boundaryLog: Logger = {
    ...deps.log,
    error: (message, error) =>
      error instanceof AppError && error.code !== 'internal'
        ? deps.log.debug(message, error)
        : deps.log.error(message, error)
  }
  const answer = (raw: unknown, error: unknown): void => {
    const seq = seqOf(raw)
    const serialized = toSerializedError(error)
    if (seq !== undefined) return deps.post({ type: 'response', seq, ok: false, error: serialized })
    deps.post({
      type: 'event',
      event: {
        kind: 'log',
        level: 'error',
        message: `${deps.deviceId()}: a message without a seq was dropped: ${serialized.message}`
      }
    })
  }
  return async (raw) => {
    const what = (): string => {
      const seq = seqOf(raw)
      return `${deps.deviceId()}: handling ${opOf(raw)}${seq === undefined ? '' : ` (seq ${seq})`}`
    }
    const settled = runGuarded(
      boundaryLog,
      what,
      () => handle(raw, deps),
      (error) => answer(raw, error)
    )
    // Only waited for: the boundary has already logged and answered a rejection.
    await settled?.catch(() => undefined)
  }
}
