/* eslint-disable @typescript-eslint/no-explicit-any -- JSON from the wire; the assertions check its shape */
/**
 * /api/v2/ws against a running host: auth, the hello, and the order of events for a load and for
 * an analysis job, per-job subscriptions, device_cleared, and bad messages; jobs submitted over the
 * socket (analyze, generate, generate_and_analyze), cancel / interrupt / status, and fairness
 * between two submitting sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  api,
  GROUP,
  HUGE_GROUP,
  sameRows,
  openApiSocket,
  socket,
  startApiHost,
  type ApiHost,
  type WsMessage
} from './helpers'

let h: ApiHost

beforeAll(async () => {
  h = await startApiHost()
}, 120_000)

afterAll(async () => {
  await h?.stop()
})

const forJob = (jobId: string) => (m: WsMessage) => m.job_id === jobId || m.job?.id === jobId

describe('/api/v2/ws', () => {
  it('needs the token (header or query) and refuses foreign origins', async () => {
    expect(await openApiSocket(h, { token: null })).toBe(401)
    expect(await openApiSocket(h, { token: 'wrong' })).toBe(401)
    expect(await openApiSocket(h, { origin: 'http://evil.example' })).toBe(403)
    const byQuery = await openApiSocket(h, { query: true, origin: `http://127.0.0.1:${h.port}` })
    expect(typeof byQuery).toBe('object')
    if (typeof byQuery === 'object') byQuery.close()
  })

  it('says hello with the device count, then the system state', async () => {
    const s = await socket(h)
    await s.next((m) => m.type === 'system_state')
    expect(s.messages[0]).toMatchObject({ type: 'connection_established', num_devices: 2 })
    expect(s.messages[1]!.type).toBe('system_state')
    expect(s.messages[1]!.data.devices.map((d: any) => d.id)).toEqual(['cpu:0', 'cpu:1'])
    expect(s.messages[1]!.data.groups.some((g: any) => g.group_id === GROUP)).toBe(true)
    s.close()
  })

  it('orders the events of a load: queued, loading, model_loaded, done, completed', async () => {
    const s = await socket(h)
    await s.next((m) => m.type === 'system_state')
    s.send({ type: 'subscribe', job_id: '*' })
    await s.next((m) => m.type === 'subscribed')
    const r = await api(h, 'POST', '/groups/load', { group_id: GROUP, device_id: 'cpu:0' })
    expect(r.status).toBe(200)
    const jobId = r.body.job_id
    await s.next((m) => m.type === 'completed' && m.job_id === jobId)
    const mine = s.messages.filter(forJob(jobId))
    const kinds = mine.map((m) => (m.type === 'job_update' ? `job_update:${m.job.status}` : m.type))
    const dedup = kinds.filter((k, i) => k !== kinds[i - 1])
    expect(dedup[0]).toBe('job_update:queued')
    expect(dedup.slice(-3)).toEqual(['model_loaded', 'job_update:done', 'completed'])
    expect(dedup.indexOf('job_update:loading')).toBeGreaterThan(0)
    const loaded = mine.find((m) => m.type === 'model_loaded')!
    expect(loaded).toMatchObject({ group_id: GROUP, device_id: 'cpu:0' })
    expect(loaded.placement.state).toBe('ready')
    // The device manager's state went loading → ready in state_update messages.
    await s.next(
      (m) =>
        m.type === 'state_update' &&
        m.data.devices[0].placements.some((p: any) => p.group_id === GROUP && p.state === 'ready')
    )
    const states = s.messages
      .filter((m) => m.type === 'state_update')
      .map(
        (m) => m.data.devices[0].placements.find((p: any) => p.group_id === GROUP)?.state ?? 'none'
      )
    expect(states.indexOf('loading')).toBeGreaterThanOrEqual(0)
    expect(states.lastIndexOf('ready')).toBeGreaterThan(states.indexOf('loading'))
    s.close()
  })

  it('orders the events of an analysis: queued, running, progress and rows, done, completed', async () => {
    const all = await socket(h)
    await all.next((m) => m.type === 'system_state')
    all.send({ type: 'subscribe', job_id: '*' })
    await all.next((m) => m.type === 'subscribed')
    const prompt = 'The cat sat on the red chair. A dog ran to the river in the morning.'
    const r = await api(h, 'POST', '/models/process', {
      model_id: `${GROUP}/words-l1`,
      prompt,
      device_id: 'cpu:0',
      options: { best_of_k: 2, salience: false, rows_per_batch: 8 },
      wait: false
    })
    expect(r.status).toBe(202)
    const jobId = r.body.job_id
    // A second socket that follows only this job, subscribed after it was queued.
    const one = await socket(h)
    await one.next((m) => m.type === 'system_state')
    one.send({ type: 'subscribe', job_id: jobId })
    const other = await api(h, 'POST', '/models/process', {
      model_id: `${GROUP}/words-l1`,
      prompt: 'Another text.',
      options: { best_of_k: 2, salience: false },
      wait: false
    })
    const completed = await all.next((m) => m.type === 'completed' && m.job_id === jobId)
    await one.next((m) => m.type === 'completed' && m.job_id === jobId)

    const mine = all.messages.filter(forJob(jobId))
    const statuses = mine.filter((m) => m.type === 'job_update').map((m) => m.job.status)
    const order = statuses.filter((s, i) => s !== statuses[i - 1])
    expect(order[0]).toBe('queued')
    expect(order.slice(-1)).toEqual(['done'])
    expect(order).toContain('running')
    const types = mine.map((m) => m.type)
    expect(types[types.length - 1]).toBe('completed')
    const firstRunning = mine.findIndex(
      (m) => m.type === 'job_update' && m.job.status === 'running'
    )
    const firstRows = types.indexOf('rows')
    expect(firstRows).toBeGreaterThan(firstRunning)
    expect(types.lastIndexOf('rows')).toBeLessThan(types.lastIndexOf('job_update'))
    // Several batches: several row messages, contiguous, equal to the final result.
    const rowMessages = mine.filter((m) => m.type === 'rows')
    expect(rowMessages.length).toBeGreaterThan(1)
    let next = 0
    const streamed: any[] = []
    for (const m of rowMessages) {
      expect(m.start_index).toBe(next)
      next += m.rows.length
      streamed.push(...m.rows)
    }
    expect(streamed).toEqual(completed.result.rows)
    const progress = mine.filter((m) => m.type === 'progress').map((m) => m.current)
    expect(progress).toEqual([...progress].sort((a, b) => a - b))
    const last = mine.filter((m) => m.type === 'progress').pop()!
    expect(last.current).toBe(last.total)
    expect(last.progress).toBe(100)
    const polled = await api(h, 'GET', `/jobs/${jobId}`)
    expect(completed.result.rows).toEqual(polled.body.rows)

    // The one-job socket: its subscription ack, then only this job's messages, one outcome.
    const jobMessages = one.messages.filter((m) => m.job_id || m.job)
    expect(jobMessages.every(forJob(jobId))).toBe(true)
    expect(jobMessages[0]!.type).toBe('subscribed')
    expect(jobMessages.filter((m) => m.type === 'completed')).toHaveLength(1)
    expect(one.messages.some((m) => forJob(other.body.job_id)(m))).toBe(false)
    all.close()
    one.close()
  })

  it('tells every socket when a group leaves a device (device_cleared)', async () => {
    const s = await socket(h)
    await s.next((m) => m.type === 'system_state')
    const from = s.messages.length
    const r = await api(h, 'POST', '/groups/unload', {
      group_id: GROUP,
      device_id: 'cpu:0',
      force: true
    })
    expect(r.status).toBe(200)
    const cleared = await s.next((m) => m.type === 'device_cleared', 10_000, from)
    expect(cleared).toMatchObject({ device_id: 'cpu:0', group_id: GROUP })
    s.close()
  })

  it('answers bad messages with an error and keeps the socket open', async () => {
    const s = await socket(h)
    await s.next((m) => m.type === 'system_state')
    s.send('{ not json')
    const bad = await s.next((m) => m.type === 'error')
    expect(bad.error.code).toBe('invalid_input')
    s.send({ type: 'subscribe' })
    const missing = await s.next((m) => m.type === 'error' && m.error.field === 'job_id')
    expect(missing.error.code).toBe('invalid_input')
    s.send({ type: 'subscribe', job_id: 'job-nope-0-0' })
    const unknown = await s.next((m) => m.type === 'error' && m.error.code === 'not_found')
    expect(unknown.job_id).toBe('job-nope-0-0')
    s.send({ type: 'ping' })
    await s.next((m) => m.type === 'pong')
    s.send({ type: 'get_state' })
    await s.next((m) => m.type === 'system_state', 10_000, 2)
    s.close()
  })
})

const LENS = `${GROUP}/words-l1`
const LONG_PROMPT = Array.from(
  { length: 6 },
  () => 'The cat sat on the red chair. A dog ran to the river in the morning.'
).join(' ')

/** Messages about one job, as `type` or `job_update:status`, repeats folded. */
function eventOrder(messages: WsMessage[], jobId: string): string[] {
  const kinds = messages
    .filter((m) => m.job_id === jobId || m.job?.id === jobId)
    .map((m) => (m.type === 'job_update' ? `job_update:${m.job.status}` : m.type))
  return kinds.filter((k, i) => k !== kinds[i - 1])
}

