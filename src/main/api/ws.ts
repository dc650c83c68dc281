import { WebSocketServer, type WebSocket } from 'ws'
import { toPublicJobResult, toPublicJobRows } from '@shared/public/jobResult'
import {
  JobIdSchema,
  TERMINAL_JOB_STATUSES,
  type JobRows,
  type JobState
} from '@shared/domain/jobs'
import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import type { InvokeChannel, InvokeInput, InvokeOutput } from '@shared/ipc/contract'
import { describeZodError, fromSerializedError, toSerializedError } from '@shared/ipc/errors'
import type { Router } from '../router/router'
import type { EventHub } from '../router/eventHub'
import { refuseUpgrade } from '../http/replies'
import { bearerToken, tokenMatches } from '../http/requests'
import type { HttpHost } from '../http/server'
import type { BadRequestLog } from './badRequests'
import { dispatchForApi, type Endpoint, type EndpointContext } from './endpoint'
import { endpoints } from './endpoints'
import { ApiFailure, STATUS_FOR_CODE, toApiFailure } from './failures'
import { toWire } from './names'
import { isControlMessage, runControl, type ControlReply, type ControlSession } from './control'
import {
  WS_SUBMIT_ENDPOINTS,
  WsClientMessageSchema,
  type WsClientMessage,
  type WsServerMessage,
  type WsSubmitType
} from './wsMessages'
import { createLogger } from '../platform/logger'
import { runGuarded } from '../platform/boundary'
import { handleMessagesWithFlow, sendWithLimit } from '../http/socketFlow'

const log = createLogger('api')

export const API_WS_PATH = '/api/v2/ws'
const MAX_FRAME_BYTES = 64 * 1024

function submitEndpoint(type: WsSubmitType): Endpoint {
  const endpoint = endpoints.find((e) => e.path === WS_SUBMIT_ENDPOINTS[type].path)
  if (!endpoint) throw new Error(`no endpoint ${WS_SUBMIT_ENDPOINTS[type].path}`)
  return endpoint
}

function isSubmit(m: WsClientMessage): m is Extract<WsClientMessage, { type: WsSubmitType }> {
  return m.type in WS_SUBMIT_ENDPOINTS
}

/** A malformed id cannot name a job: it is an unknown id, not bad input (as on the HTTP side). */
function knownJobId(requestId: string): string {
  if (!JobIdSchema.safeParse(requestId).success) {
    throw new ApiFailure(404, {
      code: 'not_found',
      message: `no job ${requestId}`,
      field: 'request_id'
    })
  }
  return requestId
}

function placementKeys(snapshot: DevicesSnapshot): Set<string> {
  const keys = new Set<string>()
  for (const d of snapshot.devices)
    for (const p of d.placements) keys.add(`${d.id}\u0000${p.groupId}`)
  return keys
}

/**
 * The seed's WebSocket at /api/v2/ws: `connection_established` and `system_state` on connect,
 * `state_update` on every device-manager change, `model_loaded` / `device_cleared` for everyone,
 * and per-job `job_update` / `progress` / `rows` / `completed` to the sockets subscribed to a job.
 * Jobs submitted over a socket (`analyze`, `generate`, `generate_and_analyze`) go through the HTTP
 * endpoints' own handlers, in that socket's fairness lane, and the socket follows them.
 * Each socket handles its events strictly in hub order (one promise chain per socket).
 */
