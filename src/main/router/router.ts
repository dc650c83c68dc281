import {
  invokeChannels,
  isInvokeChannel,
  type InvokeChannel,
  type InvokeOutput,
  type InvokeParsedInput
} from '@shared/ipc/contract'
import {
  AppError,
  describeZodError,
  toSerializedError,
  type InvokeResult
} from '@shared/ipc/errors'

/** Who is calling: a window, a browser page of the headless host, an API client, a test. */
export interface CallerContext {
  /** Stable id of the client (used for fairness between clients and per-client subscriptions). */
  clientId: string
}

export type InvokeHandler<C extends InvokeChannel> = (
  input: InvokeParsedInput<C>,
  ctx: CallerContext
) => Promise<InvokeOutput<C>> | InvokeOutput<C>

export type InvokeHandlers = { [C in InvokeChannel]: InvokeHandler<C> }

/**
 * Binds contract channels to service methods. Transport-agnostic: Electron's ipcMain glue, the
 * headless host's WebSocket and the tests' in-memory transport all call `dispatch`. Every inbound
 * payload is parsed with the channel's schema here, once, and every failure comes back as data.
 */
export class Router {
  readonly #handlers: Partial<InvokeHandlers>

  constructor(handlers: Partial<InvokeHandlers>) {
    this.#handlers = handlers
  }

  /** Channels with a handler (the smoke test checks that this equals the contract). */
  get channels(): InvokeChannel[] {
    return Object.keys(this.#handlers) as InvokeChannel[]
  }

  async dispatch(
    channel: unknown,
    payload: unknown,
    ctx: CallerContext
  ): Promise<InvokeResult<unknown>> {
    try {
      if (!isInvokeChannel(channel)) {
        throw new AppError('unknown_channel', `unknown channel ${JSON.stringify(channel)}`)
      }
      const handler = this.#handlers[channel] as InvokeHandler<InvokeChannel> | undefined
      if (!handler) throw new AppError('unknown_channel', `channel ${channel} has no handler`)
      const parsed = invokeChannels[channel].input.safeParse(payload)
      if (!parsed.success) {
        const { message, field } = describeZodError(parsed.error)
        throw new AppError('invalid_input', `${channel}: ${message}`, { field })
      }
      const value = await handler(parsed.data as never, ctx)
      return { ok: true, value }
    } catch (err) {
      return { ok: false, error: toSerializedError(err) }
    }
  }
}
