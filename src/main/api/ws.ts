import { WebSocketServer, type WebSocket } from 'ws'
import { TERMINAL_JOB_STATUSES, type JobRows, type JobState } from '@shared/domain/jobs'
import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import type { InvokeChannel, InvokeInput, InvokeOutput } from '@shared/ipc/contract'
import { describeZodError, fromSerializedError, toSerializedError } from '@shared/ipc/errors'
import type { EventHub, Router } from '../ipc/router'
import { refuseUpgrade, type HttpHost } from '../host/httpHost'
import type { BadRequestLog } from './badRequests'
import { bearerToken, tokenMatches } from './http'
import { toWire } from './names'
import { WsClientMessageSchema, type WsServerMessage } from './wsMessages'

export const API_WS_PATH = '/api/v2/ws'
const MAX_FRAME_BYTES = 64 * 1024

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

  wss.on('connection', (ws: WebSocket) => {
    const clientId = `api-ws:${++clientSeq}`
    const subscriptions = new Set<string>()
    let allJobs = false
    let placements = new Set<string>()
    const lastProgress = new Map<string, number>()
    // A job can end between a subscribe and its queued event: its outcome is sent once.
    const outcomeSent = new Set<string>()
    let chain: Promise<void> = Promise.resolve()

    const send = (message: WsServerMessage): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(toWire(message)))
    }
    const enqueue = (work: () => Promise<void> | void): void => {
      chain = chain.then(work).catch((err: unknown) => {
        send({ type: 'error', error: toSerializedError(err) })
      })
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
      const result = await call('jobs:result', { jobId: job.id })
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
        await sendTerminal(job)
      }
    }

    function onDevicesChanged(snapshot: DevicesSnapshot): void {
      const now = placementKeys(snapshot)
      for (const key of placements) {
        if (now.has(key)) continue
        const [deviceId, groupId] = key.split('\u0000')
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
          if (watching(rows.jobId)) send({ type: 'rows', ...rows })
        })
      }
    })
    ws.on('close', unsubscribe)
    ws.on('error', unsubscribe)

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

    ws.on('message', (data, isBinary) => {
      let message
      try {
        if (isBinary) throw new Error('binary frames are not part of the protocol')
        const parsed = WsClientMessageSchema.safeParse(JSON.parse(data.toString()))
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
          error: { code: 'invalid_input', message: `malformed message: ${(err as Error).message}` }
        })
        return
      }
      const m = message
      enqueue(async () => {
        if (m.type === 'ping') send({ type: 'pong' })
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
