/**
 * Compat mode's WebSocket at `/ws`: the predecessor's own message stream, for its browser frontend
 * unchanged (its §3.4–§3.5 messages and shapes). `analyze`, `generate` and
 * `generate_and_analyze` run the /api/v2 job endpoints (one validation, one queue); the control
 * messages run `runControl` as on /api/v2/ws. Each socket is its own fairness lane and follows the
 * jobs it submitted: `processing`, `progress`, then `completed` (analysis) or
 * `generation_complete`, or `error` / `generation_error`, with `queue_update` every 2 s. The
 * frontend renders `result` / `generation_result` just as it renders `completed` /
 * `generation_complete`, and the predecessor never sent them: sending both would duplicate tabs.
 * Only served with `--compat`; tokenless for the listed origins (compatAccess.ts).
 */
import type { IncomingMessage } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
import type { ManagedDevice } from '@shared/domain/devices'
import type { JobState } from '@shared/domain/jobs'
import type { ModelLibrary } from '@shared/domain/models'
import type { EventHub } from '../router/eventHub'
import type { Router } from '../router/router'
import { refuseUpgrade } from '../http/replies'
import { bearerToken, tokenMatches } from '../http/requests'
import type { HttpHost } from '../http/server'
import type { BadRequestLog } from './badRequests'
import type { CompatAccess } from './compatAccess'
import {
  LOOSE_CONTROL_SCHEMAS,
  callEndpoint,
  isControlType,
  modelGroupsList,
  runControl,
  type ControlMessage,
  type ControlReply,
  type ControlSession
} from './control'
import { dispatchForApi, type EndpointContext } from './endpoint'
import { STATUS_FOR_CODE, toApiFailure } from './failures'
import { ApiAnalyzeOptionsSchema, ApiGenerateOptionsSchema } from './schemas'
import {
  AUTO_BATCH_SIZE_MAX,
  GENERATION_CONFIG,
  firstResidentModel,
  isAutoBatchSize,
  modelId,
  seedAnalysisMetadata,
  seedModelInfo,
  seedQueueUpdate,
  seedRow,
  seedSystemState,
  settledSwitches,
  switchingGroups,
  type CurrentModel
} from './seedViews'

export const SEED_WS_PATH = '/ws'
const MAX_FRAME_BYTES = 1024 * 1024
const QUEUE_UPDATE_MS = 2000

const ANALYSIS_KEYS = new Set(Object.keys(ApiAnalyzeOptionsSchema.shape))
const GENERATE_KEYS = new Set(Object.keys(ApiGenerateOptionsSchema.shape))

type Json = Record<string, unknown>

function objectOr(value: unknown): Json {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {}
}

/**
 * The options the predecessor's frontend sends, as the job endpoints take them: keys the
 * Workbench does not know are dropped (the predecessor ignored extra keys too), and the
 * frontend's "auto" batch size (floor(auto_batch_size_max / K)) means the device's own budget.
 */
export function seedAnalysisOptions(options: unknown): Json {
  const out: Json = {}
  for (const [k, v] of Object.entries(objectOr(options)))
    if (ANALYSIS_KEYS.has(k) && v !== null) out[k] = v
  const oec = objectOr(out.optimize_explanations_config)
  const k = Number(oec.best_of_k ?? out.best_of_k ?? 8)
  if (typeof out.batch_size === 'number' && isAutoBatchSize(out.batch_size, k)) {
    delete out.batch_size
  }
  if ('n_groups_per_rollout' in oec && out.batch_size === undefined) {
    // The frontend fills this from its batch size box; with "auto" it is the same quotient.
    const n = oec.n_groups_per_rollout
    if (typeof n === 'number' && isAutoBatchSize(n, k)) {
      out.optimize_explanations_config = { ...oec, n_groups_per_rollout: null }
    }
  }
  return out
}

export function seedGenerateOptions(options: unknown): Json {
  const out: Json = {}
  for (const [k, v] of Object.entries(objectOr(options)))
    if (GENERATE_KEYS.has(k) && v !== null) out[k] = v
  return out
}

interface Followed {
  context: 'analysis' | 'generation' | 'generation_and_analysis'
  clientRequestId?: string
  prompt: string
  /** The generation options as sent (snake_case), for `generation_complete`'s metadata. */
  generation: Json
  started: boolean
  lastProgress: number
}

