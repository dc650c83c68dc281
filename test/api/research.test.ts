/**
 * The research endpoints against a live headless host: `/models/intervene` and `/models/sweep`
 * over HTTP and as WebSocket submissions, with the predecessor's key names on the wire.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, socket, startApiHost, type ApiHost } from './helpers'

const LENS = 'demo-words/words-l1'
const PROMPT = 'The cat sat on the red chair.'
let h: ApiHost

beforeAll(async () => {
  h = await startApiHost()
}, 120_000)

afterAll(async () => {
  await h?.stop()
})

describe('research endpoints', () => {
  it('POST /models/intervene answers with one intervention per position and string', async () => {
    const r = await api(h, 'POST', '/models/intervene', {
      model_id: LENS,
      prompt: PROMPT,
      positions: [2],
      strings: ['dog', 'red chair'],
      top_k: 5,
      max_new_tokens: 3,
      num_predictions: 2
    })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body.job.kind).toBe('intervene')
    expect(r.body.rows).toEqual([])
    expect(r.body.interventions).toHaveLength(2)
    const row = r.body.interventions[1]
    expect(row).toMatchObject({
      index: 1,
      intervention_position: 2,
      intervened_token: 'cat',
      next_token_position: 2,
      intervention_text: 'red chair'
    })
    for (const key of [
      'kl_divergence',
      'kl_div_orig_decoded',
      'mse',
      'mse_orig_decoded',
      'explanation_original',
      'continuation_original',
      'continuation_intervention',
      'continuation_original_decoded'
    ])
      expect(row, key).toHaveProperty(key)
    expect(row.top_predictions_intervention).toHaveLength(5)
    expect(row.top_predictions_original[0]).toHaveProperty('token_id')
  })

  it('POST /models/sweep answers with one row per layer', async () => {
    const r = await api(h, 'POST', '/models/sweep', {
      model_id: LENS,
      prompt: PROMPT,
      position: 2,
      num_predictions: 2,
      options: { salience: false }
    })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body.rows.map((x: { layer: number }) => x.layer)).toEqual([0, 1, 2, 3])
    expect(r.body.rows[1]).toMatchObject({ lens_id: 'words-l1', trained_at_layer: true })
  })

  it('names the field the caller spelled: positions, strings, options.optimise', async () => {
    const far = await api(h, 'POST', '/models/intervene', {
      model_id: LENS,
      prompt: PROMPT,
      positions: [99],
      strings: ['x']
    })
    expect(far.status).toBe(400)
    expect(far.body.error.field).toBe('positions.0')
    const none = await api(h, 'POST', '/models/intervene', {
      model_id: LENS,
      prompt: PROMPT,
      positions: [1],
      strings: []
    })
    expect(none.status).toBe(400)
    expect(none.body.error.field).toMatch(/^strings/)
    const optimise = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'The cat',
      options: { optimise: { samples_per_iteration: 0 } }
    })
    expect(optimise.status).toBe(400)
    expect(optimise.body.error.field).toBe('options.optimise.samples_per_iteration')
  })

  it('POST /models/process with options.optimise reports the MSE before per row', async () => {
    const r = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'The cat sat.',
      options: { optimise: { samples_per_iteration: 2 }, kl: false }
    })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    for (const row of r.body.rows) expect(row.mse).toBeLessThanOrEqual(row.mse_before)
  })

  it('the socket takes intervene and sweep: queued with their context, rows, completed', async () => {
    const s = await socket(h)
    s.send({
      type: 'intervene',
      model_id: LENS,
      prompt: PROMPT,
      positions: [2, 3],
      strings: ['dog'],
      max_new_tokens: 2,
      num_predictions: 2,
      client_request_id: 'int'
    })
    const queued = await s.next((m) => m.type === 'queued' && m.client_request_id === 'int')
    expect(queued.context).toBe('intervention')
    const done = await s.next((m) => m.type === 'completed' && m.job_id === queued.job_id)
    const streamed = s.messages
      .filter((m) => m.type === 'rows' && m.job_id === queued.job_id)
      .flatMap((m) => m.interventions ?? [])
    expect(streamed).toEqual(done.result.interventions)
    expect(done.result.interventions).toHaveLength(2)

    s.send({ type: 'sweep', model_id: LENS, prompt: PROMPT, position: 1, layers: [1, 3] })
    const sweep = await s.next((m) => m.type === 'queued' && m.context === 'layer_sweep')
    const swept = await s.next((m) => m.type === 'completed' && m.job_id === sweep.job_id)
    expect(swept.result.rows.map((x: { layer: number }) => x.layer)).toEqual([1, 3])
    s.close()
  })
})
