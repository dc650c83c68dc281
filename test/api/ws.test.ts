/* eslint-disable @typescript-eslint/no-explicit-any -- JSON from the wire; the assertions check its shape */
/**
 * /api/v2/ws against a running host: auth, the hello, and the order of events for a load and for
 * an analysis job, per-job subscriptions, device_cleared, and bad messages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  api,
  GROUP,
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
    expect(s.messages[1].type).toBe('system_state')
    expect(s.messages[1].data.devices.map((d: any) => d.id)).toEqual(['cpu:0', 'cpu:1'])
    expect(s.messages[1].data.groups.some((g: any) => g.group_id === GROUP)).toBe(true)
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
    expect(jobMessages[0].type).toBe('subscribed')
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
