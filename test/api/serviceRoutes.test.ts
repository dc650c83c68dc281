/* eslint-disable @typescript-eslint/no-explicit-any -- JSON from the wire; the assertions check its shape */
/**
 * The un-prefixed service routes (/health, /metrics, /reset, /api/gpu_stats), the predecessor's
 * /api/slim, and compat mode's door (tokenless for listed origins only), against running hosts.
 */
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GROUP, startApiHost, type ApiHost } from './helpers'

const LENS = `${GROUP}/words-l1`
const FRONTEND = 'http://localhost:3000'
let h: ApiHost
let compat: ApiHost

beforeAll(async () => {
  h = await startApiHost()
  compat = await startApiHost({ compatOrigins: [FRONTEND] })
}, 180_000)

afterAll(async () => {
  await h?.stop()
  await compat?.stop()
})

async function get(
  host: ApiHost,
  method: string,
  path: string,
  options: { token?: boolean; origin?: string; body?: unknown } = {}
): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const headers: Record<string, string> = {}
  if (options.token) headers.authorization = `Bearer ${host.token}`
  if (options.origin) headers.origin = options.origin
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`http://127.0.0.1:${host.port}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body)
  })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // text (the metrics)
  }
  return { status: res.status, body, text, headers: res.headers }
}

describe('service routes', () => {
  it('answers /health without a token, with nothing beyond ok, version and uptime', async () => {
    const r = await get(h, 'GET', '/health')
    expect(r.status).toBe(200)
    expect(Object.keys(r.body).sort()).toEqual(['status', 'uptime_seconds', 'version'])
    expect(r.body.status).toBe('ok')
    expect((await get(h, 'POST', '/health')).status).toBe(405)
  })

  it('serves /metrics in the Prometheus text format behind the token', async () => {
    expect((await get(h, 'GET', '/metrics')).status).toBe(401)
    const job = await fetch(`${h.base}/models/process`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model_id: LENS,
        prompt: 'The cat sat.',
        device_id: 'cpu:0',
        options: { best_of_k: 2 }
      })
    })
    expect(job.status).toBe(200)
    const r = await get(h, 'GET', '/metrics', { token: true })
    expect(r.status).toBe(200)
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(r.text).toMatch(/^# HELP talkative_device_memory_bytes /m)
    expect(r.text).toMatch(/^talkative_device_memory_bytes\{device="cpu:0",memory="app"\} [1-9]/m)
    expect(r.text).toMatch(/^talkative_device_memory_bytes\{device="cpu:1",memory="free"\} /m)
    expect(r.text).toMatch(
      /^talkative_jobs_total\{device="cpu:0",kind="analyze",outcome="done"\} 1$/m
    )
    expect(r.text).toMatch(/^talkative_rows_total\{device="cpu:0"\} [1-9]/m)
    expect(r.text).toMatch(/^talkative_device_loads_total\{device="cpu:0",outcome="ok"\} 1$/m)
    expect(r.text).toMatch(/^talkative_device_queued_jobs\{device="cpu:1"\} 0$/m)
    // Group and job ids are never labels.
    expect(r.text).not.toContain(GROUP)
    expect(r.text).not.toMatch(/job-/)
  })

  it('reports GPU stats and resets (token required without compat mode)', async () => {
    expect((await get(h, 'GET', '/api/gpu_stats')).status).toBe(401)
    expect((await get(h, 'GET', '/api/gpu_stats', { origin: FRONTEND })).status).toBe(401)
    const stats = await get(h, 'GET', '/api/gpu_stats', { token: true })
    expect(stats.status).toBe(200)
    expect(Object.keys(stats.body)).toEqual(
      expect.arrayContaining([
        'available',
        'devices',
        'utilization',
        'memory_used',
        'memory_total',
        'memory_percent',
        'peak_utilization'
      ])
    )
    expect((await get(h, 'POST', '/reset')).status).toBe(401)
    const reset = await get(h, 'POST', '/reset', { token: true })
    expect(reset.status).toBe(200)
    expect(reset.body.status).toBe('reset')
    expect(typeof reset.body.message).toBe('string')
    const state = await fetch(`${h.base}/models/memory`, {
      headers: { authorization: `Bearer ${h.token}` }
    })
    const memory = (await state.json()) as any
    expect(memory.devices.every((d: any) => d.models_loaded === 0)).toBe(true)
  })
})

describe('/api/slim', () => {
  it('queues an analysis of chat messages and answers its rows when polled', async () => {
    const auth = { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' }
    const models = await fetch(`http://127.0.0.1:${h.port}/api/slim/models`, { headers: auth })
    const list = (await models.json()) as any
    expect(list.model_groups.map((g: any) => g.id)).toContain(GROUP)
    const queued = await fetch(`http://127.0.0.1:${h.port}/api/slim/analyze`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        messages: [{ role: 'user', content: 'The cat sat.' }],
        best_of_k: 2,
        calculate_token_salience: false,
        model_group: GROUP
      })
    })
    const q = (await queued.json()) as any
    expect(queued.status).toBe(200)
    expect(q).toMatchObject({ status: 'queued' })
    let status: any
    for (let i = 0; i < 600; i++) {
      const r = await fetch(`http://127.0.0.1:${h.port}/api/slim/status/${q.request_id}`, {
        headers: auth
      })
      status = await r.json()
      if (['completed', 'failed', 'cancelled'].includes(status.status)) break
      await new Promise((res) => setTimeout(res, 50))
    }
    expect(status.status).toBe('completed')
    expect(status.result.data.length).toBeGreaterThan(0)
    expect(Object.keys(status.result.data[0])).toEqual(
      expect.arrayContaining([
        'position',
        'token',
        'explanation',
        'mse',
        'relative_rmse',
        'kl_divergence'
      ])
    )
    expect(status.result.metadata).toMatchObject({ model_id: LENS, best_of_k: 2 })
    const unknown = await fetch(`http://127.0.0.1:${h.port}/api/slim/analyze`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], model_group: 'nope' })
    })
    expect(unknown.status).toBe(400)
    expect(((await unknown.json()) as any).error.field).toBe('model_group')
  })
})

