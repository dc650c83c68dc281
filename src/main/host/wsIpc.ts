import { WebSocketServer, type WebSocket } from 'ws'
import { z } from 'zod'
import type { InvokeResult } from '@shared/ipc/errors'
import type { Router } from '../router/router'
import type { EventHub } from '../router/eventHub'
import { refuseUpgrade } from '../http/replies'
import type { HttpHost } from '../http/server'
import { handleMessagesWithFlow, sendWithLimit } from '../http/socketFlow'
import { createLogger } from '../platform/logger'

const log = createLogger('host')

export const IPC_PATH = '/ipc'

/** Frames from the browser: one request each, answered by a `result` with the same id. */
export const InboundFrameSchema = z.object({
  type: z.literal('invoke'),
  id: z.union([z.number().int(), z.string().max(64)]),
  channel: z.string().max(200),
  payload: z.unknown().optional()
})

/** Frames to the browser. */
export type WireMessage =
  | { type: 'result'; id: number | string | null; result: InvokeResult<unknown> }
  | { type: 'event'; channel: string; payload: unknown }

const MAX_FRAME_BYTES = 4 * 1024 * 1024

/**
 * Serves the contract over a WebSocket at /ipc: each connection is one client, subscribed to the
 * hub while it is open (so polling services run only while a page is connected).
 */
export function attachWebSocketIpc(options: { host: HttpHost; router: Router; hub: EventHub }): {
  readonly clientCount: number
  close(): Promise<void>
} {
  const { host, router, hub } = options
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
  let clientSeq = 0

  host.addUpgrade(IPC_PATH, (req, socket, head, url) => {
    // Another local user, or a web page in this user's browser, can reach 127.0.0.1 too: both
    // the token and our own Origin are required.
    if (!host.hasValidToken(req, url)) {
      refuseUpgrade(socket, 401, 'Unauthorized')
      return
    }
    if (!host.isAllowedOrigin(req)) {
      refuseUpgrade(socket, 403, 'Forbidden')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  })

  wss.on('error', (err) => log.error('the /ipc WebSocket server failed', err))

  wss.on('connection', (ws: WebSocket) => {
    const clientId = `ws:${++clientSeq}`
    const label = `/ipc ${clientId}`
    const send = (message: WireMessage): void =>
      sendWithLimit(ws, JSON.stringify(message), log, label)
    const unsubscribe = hub.subscribe((channel, payload) =>
      send({ type: 'event', channel, payload })
    )
    ws.on('close', unsubscribe)
    ws.on('error', (err) => {
      log.debug(`${label} failed`, err)
      unsubscribe()
    })
    const malformed = (message: string): void =>
      send({
        type: 'result',
        id: null,
        result: {
          ok: false,
          error: { code: 'invalid_input', message: `malformed frame: ${message}` }
        }
      })
    handleMessagesWithFlow(ws, {
      log,
      label,
      async handle(data, isBinary) {
        if (isBinary) return malformed('binary frames are not part of the protocol')
        let json: unknown
        try {
          json = JSON.parse(data.toString())
        } catch (err) {
          return malformed((err as Error).message)
        }
        const parsed = InboundFrameSchema.safeParse(json)
        if (!parsed.success) return malformed('expected {type:"invoke", id, channel, payload}')
        const frame = parsed.data
        const result = await router.dispatch(frame.channel, frame.payload, { clientId })
        send({ type: 'result', id: frame.id, result })
      },
      answerFailure: () =>
        send({
          type: 'result',
          id: null,
          result: {
            ok: false,
            error: { code: 'internal', message: 'the host failed to handle a frame (logged)' }
          }
        })
    })
  })

  return {
    get clientCount() {
      return wss.clients.size
    },
    async close() {
      for (const client of wss.clients) client.terminate()
      await new Promise<void>((resolvePromise) => wss.close(() => resolvePromise()))
    }
  }
}
