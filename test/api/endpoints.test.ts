/* eslint-disable @typescript-eslint/no-explicit-any -- JSON from the wire; the assertions check its shape */
/**
 * Every /api/v2 endpoint and every error class, with a real HTTP client against a running
 * headless host (demo group, two virtual CPU devices, real workers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, GROUP, HUGE_GROUP, startApiHost, type ApiHost } from './helpers'

const CONFIG_TOKEN = 'a-long-running-server-token'
const LENS = `${GROUP}/words-l1`
const FAST = { best_of_k: 2, salience: false }
let h: ApiHost

beforeAll(async () => {
  h = await startApiHost({
    extraTokens: [CONFIG_TOKEN],
    maxBodyBytes: 4096,
    badRequestLogIntervalMs: 100
  })
}, 120_000)

afterAll(async () => {
  await h?.stop()
})

async function untilDone(jobId: string): Promise<{ status: number; body: any }> {
  for (let i = 0; i < 600; i++) {
    const r = await api(h, 'GET', `/jobs/${jobId}`)
    if (['done', 'failed', 'cancelled'].includes(r.body.job?.status)) return r
    await new Promise((res) => setTimeout(res, 50))
  }
  throw new Error(`job ${jobId} did not finish`)
}

describe('auth', () => {
  it('refuses requests without a token, with a wrong one, and accepts the config token', async () => {
    const none = await api(h, 'GET', '/system/state', undefined, { token: null })
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect(none.body.error.code).toBe('forbidden')
    expect((await api(h, 'GET', '/system/state', undefined, { token: 'wrong' })).status).toBe(401)
    expect((await api(h, 'GET', '/openapi.json', undefined, { token: null })).status).toBe(401)
    expect(
      (await api(h, 'POST', '/groups/load', { group_id: GROUP }, { token: null })).status
    ).toBe(401)
    expect((await api(h, 'GET', '/system/state', undefined, { token: CONFIG_TOKEN })).status).toBe(
      200
    )
    expect((await api(h, 'GET', '/system/state')).status).toBe(200)
  })
})

describe('system state', () => {
  it('lists every device, group, lens and the queue, in snake_case', async () => {
    const r = await api(h, 'GET', '/system/state')
    expect(r.status).toBe(200)
    expect(r.body.num_devices).toBe(2)
    expect(r.body.devices.map((d: any) => [d.id, d.status])).toEqual([
      ['cpu:0', 'ready'],
      ['cpu:1', 'ready']
    ])
    const demo = r.body.groups.find((g: any) => g.group_id === GROUP)
    expect(demo.lenses.map((l: any) => l.id)).toEqual(['words-l1', 'words-l3'])
    expect(r.body.groups.some((g: any) => g.group_id === HUGE_GROUP)).toBe(true)
    expect(r.body.queue).toMatchObject({ queued: 0, running: 0 })
    expect(r.body.onnx_runtime_version).toEqual(expect.any(String))
    expect(JSON.stringify(r.body)).not.toMatch(/"[a-z]+[A-Z]\w*":/)
  })
})

describe('loads, pins and unloads', () => {
  it('loads a group where placement chooses, and on a named device', async () => {
    const auto = await api(h, 'POST', '/groups/load', { group_id: GROUP })
    expect(auto.status).toBe(200)
    expect(auto.body).toMatchObject({ status: 'loaded', group_id: GROUP })
    expect(auto.body.placement.state).toBe('ready')
    const other = auto.body.device_id === 'cpu:0' ? 'cpu:1' : 'cpu:0'
    const named = await api(h, 'POST', '/models/load', {
      model_id: 'demo-words/words-l3',
      device_id: other
    })
    expect(named.status).toBe(200)
    expect(named.body).toMatchObject({
      device_id: other,
      group_id: GROUP,
      model_id: 'demo-words/words-l3'
    })
    const state = await api(h, 'GET', '/system/state')
    for (const d of state.body.devices)
      expect(d.placements.map((p: any) => p.group_id)).toContain(GROUP)
  })

  it('pins, refuses to unload a pinned group (409) until forced or unpinned', async () => {
    const ambiguous = await api(h, 'POST', '/groups/pin', { group_id: GROUP })
    expect(ambiguous.status).toBe(400)
    expect(ambiguous.body.error.field).toBe('device_id')
    const pin = await api(h, 'POST', '/groups/pin', { group_id: GROUP, device_id: 'cpu:1' })
    expect(pin.status).toBe(200)
    expect(pin.body.placement.pinned).toBe(true)
    const refused = await api(h, 'POST', '/groups/unload', { group_id: GROUP, device_id: 'cpu:1' })
    expect(refused.status).toBe(409)
    expect(refused.body.error).toMatchObject({ code: 'conflict', field: 'group_id' })
    expect(refused.body.error.message).toMatch(/pinned/)
    const forced = await api(h, 'POST', '/groups/unload', {
      group_id: GROUP,
      device_id: 'cpu:1',
      force: true
    })
    expect(forced.status).toBe(200)
    expect(forced.body.unloaded.map((u: any) => u.device_id)).toEqual(['cpu:1'])
    // Loaded on one device now: pin finds it without a device_id; unpin, then unload is allowed.
    expect((await api(h, 'POST', '/groups/pin', { group_id: GROUP })).body.placement.pinned).toBe(
      true
    )
    const unpin = await api(h, 'POST', '/groups/pin', { group_id: GROUP, pinned: false })
    expect(unpin.body.placement.pinned).toBe(false)
    const unload = await api(h, 'POST', '/groups/unload', { group_id: GROUP })
    expect(unload.status).toBe(200)
    expect(unload.body.unloaded).toHaveLength(1)
    expect(unload.body.unloaded[0]).toHaveProperty('memory_returned')
  })

  it('answers 404 for unknown groups, lenses and devices, 503 when nothing can take a load', async () => {
    const group = await api(h, 'POST', '/groups/load', { group_id: 'no-such-group' })
    expect(group.status).toBe(404)
    expect(group.body.error.field).toBe('group_id')
    const lens = await api(h, 'POST', '/models/load', { model_id: 'demo-words/nope' })
    expect(lens.status).toBe(404)
    expect(lens.body.error.field).toBe('model_id')
    // An integer device_id is a GPU index: cuda:0 does not exist here.
    const gpu = await api(h, 'POST', '/groups/load', { group_id: GROUP, device_id: 0 })
    expect(gpu.status).toBe(404)
    expect(gpu.body.error).toMatchObject({ code: 'not_found', field: 'device_id' })
    expect(gpu.body.error.message).toMatch(/cuda:0/)
    const notLoaded = await api(h, 'POST', '/groups/unload', { group_id: HUGE_GROUP })
    expect(notLoaded.status).toBe(404)
    const pinNotLoaded = await api(h, 'POST', '/groups/pin', {
      group_id: HUGE_GROUP,
      device_id: 'cpu:0'
    })
    expect(pinNotLoaded.status).toBe(404)
    const huge = await api(h, 'POST', '/groups/load', { group_id: HUGE_GROUP })
    expect(huge.status).toBe(503)
    expect(huge.body.error.code).toBe('unavailable')
    expect(huge.body.error.message).toMatch(/fits on no device.*budget/)
  })

  it('names a lens by unique id, by group id, and refuses an ambiguous lens id', async () => {
    const ambiguous = await api(h, 'POST', '/models/load', { model_id: 'words-l1' })
    expect(ambiguous.status).toBe(400)
    expect(ambiguous.body.error).toMatchObject({ field: 'model_id' })
    expect(ambiguous.body.error.message).toMatch(/group\/lens/)
    const byGroup = await api(h, 'POST', '/models/load', { model_id: GROUP, device_id: 'cpu:0' })
    expect(byGroup.status).toBe(200)
    expect(byGroup.body.model_id).toBe(`${GROUP}/words-l1`)
  })
})

describe('analyses, generations, jobs', () => {
  it('processes a prompt and waits for the rows (num_predictions is best-of-K)', async () => {
    const r = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'The cat sat on the mat.',
      num_predictions: 2,
      options: { salience: false }
    })
    expect(r.status).toBe(200)
    expect(r.body.job).toMatchObject({ status: 'done', kind: 'analyze', lens_id: 'words-l1' })
    expect(r.body.metadata.options.best_of_k).toBe(2)
    expect(r.body.rows.length).toBe(r.body.metadata.analysed_positions)
    const row = r.body.rows.find((x: any) => x.token === 'cat')
    expect(row.explanation).toContain('cat')
    expect(row).toHaveProperty('kl_divergence')
    expect(row).toHaveProperty('relative_rmse')
    expect(row.token_salience).toEqual([])
  })

  it('takes a chat as the prompt and renders it with the group template', async () => {
    const r = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: [
        { role: 'user', content: 'the cat sat' },
        { role: 'assistant', content: 'a dog ran' }
      ],
      options: FAST
    })
    expect(r.status).toBe(200)
    const tokens = r.body.rows.map((x: any) => x.token)
    expect(tokens.filter((t: string) => t === '<start_of_turn>')).toHaveLength(2)
    // The final assistant turn is left open (continued), so it has no end-of-turn after it.
    expect(tokens.slice(-3)).toEqual(['a', 'dog', 'ran'])
    const bad = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: [{ role: 'narrator', content: 'x' }],
      options: FAST
    })
    expect(bad.status).toBe(400)
    expect(JSON.stringify(bad.body)).toContain('prompt')
  })

  it("takes the seed's option names", async () => {
    const r = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'A dog ran.',
      options: {
        best_of_k: 2,
        no_kl: true,
        calculate_token_salience: true,
        logit_lens_analysis: true
      }
    })
    expect(r.status).toBe(200)
    expect(r.body.rows.every((x: any) => x.kl_divergence === null)).toBe(true)
    expect(r.body.rows.every((x: any) => x.token_salience.length > 0)).toBe(true)
    expect(r.body.rows.every((x: any) => typeof x.logit_lens_top === 'string')).toBe(true)
    // The predecessor's batch_size (positions per batch) and its optimiser settings.
    const seed = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'A dog ran.',
      options: {
        batch_size: 2,
        no_eval: true,
        optimize_explanations_config: { best_of_k: 2, temperature: 1, use_batched: true }
      }
    })
    expect(seed.status).toBe(200)
    expect(seed.body.metadata.options).toMatchObject({ best_of_k: 2, rows_per_batch: 4, kl: false })
    const refused = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'A dog ran.',
      options: { optimize_explanations_config: { use_batched: false } }
    })
    expect(refused.status).toBe(400)
    expect(refused.body.error.field).toBe('options.optimize_explanations_config.use_batched')
  })

  it('queues without waiting (202), then GET /jobs/{id} has the result', async () => {
    const r = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'The old farmer sold cheese.',
      options: FAST,
      device_id: 'cpu:1',
      wait: false
    })
    expect(r.status).toBe(202)
    expect(r.body.job_id).toMatch(/^job-/)
    const done = await untilDone(r.body.job_id)
    expect(done.body.job.status).toBe('done')
    expect(done.body.job.devices).toEqual(['cpu:1'])
    expect(done.body.rows.length).toBeGreaterThan(0)
    const cancelDone = await api(h, 'POST', `/jobs/${r.body.job_id}/cancel`)
    expect(cancelDone.status).toBe(200)
    expect(cancelDone.body.status).toBe('done')
  })

  it('cancels a running job; the rows so far are kept', async () => {
    const prompt = Array.from(
      { length: 40 },
      () => 'the cat sat on the red chair by the river'
    ).join(' ')
    const r = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt,
      options: { best_of_k: 64, salience: true, rows_per_batch: 64 },
      device_id: 'cpu:0',
      wait: false
    })
    expect(r.status).toBe(202)
    const cancel = await api(h, 'POST', `/jobs/${r.body.job_id}/cancel`)
    expect(cancel.status).toBe(200)
    const end = await untilDone(r.body.job_id)
    expect(end.body.job.status).toBe('cancelled')
    expect(end.body.rows.length).toBeLessThan(prompt.split(' ').length)
  })

  it('cancels a waited-for job when the client hangs up', async () => {
    const prompt = Array.from({ length: 40 }, () => 'a dog ran to the river in the morning').join(
      ' '
    )
    const controller = new AbortController()
    const pending = fetch(`${h.base}/models/process`, {
      method: 'POST',
      signal: controller.signal,
      headers: {
        authorization: `Bearer ${h.token}`,
        'content-type': 'application/json',
        'x-client-id': 'hangs-up'
      },
      body: JSON.stringify({
        model_id: LENS,
        prompt,
        device_id: 'cpu:0',
        options: { best_of_k: 64, rows_per_batch: 64 }
      })
    }).catch((err: Error) => err.name)
    const findJob = async (): Promise<any> =>
      (await api(h, 'GET', '/system/state')).body.queue.jobs.find(
        (j: any) => j.client_id === 'api:hangs-up'
      )
    for (let i = 0; i < 100 && !(await findJob()); i++) await new Promise((r) => setTimeout(r, 20))
    controller.abort()
    expect(await pending).toBe('AbortError')
    const job = await findJob()
    const end = await untilDone(job.id)
    expect(end.body.job.status).toBe('cancelled')
  })

  it('generates, and generates then analyses', async () => {
    const gen = await api(h, 'POST', '/models/generate', {
      model_id: LENS,
      prompt: 'The cat',
      num_completions: 2,
      options: { max_new_tokens: 4, seed: 7 }
    })
    expect(gen.status).toBe(200)
    expect(gen.body.job.kind).toBe('generate')
    expect(gen.body.completions).toHaveLength(2)
    // The predecessor's names; return_full_text false answers the generated parts alone.
    const only = await api(h, 'POST', '/models/generate', {
      model_id: LENS,
      prompt: 'The cat',
      options: { num_tokens: 4, num_completions: 1, seed: 7, return_full_text: false }
    })
    const full = await api(h, 'POST', '/models/generate', {
      model_id: LENS,
      prompt: 'The cat',
      options: { max_new_tokens: 4, completions: 1, seed: 7 }
    })
    expect(only.status).toBe(200)
    expect(only.body.completions).toHaveLength(1)
    expect(only.body.replies).toEqual(only.body.completions)
    expect(full.body.completions[0]).toMatch(/the cat/i)
    expect(full.body.completions[0].length).toBeGreaterThan(only.body.completions[0].length)
    expect(full.body.replies).toEqual(only.body.replies)
    const both = await api(h, 'POST', '/models/generate-and-analyze', {
      model_id: LENS,
      prompt: 'The dog',
      num_predictions: 2,
      options: { salience: false },
      generation: { max_new_tokens: 3 }
    })
    expect(both.status).toBe(200)
    expect(both.body.job.kind).toBe('generate-analyze')
    expect(both.body.completions).toHaveLength(1)
    expect(both.body.rows.length).toBeGreaterThan(0)
  })

  it('answers 503 with the reason when no device can take the job', async () => {
    const r = await api(h, 'POST', '/models/process', {
      model_id: `${HUGE_GROUP}/words-l1`,
      prompt: 'x'
    })
    expect(r.status).toBe(503)
    expect(r.body.error.code).toBe('unavailable')
    expect(r.body.error.message).toMatch(/needs .* GiB/)
    expect(r.body.job_id).toMatch(/^job-/)
  })

  it('answers 404 for unknown and malformed job ids', async () => {
    expect((await api(h, 'GET', '/jobs/job-zzz-0-0')).status).toBe(404)
    expect((await api(h, 'GET', '/jobs/not-a-job')).status).toBe(404)
    const cancel = await api(h, 'POST', '/jobs/job-zzz-0-0/cancel')
    expect(cancel.status).toBe(404)
    expect(cancel.body.error.field).toBe('job_id')
  })
})

describe('bad input', () => {
  it('answers 400 naming the field', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['/models/process', { model_id: LENS }, 'prompt'],
      ['/models/process', { model_id: LENS, prompt: '' }, 'prompt'],
      ['/models/process', { model_id: LENS, prompt: 'x', num_predictions: 0 }, 'num_predictions'],
      [
        '/models/process',
        { model_id: LENS, prompt: 'x', options: { best_of_k: 'many' } },
        'options.best_of_k'
      ],
      [
        '/models/process',
        { model_id: LENS, prompt: 'x', options: { temperature: -1 } },
        'options.temperature'
      ],
      [
        '/models/process',
        { model_id: LENS, prompt: 'x', num_predictions: 2, options: { best_of_k: 3 } },
        'num_predictions'
      ],
      [
        '/models/process',
        { model_id: LENS, prompt: 'x', options: { no_kl: true, kl: true } },
        'options.no_kl'
      ],
      ['/models/process', { model_id: LENS, prompt: 'x', device_id: 'gpu7' }, 'device_id'],
      [
        '/models/process',
        { model_id: LENS, prompt: 'x', options: { positions: { start: 3, end: 1 } } },
        'options.positions'
      ],
      ['/models/generate', { model_id: LENS, prompt: 'x', options: { top_p: 0 } }, 'options.top_p'],
      ['/groups/load', { group_id: 42 }, 'group_id'],
      ['/groups/unload', { group_id: GROUP, force: 'yes' }, 'force'],
      ['/groups/pin', { group_id: GROUP, pinned: 1 }, 'pinned']
    ]
    for (const [path, body, field] of cases) {
      const r = await api(h, 'POST', path, body)
      expect([path, JSON.stringify(body), r.status]).toEqual([path, JSON.stringify(body), 400])
      expect(r.body.error.code).toBe('invalid_input')
      expect(r.body.error.field).toBe(field)
    }
    const unknownKey = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'x',
      bogus: 1
    })
    expect(unknownKey.status).toBe(400)
    expect(unknownKey.body.error.message).toMatch(/bogus/)
  })

  it('refuses bodies that are not JSON objects, the wrong type, and oversized ones', async () => {
    const notJson = await api(h, 'POST', '/groups/load', undefined, { rawBody: '{"group_id": ' })
    expect(notJson.status).toBe(400)
    expect(notJson.body.error.field).toBe('body')
    expect((await api(h, 'POST', '/groups/load', [1, 2])).status).toBe(400)
    expect((await api(h, 'POST', '/groups/load', undefined, { rawBody: 'null' })).status).toBe(400)
    const form = await api(h, 'POST', '/groups/load', undefined, {
      rawBody: 'group_id=demo-words',
      contentType: 'application/x-www-form-urlencoded'
    })
    expect(form.status).toBe(415)
    const big = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'x'.repeat(10_000)
    })
    expect(big.status).toBe(413)
    expect(big.body.error.field).toBe('body')
  })

  it('answers 404 for unknown paths and 405 for the wrong method', async () => {
    expect((await api(h, 'GET', '/nothing/here')).status).toBe(404)
    const wrong = await api(h, 'GET', '/models/process')
    expect(wrong.status).toBe(405)
    expect(wrong.headers.get('allow')).toBe('POST')
    expect((await api(h, 'DELETE', '/jobs/job-a-b-c')).status).toBe(405)
  })

  it('never answers 500 to malformed input', async () => {
    const bodies: unknown[] = [
      {},
      { model_id: null },
      { model_id: LENS, prompt: 'x', options: null },
      { model_id: LENS, prompt: 'x', options: [] },
      { model_id: LENS, prompt: 'x', options: { positions: 'all' } },
      { model_id: 'x'.repeat(500), prompt: 'x' },
      { model_id: '/', prompt: 'x' },
      { model_id: LENS, prompt: 'x', device_id: -1 },
      { model_id: LENS, prompt: 'x', device_id: 1.5 },
      { model_id: LENS, prompt: 'x', generation: { completions: 1e9 } },
      { group_id: '', device_id: 'cpu:99' },
      { group_id: GROUP, device_id: 'cpu:99' },
      { group_id: '../../etc', device_id: 'cpu:0' }
    ]
    const paths = [
      '/models/load',
      '/groups/load',
      '/groups/unload',
      '/groups/pin',
      '/models/process',
      '/models/generate',
      '/models/generate-and-analyze'
    ]
    for (const path of paths) {
      for (const body of bodies) {
        const r = await api(h, 'POST', path, body)
        expect([path, JSON.stringify(body), r.status < 500]).toEqual([
          path,
          JSON.stringify(body),
          true
        ])
        expect(r.body.error?.code ?? 'ok').not.toBe('internal')
      }
    }
    for (const id of ['%E0%A4%A', 'job-%00', 'x'.repeat(300)]) {
      expect((await api(h, 'GET', `/jobs/${id}`)).status).toBeLessThan(500)
    }
  })

  it('logs the rate of bad requests', async () => {
    await api(h, 'GET', '/system/state', undefined, { token: null })
    await new Promise((res) => setTimeout(res, 250))
    const line = h.logLines.find((l) => /bad requests? in the last \d+ s/.test(l))
    expect(line).toMatch(/401: \d+/)
    expect(h.host.http).toBeDefined()
  })
})

describe('OpenAPI', () => {
  it('describes every endpoint from the zod schemas, in the wire names', async () => {
    const r = await api(h, 'GET', '/openapi.json')
    expect(r.status).toBe(200)
    const doc = r.body
    expect(doc.openapi).toMatch(/^3\./)
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/v2/current',
        '/api/v2/devices/{device_id}/clear',
        '/api/v2/devices/{device_id}/memory',
        '/api/v2/groups',
        '/api/v2/groups/load',
        '/api/v2/groups/pin',
        '/api/v2/groups/settings',
        '/api/v2/groups/unload',
        '/api/v2/groups/{group_id}/preload',
        '/api/v2/jobs/{job_id}',
        '/api/v2/jobs/{job_id}/cancel',
        '/api/v2/model_groups',
        '/api/v2/models',
        '/api/v2/models/generate',
        '/api/v2/models/generate-and-analyze',
        '/api/v2/models/intervene',
        '/api/v2/models/load',
        '/api/v2/models/memory',
        '/api/v2/models/process',
        '/api/v2/models/switch',
        '/api/v2/models/{model_id}/info',
        '/api/v2/switch',
        '/api/v2/models/sweep',
        '/api/v2/system/state'
      ].sort()
    )
    const process = doc.paths['/api/v2/models/process'].post
    const req = process.requestBody.content['application/json'].schema
    expect(req.required).toEqual(expect.arrayContaining(['model_id', 'prompt']))
    expect(req.properties.options.properties.best_of_k).toMatchObject({
      type: 'integer',
      maximum: 512
    })
    expect(req.properties.num_predictions).toMatchObject({ minimum: 1, maximum: 512 })
    const rows = process.responses['200'].content['application/json'].schema.properties.rows
    expect(Object.keys(rows.items.properties)).toEqual(
      expect.arrayContaining([
        'kl_divergence',
        'relative_rmse',
        'token_salience',
        'explanation_structured'
      ])
    )
    expect(Object.keys(process.responses)).toEqual(
      expect.arrayContaining(['200', '202', '400', '404', '503'])
    )
    expect(doc.paths['/api/v2/groups/unload'].post.responses['409']).toBeDefined()
    // No camelCase property name survives anywhere in the document.
    const camel: string[] = []
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk)
      if (!node || typeof node !== 'object') return
      for (const [k, v] of Object.entries(node)) {
        if (k === 'properties')
          for (const name of Object.keys(v as object)) if (/[A-Z]/.test(name)) camel.push(name)
        walk(v)
      }
    }
    walk(doc.paths)
    expect(camel).toEqual([])
  })
})