async function ready(): Promise<Awaited<ReturnType<typeof socket>>> {
  const s = await socket(h)
  await s.next((m) => m.type === 'system_state')
  return s
}

describe('/api/v2/ws submissions', () => {
  it('analyze: queued, then that job streamed to the socket, with the HTTP result', async () => {
    const s = await ready()
    const options = { best_of_k: 2, salience: false, rows_per_batch: 8 }
    const prompt = 'The cat sat on the red chair. A dog ran to the river in the morning.'
    s.send({
      type: 'analyze',
      model_id: LENS,
      prompt,
      device_id: 'cpu:0',
      options,
      client_request_id: 'mine-1'
    })
    const queued = await s.next((m) => m.type === 'queued')
    expect(queued).toMatchObject({
      client_request_id: 'mine-1',
      context: 'analysis',
      job_id: queued.request_id
    })
    expect(queued.queue_position === null || queued.queue_position >= 1).toBe(true)
    const jobId = queued.request_id
    const completed = await s.next((m) => m.type === 'completed' && m.job_id === jobId)

    const order = eventOrder(s.messages, jobId)
    expect(order[0]).toBe('queued')
    expect(order[1]).toBe('job_update:queued')
    expect(order).toContain('job_update:running')
    expect(order.slice(-2)).toEqual(['job_update:done', 'completed'])
    expect(order.indexOf('rows')).toBeGreaterThan(order.indexOf('job_update:running'))
    const streamed = s.messages
      .filter((m) => m.type === 'rows' && m.job_id === jobId)
      .flatMap((m) => m.rows)
    expect(streamed).toEqual(completed.result.rows)
    expect(completed.result.job.client_id).toMatch(/^api-ws:/)

    // The same request over HTTP gives the same rows: one code path.
    const http = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt,
      device_id: 'cpu:0',
      options
    })
    expect(http.status).toBe(200)
    expect(sameRows(completed.result.rows, http.body.rows)).toBe(true)

    s.send({ type: 'status', request_id: jobId })
    const status = await s.next((m) => m.type === 'status_update')
    expect(status).toMatchObject({ request_id: jobId, status: 'done', error: null })
    s.close()
  })

  it('generate and generate_and_analyze: queued with their context, completed with completions', async () => {
    const s = await ready()
    s.send({
      type: 'generate',
      model_id: LENS,
      prompt: 'The cat',
      num_completions: 2,
      options: { max_new_tokens: 4, seed: 7 }
    })
    const gen = await s.next((m) => m.type === 'queued' && m.context === 'generation')
    s.send({
      type: 'generate_and_analyze',
      model_id: LENS,
      prompt: 'The dog',
      num_predictions: 1,
      generation: { max_new_tokens: 4 },
      options: { salience: false }
    })
    const both = await s.next((m) => m.type === 'queued' && m.context === 'generation_and_analysis')
    const genDone = await s.next((m) => m.type === 'completed' && m.job_id === gen.request_id)
    expect(genDone.result.completions).toHaveLength(2)
    const bothDone = await s.next((m) => m.type === 'completed' && m.job_id === both.request_id)
    expect(bothDone.result.completions.length).toBeGreaterThanOrEqual(1)
    expect(bothDone.result.rows.length).toBeGreaterThan(0)
    s.close()
  })

  it('cancel_request and interrupt: replies, then the cancelled outcome', async () => {
    const s = await ready()
    const options = { best_of_k: 2, salience: false, rows_per_batch: 4 }
    s.send({ type: 'analyze', model_id: LENS, prompt: LONG_PROMPT, device_id: 'cpu:1', options })
    s.send({
      type: 'analyze',
      model_id: LENS,
      prompt: LONG_PROMPT,
      device_id: 'cpu:1',
      options,
      client_request_id: 'second'
    })
    const second = await s.next((m) => m.type === 'queued' && m.client_request_id === 'second')
    const first = s.messages.find((m) => m.type === 'queued' && m !== second)!
    s.send({ type: 'cancel_request', request_id: second.request_id, client_request_id: 'second' })
    const cancelled = await s.next((m) => m.type === 'request_cancelled')
    expect(cancelled).toMatchObject({
      request_id: second.request_id,
      client_request_id: 'second',
      job: { status: 'cancelled' }
    })
    await s.next((m) => m.type === 'cancelled' && m.job_id === second.request_id)

    s.send({ type: 'interrupt', request_id: first.request_id, context: 'analysis' })
    const interrupted = await s.next((m) => m.type === 'interrupted')
    expect(interrupted).toMatchObject({ request_id: first.request_id, context: 'analysis' })
    const outcome = await s.next(
      (m) => (m.type === 'cancelled' || m.type === 'completed') && m.job_id === first.request_id
    )
    if (outcome.type === 'cancelled') {
      // Rows analysed before the interrupt are kept.
      expect(outcome.result.job.status).toBe('cancelled')
    }
    expect(eventOrder(s.messages, second.request_id).slice(-1)).toEqual(['cancelled'])

    s.send({ type: 'cancel_request', request_id: 'job-nope-0-0' })
    const unknown = await s.next((m) => m.type === 'error' && m.request_id === 'job-nope-0-0')
    expect(unknown.error).toMatchObject({ code: 'not_found', field: 'request_id' })
    s.close()
  })

  it('answers bad submissions with an error naming the field; the socket stays open', async () => {
    const s = await ready()
    s.send({ type: 'analyze', model_id: LENS, client_request_id: 'no-prompt' })
    const missing = await s.next((m) => m.type === 'error')
    expect(missing.error).toMatchObject({ code: 'invalid_input', field: 'prompt' })
    s.send({ type: 'analyze', model_id: LENS, prompt: 'x', options: { best_of_k: 0 } })
    const range = await s.next((m) => m.type === 'error' && m.error.field === 'options.best_of_k')
    expect(range.error.code).toBe('invalid_input')
    s.send({ type: 'analyze', model_id: LENS, prompt: 'x', wait: true })
    await s.next((m) => m.type === 'error' && /wait/.test(m.error.message))
    s.send({
      type: 'analyze',
      model_id: 'demo-words/nope',
      prompt: 'x',
      client_request_id: 'unknown-lens'
    })
    const lens = await s.next((m) => m.type === 'error' && m.client_request_id === 'unknown-lens')
    expect(lens.error).toMatchObject({ code: 'not_found', field: 'model_id' })
    s.send({ type: 'analyze', model_id: HUGE_GROUP, prompt: 'x', client_request_id: 'huge' })
    const huge = await s.next((m) => m.type === 'error' && m.client_request_id === 'huge')
    expect(huge.error.code).toBe('unavailable')
    expect(typeof huge.job_id).toBe('string')
    expect(s.messages.some((m) => m.type === 'queued')).toBe(false)
    s.send({ type: 'ping' })
    await s.next((m) => m.type === 'pong')
    s.close()
  })

  it('serves two submitting sockets fairly: each socket is its own lane', async () => {
    const watcher = await ready()
    watcher.send({ type: 'subscribe', job_id: '*' })
    await watcher.next((m) => m.type === 'subscribed')
    const busy = await ready()
    const polite = await ready()
    const options = { best_of_k: 1, salience: false, rows_per_batch: 8 }
    for (let i = 0; i < 4; i++) {
      busy.send({
        type: 'analyze',
        model_id: LENS,
        prompt: LONG_PROMPT,
        device_id: 'cpu:0',
        options
      })
    }
    await busy.next(() => busy.messages.filter((m) => m.type === 'queued').length === 4)
    polite.send({
      type: 'analyze',
      model_id: LENS,
      prompt: 'A short one.',
      device_id: 'cpu:0',
      options
    })
    const politeQueued = await polite.next((m) => m.type === 'queued')
    const busyIds = busy.messages.filter((m) => m.type === 'queued').map((m) => m.request_id)
    for (const id of busyIds) await busy.next((m) => m.type === 'completed' && m.job_id === id)
    await polite.next((m) => m.type === 'completed' && m.job_id === politeQueued.request_id)

    const started: string[] = []
    for (const m of watcher.messages) {
      if (m.type !== 'job_update' || m.job.status !== 'running') continue
      if (!started.includes(m.job.id)) started.push(m.job.id)
    }
    const mine = [...busyIds, politeQueued.request_id]
    const order = started.filter((id) => mine.includes(id))
    expect(order).toHaveLength(5)
    // The second socket's one job does not wait behind the first socket's burst.
    expect(order.indexOf(politeQueued.request_id)).toBeLessThanOrEqual(1)
    // Each socket followed only its own jobs.
    const jobIdsOf = (messages: WsMessage[]): Set<string> =>
      new Set(messages.map((m) => m.job_id ?? m.job?.id).filter(Boolean))
    expect([...jobIdsOf(polite.messages)]).toEqual([politeQueued.request_id])
    expect([...jobIdsOf(busy.messages)].sort()).toEqual([...busyIds].sort())
    watcher.close()
    busy.close()
    polite.close()
  })

  it('cancels the unfinished jobs of a socket that goes away', async () => {
    const s = await ready()
    const options = { best_of_k: 2, salience: false, rows_per_batch: 4 }
    for (let i = 0; i < 2; i++)
      s.send({ type: 'analyze', model_id: LENS, prompt: LONG_PROMPT, device_id: 'cpu:1', options })
    await s.next(() => s.messages.filter((m) => m.type === 'queued').length === 2)
    const last = s.messages.filter((m) => m.type === 'queued')[1]!.request_id
    s.close()
    let status = ''
    for (let i = 0; i < 100 && status !== 'cancelled'; i++) {
      const r = await api(h, 'GET', `/jobs/${last}`)
      status = r.body.job.status
      if (status !== 'cancelled') await new Promise((r) => setTimeout(r, 100))
    }
    expect(status).toBe('cancelled')
  })
})