describe('compat mode', () => {
  it('opens the predecessor routes to listed origins and scripts, never to other pages', async () => {
    const listed = await get(compat, 'GET', '/api/gpu_stats', { origin: FRONTEND })
    expect(listed.status).toBe(200)
    expect(listed.headers.get('access-control-allow-origin')).toBe(FRONTEND)
    expect((await get(compat, 'GET', '/api/gpu_stats')).status).toBe(200)
    const foreign = await get(compat, 'GET', '/api/gpu_stats', { origin: 'http://evil.example' })
    expect(foreign.status).toBe(403)
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull()
    expect((await get(compat, 'POST', '/reset', { origin: 'http://evil.example' })).status).toBe(
      403
    )
    const preflight = await get(compat, 'OPTIONS', '/reset', { origin: FRONTEND })
    expect(preflight.status).toBe(204)
    // The metrics and /api/v2 keep their token.
    expect((await get(compat, 'GET', '/metrics', { origin: FRONTEND })).status).toBe(401)
    expect((await get(compat, 'GET', '/api/v2/models', { origin: FRONTEND })).status).toBe(401)
    expect(compat.logLines.some((l) => l.includes('COMPAT MODE') && l.includes(FRONTEND))).toBe(
      true
    )
  })
})

/** The predecessor's frontend's socket: no token, its own Origin. */
/** The public row schema on /ws (no `logit_lens_top` unless the logit lens ran). */
const ROW_KEYS = [
  'explanation',
  'explanation_structured',
  'kl_divergence',
  'mse',
  'position',
  'relative_rmse',
  'token',
  'token_id',
  'token_salience'
]

/** One request's messages from `from` on, without the periodic and progress noise. */
function lifecycle(messages: any[], from: number): string[] {
  return messages
    .slice(from)
    .map((m) => m.type as string)
    .filter((t) => t !== 'queue_update' && t !== 'progress')
}

function seedSocket(
  host: ApiHost,
  origin: string
): Promise<
  | number
  | {
      messages: any[]
      send(m: unknown): void
      next(type: string, from?: number): Promise<any>
      close(): void
    }
> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://localhost:${host.port}/ws`, { headers: { origin } })
    const messages: any[] = []
    const waiters: Array<() => void> = []
    ws.on('message', (data) => {
      messages.push(JSON.parse(data.toString()))
      for (const w of [...waiters]) w()
    })
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('error', () => resolve(0))
    ws.on('open', () =>
      resolve({
        messages,
        send: (m) => ws.send(JSON.stringify(m)),
        next: (type, from = 0) =>
          new Promise((res, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`no ${type}; got ${messages.map((m) => m.type).join(', ')}`)),
              60_000
            )
            const check = (): void => {
              const found = messages.slice(from).find((m) => m.type === type)
              if (!found) return
              clearTimeout(timer)
              waiters.splice(waiters.indexOf(check), 1)
              res(found)
            }
            waiters.push(check)
            check()
          }),
        close: () => ws.close()
      })
    )
  })
}

describe("compat mode's /ws (the predecessor's frontend protocol)", () => {
  it('is served only in compat mode, and only to listed origins without a token', async () => {
    expect(await seedSocket(h, FRONTEND)).toBe(404)
    expect(await seedSocket(compat, 'http://evil.example')).toBe(403)
  })

  it('greets, lists groups, switches, analyses, generates and cancels with its messages', async () => {
    const s = await seedSocket(compat, FRONTEND)
    if (typeof s === 'number') throw new Error(`refused with ${s}`)
    try {
      // On connect: the default group as the current model, the system state, the groups.
      const hello = await s.next('connection_established')
      expect(hello).toMatchObject({ model_id: LENS, auto_batch_size_max: 256 })
      const state = await s.next('system_state')
      expect(state.data.devices.map((d: any) => d.device)).toEqual(['cpu:0', 'cpu:1'])
      const groups = await s.next('model_groups_list')
      expect(groups.current_model).toBe(LENS)
      // What the frontend sends as it opens (recorded from its model switcher and app.js).
      let from = s.messages.length
      s.send({ type: 'list_model_groups', refresh: false })
      s.send({ type: 'get_model_info', model_id: LENS })
      await s.next('model_info', from)
      // The default group loads as the first page connects: a list that said "switching" is
      // closed by a `group_switch_status` "completed", or the frontend queues everything for good.
      const saidSwitching = s.messages.some(
        (m) =>
          m.type === 'model_groups_list' &&
          m.groups.some((g: any) => g.device_info.some((d: any) => d.is_switching))
      )
      if (saidSwitching) {
        const settled = await s.next('group_switch_status')
        expect(settled).toMatchObject({ status: 'completed', group_id: GROUP })
        from = s.messages.length
        s.send({ type: 'list_model_groups', refresh: false })
        expect(await s.next('model_groups_list', from)).toMatchObject({ is_switching: false })
      }

      from = s.messages.length
      s.send({ type: 'switch_model', model_id: LENS })
      const switched = await s.next('model_switch_complete', from)
      expect(switched).toMatchObject({ model_id: LENS, group_id: GROUP })

      // The frontend's analyze message: its free-form options, "auto" batch size (256 / K).
      from = s.messages.length
      s.send({
        type: 'analyze',
        text: 'The cat sat on the mat.',
        client_request_id: 'c1',
        options: {
          batch_size: 128,
          seed: 42,
          no_eval: false,
          tuned_lens: false,
          logit_lens_analysis: false,
          temperature: 1.0,
          no_kl: false,
          calculate_token_salience: true,
          do_hard_tokens: false,
          return_structured: true,
          move_devices: false,
          last_n_messages: null,
          use_chat_format: false,
          optimize_explanations_config: {
            best_of_k: 2,
            use_batched: true,
            temperature: 1.0,
            n_groups_per_rollout: 128,
            num_samples_per_iteration: 16,
            salience_pct_threshold: 0.0
          }
        }
      })
      const queued = await s.next('queued', from)
      expect(queued).toMatchObject({ context: 'analysis', client_request_id: 'c1' })
      expect(queued.request_id).toMatch(/^job-/)
      const processing = await s.next('processing', from)
      expect(processing).toMatchObject({ request_id: queued.request_id, context: 'analysis' })
      const done = await s.next('completed', from)
      expect(done).toMatchObject({
        request_id: queued.request_id,
        context: 'analysis',
        client_request_id: 'c1'
      })
      // The result travels once, in `completed`: the frontend renders `result` and `completed`
      // alike, so a second copy would open a second tab for the same analysis.
      expect(lifecycle(s.messages, from)).toEqual(['queued', 'processing', 'completed'])
      expect(done.result.data.length).toBeGreaterThan(0)
      for (const row of done.result.data) expect(Object.keys(row).sort()).toEqual(ROW_KEYS)
      expect(done.result.data.map((r: any) => r.position)).toEqual(
        done.result.data.map((_: unknown, i: number) => i)
      )
      expect(done.result.data[0]).toMatchObject({
        token: expect.any(String),
        explanation: expect.any(String),
        mse: expect.any(Number),
        relative_rmse: expect.any(Number),
        kl_divergence: expect.any(Number)
      })
      expect(done.result.data[0].token_salience.length).toBeGreaterThan(0)
      // "auto": the device's own rows per batch, reported as the effective figure.
      expect(done.result.metadata).toMatchObject({ model_id: LENS, best_of_k: 2 })
      expect(done.result.metadata.batch_size).toBeGreaterThan(0)
      expect(s.messages.some((m) => m.type === 'queue_update')).toBe(true)

      from = s.messages.length
      s.send({
        type: 'generate',
        text: 'The cat',
        options: {
          num_tokens: 4,
          num_completions: 2,
          temperature: 0.8,
          top_p: 0.95,
          is_chat: false,
          return_full_text: true
        }
      })
      const gen = await s.next('generation_complete', from)
      expect(lifecycle(s.messages, from)).toEqual(['queued', 'processing', 'generation_complete'])
      expect(s.messages[from]).toMatchObject({ type: 'queued', context: 'generation' })
      expect(gen.request_id).toBe(s.messages[from].request_id)
      expect(gen.result.completions).toHaveLength(2)
      for (const c of gen.result.completions) expect(typeof c).toBe('string')
      expect(gen.result.metadata).toMatchObject({
        model_id: LENS,
        prompt: 'The cat',
        num_completions: 2,
        max_new_tokens: 4,
        temperature: 0.8,
        top_p: 0.95
      })

      // generate_and_analyze: one job, both queued replies, the completion before the rows.
      from = s.messages.length
      s.send({
        type: 'generate_and_analyze',
        client_request_id: 'c2',
        generation: { text: 'The cat', options: { num_tokens: 3, num_completions: 3 } },
        analysis: {
          text: '',
          use_generated_completion: true,
          options: { optimize_explanations_config: { best_of_k: 2 } }
        }
      })
      const chained = await s.next('completed', from)
      expect(lifecycle(s.messages, from)).toEqual([
        'queued',
        'queued',
        'processing',
        'generation_complete',
        'completed'
      ])
      const [queuedGen, queuedAna] = s.messages.slice(from).filter((m) => m.type === 'queued')
      expect(queuedGen).toMatchObject({ context: 'generation', client_request_id: 'c2_gen' })
      expect(queuedAna).toMatchObject({
        context: 'analysis',
        client_request_id: 'c2',
        request_id: queuedGen.request_id
      })
      const chainedGen = await s.next('generation_complete', from)
      expect(chainedGen).toMatchObject({
        request_id: queuedGen.request_id,
        client_request_id: 'c2_gen'
      })
      // The predecessor forced one completion for the chained request.
      expect(chainedGen.result.completions).toHaveLength(1)
      expect(chainedGen.result.metadata).toMatchObject({ num_completions: 1, max_new_tokens: 3 })
      expect(chained).toMatchObject({
        request_id: queuedGen.request_id,
        context: 'analysis',
        client_request_id: 'c2'
      })
      expect(chained.result.data.length).toBeGreaterThan(0)
      for (const row of chained.result.data) expect(Object.keys(row).sort()).toEqual(ROW_KEYS)
      expect(chained.result.metadata).toMatchObject({ model_id: LENS, best_of_k: 2 })

      from = s.messages.length
      s.send({ type: 'cancel_request', request_id: 'job-00000000-0000-0000-0000-000000000000' })
      const missing = await s.next('error', from)
      expect(typeof missing.error).toBe('string')
      from = s.messages.length
      s.send({ type: 'analyze', text: '   ' })
      expect((await s.next('error', from)).error).toContain('text')
      from = s.messages.length
      s.send({ type: 'teleport' })
      expect((await s.next('error', from)).error).toContain('teleport')
      // Messages the frontend handles but the predecessor never sent stay unsent.
      const types = new Set(s.messages.map((m) => m.type))
      expect(types.has('result')).toBe(false)
      expect(types.has('generation_result')).toBe(false)
    } finally {
      s.close()
    }
  })
})