export function attachApiWebSocket(options: {
  host: HttpHost
  router: Router
  hub: EventHub
  tokens: () => readonly string[]
  badRequests: BadRequestLog
}): { readonly clientCount: number; close(): Promise<void> } {
  const { host, router, hub, badRequests } = options
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
  let clientSeq = 0
  // The predecessor's "current model" (set by switch_model), shared by the sockets.
  const session: ControlSession = { current: null }

  host.addUpgrade(API_WS_PATH, (req, socket, head, url) => {
    // Scripts send the bearer header; browsers cannot, so `?token=` is accepted here too.
    const token = bearerToken(req) ?? url.searchParams.get('token') ?? undefined
    if (!tokenMatches(token, options.tokens())) {
      badRequests.record(401)
      refuseUpgrade(socket, 401, 'Unauthorized')
      return
    }
    // Scripts send no Origin; a browser page always does, and it must be this server's own.
    if (req.headers.origin !== undefined && !host.isAllowedOrigin(req)) {
      badRequests.record(403)
      refuseUpgrade(socket, 403, 'Forbidden')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws))
  })

  wss.on('error', (err) => log.error(`the ${API_WS_PATH} WebSocket server failed`, err))

  wss.on('connection', (ws: WebSocket) => {
    const clientId = `api-ws:${++clientSeq}`
    const label = `${API_WS_PATH} ${clientId}`
    const subscriptions = new Set<string>()
    let allJobs = false
    let placements = new Set<string>()
    const lastProgress = new Map<string, number>()
    // Unfinished jobs this socket submitted: cancelled when it goes away, as an HTTP hang-up does.
    const submittedHere = new Set<string>()
    // A job can end between a subscribe and its queued event: its outcome is sent once.
    const outcomeSent = new Set<string>()
    let chain: Promise<void> = Promise.resolve()

    const send = (message: WsServerMessage): void =>
      sendWithLimit(ws, JSON.stringify(toWire(message)), log, label)
    /** A control reply: the predecessor's shape as it is; an error in this socket's shape. */
    const sendControl = (reply: ControlReply): void => {
      if (reply.kind === 'message') {
        sendWithLimit(ws, JSON.stringify(reply.message), log, label)
        return
      }
      const status = STATUS_FOR_CODE[reply.error.code] ?? 500
      if (status >= 400 && status < 500) badRequests.record(status)
      sendWithLimit(
        ws,
        JSON.stringify({ type: reply.type, ...reply.extra, error: reply.error }),
        log,
        label
      )
    }
    /** Runs `work` after everything queued before it; resolves when it has run. */
    const enqueue = (work: () => Promise<void> | void): Promise<void> => {
      chain = chain.then(work).catch((err: unknown) => {
        // The socket's error answer; a failure to send even that is logged, and the chain goes on.
        runGuarded(log, `${label}: answering a failure`, () =>
          send({ type: 'error', error: toSerializedError(err) })
        )
      })
      return chain
    }
    async function call<C extends InvokeChannel>(
      channel: C,
      input: InvokeInput<C>
    ): Promise<InvokeOutput<C>> {
      const result = await router.dispatch(channel, input, { clientId })
      if (!result.ok) throw fromSerializedError(result.error)
      return result.value as InvokeOutput<C>
    }
    const watching = (jobId: string): boolean => allJobs || subscriptions.has(jobId)
    const endpointContext: EndpointContext = {
      clientId,
      call: (channel, input, fieldOverrides) =>
        dispatchForApi(router, clientId, channel, input, fieldOverrides),
      waitForJob: () => Promise.reject(new Error('socket submissions never wait')),
      onClientGone: () => undefined
    }

    /** A refused request as an `error` message; the socket stays open. */
    function sendFailure(
      err: unknown,
      about: { requestId?: string; clientRequestId?: string } = {}
    ): void {
      const failure = toApiFailure(err)
      if (failure.status >= 400 && failure.status < 500) badRequests.record(failure.status)
      const jobId = failure.extra.job_id
      send({
        type: 'error',
        ...(typeof jobId === 'string' ? { jobId } : {}),
        ...about,
        error: failure.error
      })
    }

    /** `raw` is the message as sent: the endpoints compare seed aliases against what was given. */
    async function submit(
      m: Extract<WsClientMessage, { type: WsSubmitType }>,
      raw: Record<string, unknown>
    ): Promise<void> {
      const { type, client_request_id: clientRequestId, ...fields } = m
      const about = clientRequestId ? { clientRequestId } : {}
      let queued: { jobId: string; status: JobState['status']; queuePosition: number | null }
      try {
        const accepted = submitEndpoint(type).accept({ ...fields, wait: false })
        // The message was checked with the endpoint's own schema (less `wait`) on arrival.
        if (!accepted.ok) throw new Error(`malformed ${type} message`)
        const answer = await accepted.run({ raw, params: {} }, endpointContext)
        queued = answer.body as typeof queued
      } catch (err) {
        sendFailure(err, about)
        return
      }
      // Hub events of this job queue up behind this work item, so none is missed.
      subscriptions.add(queued.jobId)
      submittedHere.add(queued.jobId)
      send({
        type: 'queued',
        requestId: queued.jobId,
        jobId: queued.jobId,
        status: queued.status,
        queuePosition: queued.queuePosition,
        context: WS_SUBMIT_ENDPOINTS[type].context,
        ...about
      })
    }

    async function cancel(
      m: Extract<WsClientMessage, { type: 'cancel_request' | 'interrupt' }>
    ): Promise<void> {
      const about = {
        requestId: m.request_id,
        ...(m.client_request_id ? { clientRequestId: m.client_request_id } : {})
      }
      try {
        const job = await dispatchForApi(
          router,
          clientId,
          'jobs:cancel',
          { jobId: knownJobId(m.request_id) },
          { job_id: 'request_id' }
        )
        if (m.type === 'interrupt') {
          send({ type: 'interrupted', ...about, ...(m.context ? { context: m.context } : {}), job })
        } else {
          send({ type: 'request_cancelled', ...about, message: 'Cancelled by user', job })
        }
      } catch (err) {
        sendFailure(err, about)
      }
    }

    async function status(requestId: string): Promise<void> {
      try {
        const job = await dispatchForApi(
          router,
          clientId,
          'jobs:get',
          { jobId: knownJobId(requestId) },
          { job_id: 'request_id' }
        )
        send({
          type: 'status_update',
          requestId,
          status: job.status,
          queuePosition: job.queuePosition,
          error: job.error ?? null,
          job
        })
      } catch (err) {
        sendFailure(err, { requestId })
      }
    }

    async function systemState(): Promise<WsServerMessage & { type: 'system_state' }> {
      await call('devices:state', undefined)
      const state = await call('system:state', undefined)
      return {
        type: 'system_state',
        data: {
          ...state,
          numDevices: state.devices?.length ?? 0,
          groups: state.library?.groups ?? []
        }
      }
    }

    async function sendTerminal(job: JobState): Promise<void> {
      if (outcomeSent.has(job.id)) return
      outcomeSent.add(job.id)
      if (job.status === 'failed') {
        send({
          type: 'error',
          jobId: job.id,
          error: job.error ?? { code: 'internal', message: 'failed' }
        })
        return
      }
      const result = toPublicJobResult(await call('jobs:result', { jobId: job.id }))
      send({ type: job.status === 'done' ? 'completed' : 'cancelled', jobId: job.id, result })
    }

    async function onJobChanged(job: JobState): Promise<void> {
      if (job.kind === 'load' && job.status === 'done') {
        const snapshot = await call('devices:state', undefined)
        const device = snapshot.devices.find((d) => job.devices.includes(d.id))
        send({
          type: 'model_loaded',
          jobId: job.id,
          groupId: job.groupId,
          deviceId: device?.id ?? job.devices[0] ?? '',
          placement: device?.placements.find((p) => p.groupId === job.groupId) ?? null
        })
      }
      if (job.kind === 'load' && job.status === 'failed' && job.error) {
        send({ type: 'model_load_error', jobId: job.id, groupId: job.groupId, error: job.error })
      }
      if (!watching(job.id) || outcomeSent.has(job.id)) return
      send({ type: 'job_update', job })
      if (job.progress && lastProgress.get(job.id) !== job.progress.rowsDone) {
        lastProgress.set(job.id, job.progress.rowsDone)
        const { rowsDone, rowsTotal } = job.progress
        send({
          type: 'progress',
          jobId: job.id,
          current: rowsDone,
          total: rowsTotal,
          progress: rowsTotal > 0 ? (rowsDone / rowsTotal) * 100 : 0
        })
      }
      if (TERMINAL_JOB_STATUSES.includes(job.status)) {
        lastProgress.delete(job.id)
        submittedHere.delete(job.id)
        await sendTerminal(job)
      }
    }

    function onDevicesChanged(snapshot: DevicesSnapshot): void {
      const now = placementKeys(snapshot)
      for (const key of placements) {
        if (now.has(key)) continue
        const [deviceId = '', groupId = ''] = key.split('\u0000')
        send({ type: 'device_cleared', deviceId, groupId })
      }
      placements = now
      send({ type: 'state_update', data: snapshot })
    }

    // Subscribed before the first await: nothing that happens while we say hello is lost.
    const unsubscribe = hub.subscribe((channel, payload) => {
      if (channel === 'devices:changed') enqueue(() => onDevicesChanged(payload as DevicesSnapshot))
      else if (channel === 'jobs:changed') enqueue(() => onJobChanged(payload as JobState))
      else if (channel === 'jobs:rows') {
        const rows = payload as JobRows
        enqueue(() => {
          if (watching(rows.jobId)) send({ type: 'rows', ...toPublicJobRows(rows) })
        })
      }
    })
    const goodbye = (): void => {
      unsubscribe()
      for (const jobId of submittedHere)
        void router
          .dispatch('jobs:cancel', { jobId }, { clientId })
          .catch(log.failed(`cancelling ${jobId} after its socket closed`, 'debug'))
      submittedHere.clear()
    }
    ws.on('close', goodbye)
    ws.on('error', goodbye)

    enqueue(async () => {
      const state = await systemState()
      placements = placementKeys({
        devices: state.data.devices ?? [],
        library: state.data.library!,
        queue: state.data.queue!,
        takenAt: state.data.takenAt
      })
      send({
        type: 'connection_established',
        message: 'Talkative Workbench /api/v2/ws',
        clientId,
        numDevices: state.data.numDevices
      })
      send(state)
    })

    handleMessagesWithFlow(ws, {
      log,
      label,
      answerFailure: () =>
        send({
          type: 'error',
          error: { code: 'internal', message: 'the host failed to handle a message (logged)' }
        }),
      handle(data, isBinary) {
        let message
        let raw: Record<string, unknown> = {}
        try {
          if (isBinary) throw new Error('binary frames are not part of the protocol')
          raw = JSON.parse(data.toString()) as Record<string, unknown>
          const parsed = WsClientMessageSchema.safeParse(raw)
          if (!parsed.success) {
            const { message: text, field } = describeZodError(parsed.error)
            badRequests.record(400)
            send({
              type: 'error',
              error: { code: 'invalid_input', message: text, ...(field ? { field } : {}) }
            })
            return
          }
          message = parsed.data
        } catch (err) {
          badRequests.record(400)
          send({
            type: 'error',
            error: {
              code: 'invalid_input',
              message: `malformed message: ${(err as Error).message}`
            }
          })
          return
        }
        const m = message
        if (isControlMessage(m)) {
          // A load may take minutes: it runs beside the socket's event chain, and its replies join
          // the chain when they are ready (after every event already queued).
          void runControl(m, endpointContext, session).then(
            (replies) => enqueue(() => replies.forEach(sendControl)),
            (err: unknown) => enqueue(() => sendFailure(err))
          )
          return
        }
        return enqueue(async () => {
          if (isSubmit(m)) await submit(m, raw)
          else if (m.type === 'cancel_request' || m.type === 'interrupt') await cancel(m)
          else if (m.type === 'status') await status(m.request_id)
          else if (m.type === 'ping') send({ type: 'pong' })
          else if (m.type === 'get_state') send(await systemState())
          else if (m.type === 'unsubscribe') {
            if (m.job_id === '*') allJobs = false
            subscriptions.delete(m.job_id)
            send({ type: 'unsubscribed', jobId: m.job_id })
          } else if (m.job_id === '*') {
            allJobs = true
            send({ type: 'subscribed', jobId: '*', job: null })
          } else {
            const found = await router.dispatch('jobs:get', { jobId: m.job_id }, { clientId })
            if (!found.ok) {
              badRequests.record(404)
              send({
                type: 'error',
                jobId: m.job_id,
                error: { code: 'not_found', message: `no job ${m.job_id}`, field: 'job_id' }
              })
              return
            }
            subscriptions.add(m.job_id)
            const job = found.value as JobState
            send({ type: 'subscribed', jobId: m.job_id, job })
            // Subscribing after the end still gets the outcome.
            if (TERMINAL_JOB_STATUSES.includes(job.status)) await sendTerminal(job)
          }
        })
      }
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