export function attachSeedWebSocket(options: {
  host: HttpHost
  router: Router
  hub: EventHub
  tokens: () => readonly string[]
  compat: CompatAccess
  badRequests: BadRequestLog
}): { close(): Promise<void> } {
  const { host, router, hub, compat, badRequests } = options
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
  const session: ControlSession = { current: null }
  let clientSeq = 0
  let defaultLoadStarted = false

  const refuse = (socket: Parameters<typeof refuseUpgrade>[0], status: 401 | 403): void => {
    badRequests.record(status)
    refuseUpgrade(socket, status, status === 401 ? 'Unauthorized' : 'Forbidden')
  }
  host.addUpgrade(SEED_WS_PATH, (req: IncomingMessage, socket, head, url) => {
    const token = bearerToken(req) ?? url.searchParams.get('token') ?? undefined
    if (!tokenMatches(token, options.tokens()) && !compat.allows(req)) {
      refuse(socket, compat.isForeignOrigin(req) ? 403 : 401)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws))
  })

  wss.on('connection', (ws: WebSocket) => {
    const clientId = `seed-ws:${++clientSeq}`
    const followed = new Map<string, Followed>()
    let chain: Promise<void> = Promise.resolve()
    /** Groups this page was told are switching, until it is told they settled. */
    const toldSwitching = new Set<string>()
    const send = (message: Json): void => {
      if (ws.readyState !== ws.OPEN) return
      if (message.type === 'model_groups_list') {
        toldSwitching.clear()
        for (const g of switchingGroups(message)) toldSwitching.add(g)
      }
      ws.send(JSON.stringify(message))
    }
    const enqueue = (work: () => Promise<void> | void): void => {
      chain = chain.then(work).catch((err: unknown) => {
        send({ type: 'error', error: toApiFailure(err).error.message })
      })
    }
    const ctx: EndpointContext = {
      clientId,
      call: (channel, input, fieldOverrides) =>
        dispatchForApi(router, clientId, channel, input, fieldOverrides),
      waitForJob: () => Promise.reject(new Error('socket submissions never wait')),
      onClientGone: () => undefined
    }
    const snapshot = () => ctx.call('devices:state', undefined)
    /** The predecessor's errors are strings; the field, when there is one, leads the message. */
    const errorText = (err: unknown): string => {
      const failure = toApiFailure(err)
      if (failure.status >= 400 && failure.status < 500) badRequests.record(failure.status)
      const { message, field } = failure.error
      return field && !message.includes(field) ? `${field}: ${message}` : message
    }

    async function currentModel(library?: ModelLibrary): Promise<CurrentModel | null> {
      if (session.current) return session.current
      const s = await snapshot()
      const lib = library ?? s.library
      const resident = firstResidentModel(s.devices, lib)
      if (resident) return resident
      // The default group: the first usable one (the demo when nothing else is configured).
      const g = lib.groups.find((x) => x.status === 'ok' && x.lenses.length > 0)
      const l = g?.lenses[0]
      return g && l ? { groupId: g.groupId, modelId: modelId(g.groupId, l.id) } : null
    }

    async function greet(): Promise<void> {
      const s = await snapshot()
      const current = await currentModel(s.library)
      // Nothing resident: the default group is loaded now, so the frontend finds it ready.
      if (current && !firstResidentModel(s.devices, s.library) && !defaultLoadStarted) {
        defaultLoadStarted = true
        void ctx.call('models:load', { groupId: current.groupId, wait: true }).catch(() => {
          defaultLoadStarted = false
        })
      }
      const [groupId, lensId] = current ? splitModel(current.modelId) : ['', '']
      const info = current ? seedModelInfo(s.library, groupId, lensId) : null
      send({
        type: 'connection_established',
        message: 'Connected to Talkative Workbench (compat mode)',
        model_id: current?.modelId ?? null,
        model_name: info?.display_name ?? null,
        auto_batch_size_max: AUTO_BATCH_SIZE_MAX,
        generation_config: GENERATION_CONFIG
      })
      send({ type: 'system_state', data: seedSystemState(s.devices, s.library) })
      send(await modelGroupsList(ctx, { current }))
    }

    async function queueUpdate(): Promise<void> {
      send(seedQueueUpdate((await snapshot()).queue))
    }

    async function submit(m: Json): Promise<void> {
      const clientRequestId =
        typeof m.client_request_id === 'string' ? m.client_request_id : undefined
      const about = clientRequestId ? { client_request_id: clientRequestId } : {}
      const current = await currentModel()
      const modelOf = (x: unknown): string | undefined =>
        typeof x === 'string' && x ? x : current?.modelId
      let path: string
      let body: Json
      let context: Followed['context']
      let prompt: string
      let generation: Json = {}
      if (m.type === 'analyze') {
        context = 'analysis'
        prompt = typeof m.text === 'string' ? m.text : ''
        body = { model_id: modelOf(m.model_id), prompt, options: seedAnalysisOptions(m.options) }
        path = '/models/process'
      } else if (m.type === 'generate') {
        context = 'generation'
        prompt = typeof m.text === 'string' ? m.text : ''
        generation = seedGenerateOptions(m.options)
        body = { model_id: modelOf(m.model_id), prompt, options: generation }
        path = '/models/generate'
      } else {
        context = 'generation_and_analysis'
        const gen = objectOr(m.generation)
        const ana = objectOr(m.analysis)
        prompt = typeof gen.text === 'string' ? gen.text : ''
        // One completion, analysed with its prompt (as the predecessor forced num_completions 1).
        generation = { ...seedGenerateOptions(gen.options), num_completions: 1 }
        body = {
          model_id: modelOf(gen.model_id),
          prompt,
          options: seedAnalysisOptions(ana.options),
          generation
        }
        path = '/models/generate-and-analyze'
      }
      const errorType = context === 'generation' ? 'generation_error' : 'error'
      if (!prompt.trim()) {
        badRequests.record(400)
        send({ type: errorType, error: 'text must not be empty', context, ...about })
        return
      }
      if (body.model_id === undefined) {
        send({ type: errorType, error: 'no model group is available', context, ...about })
        return
      }
      let queued: Json
      try {
        queued = await callEndpoint(ctx, 'POST', path, { ...body, wait: false })
      } catch (err) {
        send({ type: errorType, error: errorText(err), context, ...about })
        return
      }
      const jobId = String(queued.job_id)
      followed.set(jobId, {
        context,
        clientRequestId,
        prompt,
        generation,
        started: false,
        lastProgress: -1
      })
      const queue = (await snapshot()).queue
      const base = {
        type: 'queued',
        request_id: jobId,
        queue_position: queued.queue_position ?? 0,
        queue_size: queue.queued
      }
      if (context === 'generation_and_analysis') {
        send({
          ...base,
          context: 'generation',
          ...(clientRequestId ? { client_request_id: `${clientRequestId}_gen` } : {})
        })
        send({ ...base, context: 'analysis', ...about })
      } else send({ ...base, context, ...about })
      send(seedQueueUpdate(queue))
      // The job may have moved on before it was followed: report where it is now.
      await onJob(await ctx.call('jobs:get', { jobId }))
    }

    async function onJob(job: JobState): Promise<void> {
      const f = followed.get(job.id)
      if (!f) return
      const device = job.devices.join(', ') || null
      const about = f.clientRequestId ? { client_request_id: f.clientRequestId } : {}
      if (!f.started && (job.status === 'running' || job.status === 'done')) {
        f.started = true
        const context = f.context === 'analysis' ? 'analysis' : 'generation'
        send({ type: 'processing', request_id: job.id, context, device, ...about })
      }
      // A job run whole learns its total with its first rows: no "0 of 0" before that.
      if (
        job.progress &&
        job.progress.rowsTotal > 0 &&
        job.progress.rowsDone !== f.lastProgress &&
        job.status === 'running'
      ) {
        f.lastProgress = job.progress.rowsDone
        const { rowsDone, rowsTotal } = job.progress
        send({
          type: 'progress',
          request_id: job.id,
          current: rowsDone,
          total: rowsTotal,
          progress: rowsTotal ? Math.round((rowsDone / rowsTotal) * 100) : 0,
          message: `Analysed ${rowsDone} of ${rowsTotal} positions`,
          device
        })
      }
      if (job.status === 'done') {
        followed.delete(job.id)
        const r = await ctx.call('jobs:result', { jobId: job.id })
        if (f.context !== 'analysis') {
          const gen = f.generation
          send({
            type: 'generation_complete',
            request_id: job.id,
            result: {
              completions: r.completions,
              metadata: {
                model_id: modelId(job.groupId, job.lensId ?? ''),
                model_name: job.lensId,
                prompt: f.prompt,
                num_completions: r.completions.length,
                max_new_tokens: gen.max_new_tokens ?? gen.num_tokens ?? null,
                temperature: gen.temperature ?? null,
                top_p: gen.top_p ?? null,
                device
              }
            },
            device,
            ...(f.context === 'generation_and_analysis' && f.clientRequestId
              ? { client_request_id: `${f.clientRequestId}_gen` }
              : about)
          })
        }
        if (f.context !== 'generation') {
          const library = (await snapshot()).library
          send({
            type: 'completed',
            request_id: job.id,
            result: {
              data: r.rows.map(seedRow),
              metadata: seedAnalysisMetadata(job, r.metadata, library)
            },
            context: 'analysis',
            device,
            ...about
          })
        }
      } else if (job.status === 'failed') {
        followed.delete(job.id)
        const error = job.error?.message ?? 'failed'
        if (f.context === 'generation')
          send({ type: 'generation_error', request_id: job.id, error, device, ...about })
        else
          send({ type: 'error', request_id: job.id, error, context: 'analysis', device, ...about })
      } else if (job.status === 'cancelled') {
        followed.delete(job.id)
      }
    }

    async function cancel(m: Json): Promise<void> {
      const requestId = typeof m.request_id === 'string' ? m.request_id : ''
      const f = followed.get(requestId)
      try {
        await ctx.call('jobs:cancel', { jobId: requestId }, { job_id: 'request_id' })
      } catch (err) {
        send({ type: 'error', request_id: requestId, error: errorText(err) })
        return
      }
      followed.delete(requestId)
      if (m.type === 'interrupt') {
        send({
          type: 'interrupted',
          request_id: requestId,
          context: typeof m.context === 'string' ? m.context : (f?.context ?? null),
          ...(f?.clientRequestId ? { client_request_id: f.clientRequestId } : {})
        })
      } else {
        send({ type: 'request_cancelled', request_id: requestId, message: 'Request cancelled' })
      }
    }

    async function status(m: Json): Promise<void> {
      const requestId = typeof m.request_id === 'string' ? m.request_id : ''
      try {
        const job = await ctx.call('jobs:get', { jobId: requestId }, { job_id: 'request_id' })
        const seedStatus =
          job.status === 'done'
            ? 'completed'
            : job.status === 'loading' || job.status === 'running'
              ? 'processing'
              : job.status
        send({
          type: 'status_update',
          request_id: requestId,
          status: seedStatus,
          error: job.error?.message ?? null
        })
      } catch (err) {
        send({ type: 'error', request_id: requestId, error: errorText(err) })
      }
    }

    const sendControl = (reply: ControlReply): void => {
      if (reply.kind === 'message') send(reply.message)
      else {
        const status = STATUS_FOR_CODE[reply.error.code] ?? 500
        if (status >= 400 && status < 500) badRequests.record(status)
        send({ type: reply.type, ...reply.extra, error: reply.error.message })
      }
    }

    /**
     * A switch the page was told of settled (the default group's load at connect, another page's
     * load or unload): without a word the predecessor's frontend would show "switching…" for good.
     */
    async function onDevices(devices: ManagedDevice[]): Promise<void> {
      if (toldSwitching.size === 0) return
      const { completed, gone } = settledSwitches(toldSwitching, devices)
      for (const { groupId, device } of completed) {
        toldSwitching.delete(groupId)
        send({ type: 'group_switch_status', status: 'completed', group_id: groupId, device })
      }
      for (const groupId of gone) toldSwitching.delete(groupId)
      if (gone.length > 0) send(await modelGroupsList(ctx, { current: await currentModel() }))
    }

    const unsubscribe = hub.subscribe((channel, payload) => {
      if (channel === 'jobs:changed') {
        const job = payload as JobState
        if (followed.has(job.id)) enqueue(() => onJob(job))
      } else if (channel === 'devices:changed' && toldSwitching.size > 0) {
        const { devices } = payload as { devices: ManagedDevice[] }
        enqueue(() => onDevices(devices))
      }
    })
    const timer = setInterval(() => enqueue(queueUpdate), QUEUE_UPDATE_MS)
    timer.unref?.()

    ws.on('message', (data, isBinary) => {
      let m: Json
      try {
        if (isBinary) throw new Error('binary frame')
        m = objectOr(JSON.parse(data.toString()))
      } catch {
        badRequests.record(400)
        send({ type: 'error', error: 'messages are JSON objects with a type' })
        return
      }
      const type = m.type
      if (isControlType(type)) {
        const parsed = LOOSE_CONTROL_SCHEMAS[type].safeParse(m)
        if (!parsed.success) {
          badRequests.record(400)
          send({
            type: 'error',
            error: `${type}: ${parsed.error.issues[0]?.message ?? 'bad message'}`
          })
          return
        }
        const message = parsed.data as ControlMessage
        void runControl(message, ctx, session).then(
          (replies) => enqueue(() => replies.forEach(sendControl)),
          (err: unknown) => enqueue(() => send({ type: 'error', error: errorText(err) }))
        )
        return
      }
      enqueue(async () => {
        if (type === 'analyze' || type === 'generate' || type === 'generate_and_analyze')
          await submit(m)
        else if (type === 'cancel_request' || type === 'interrupt') await cancel(m)
        else if (type === 'status') await status(m)
        else {
          badRequests.record(400)
          send({ type: 'error', error: `Unknown message type: ${String(type)}` })
        }
      })
    })
    ws.on('close', () => {
      clearInterval(timer)
      unsubscribe()
      // A closed page's unfinished jobs are cancelled, as on /api/v2/ws.
      for (const jobId of followed.keys())
        void ctx.call('jobs:cancel', { jobId }).catch(() => undefined)
      followed.clear()
    })
    enqueue(greet)
  })

  return {
    async close() {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    }
  }
}

function splitModel(id: string): [string, string] {
  const i = id.indexOf('/')
  return [id.slice(0, i), id.slice(i + 1)]
}
