/* eslint-disable @typescript-eslint/no-explicit-any -- JSON from the wire; the assertions check its shape */
/**
 * Load over loopback: 8 concurrent HTTP clients submit 200 analyses in total; every one completes
 * with the same rows as a serial run of the same request, and none is lost or answered twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, GROUP, sameRows, startApiHost, type ApiHost } from './helpers'

const CLIENTS = 8
const TOTAL = 200
const PROMPTS = [
  'The cat sat.',
  'A dog ran home.',
  'The old farmer sold cheese.',
  'Rain fell in the morning.',
  'The red chair broke.',
  'Birds sang by the river.',
  'A child played with the fox.',
  'Winter came early.'
]
let h: ApiHost

beforeAll(async () => {
  h = await startApiHost()
}, 120_000)

afterAll(async () => {
  await h?.stop()
})

function request(i: number): Record<string, unknown> {
  return {
    model_id: `${GROUP}/words-l${i % 2 === 0 ? 1 : 3}`,
    prompt: PROMPTS[i % PROMPTS.length],
    num_predictions: 2,
    options: { salience: false, seed: 100 + (i % 5) }
  }
}

describe('load', () => {
  it('8 clients, 200 analyses: all complete, none lost, identical to a serial run', async () => {
    // Serial reference: each distinct request once, one at a time.
    const distinct = new Map<string, any[]>()
    for (let i = 0; i < 40; i++) {
      const key = JSON.stringify(request(i))
      if (distinct.has(key)) continue
      const r = await api(h, 'POST', '/models/process', request(i), { clientId: 'serial' })
      expect(r.status).toBe(200)
      distinct.set(key, r.body.rows)
    }
    expect(distinct.size).toBe(40)

    // The group on both devices, so the manager can spread the load.
    for (const device_id of ['cpu:0', 'cpu:1']) {
      expect((await api(h, 'POST', '/groups/load', { group_id: GROUP, device_id })).status).toBe(
        200
      )
    }
    const started = Date.now()
    const results: Array<{ i: number; status: number; body: any }> = []
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_x, client) => {
        for (let i = client; i < TOTAL; i += CLIENTS) {
          const r = await api(h, 'POST', '/models/process', request(i), {
            clientId: `load-${client}`
          })
          results.push({ i, status: r.status, body: r.body })
        }
      })
    )
    const seconds = (Date.now() - started) / 1000
    console.log(`load: ${TOTAL} analyses from ${CLIENTS} clients in ${seconds.toFixed(1)} s`)

    expect(results).toHaveLength(TOTAL)
    expect(new Set(results.map((r) => r.i)).size).toBe(TOTAL)
    expect(results.filter((r) => r.status !== 200)).toEqual([])
    expect(new Set(results.map((r) => r.body.job.id)).size).toBe(TOTAL)
    const mismatched = results.filter(
      (r) =>
        r.body.job.status !== 'done' ||
        !sameRows(r.body.rows, distinct.get(JSON.stringify(request(r.i)))!)
    )
    expect(mismatched.map((r) => r.i)).toEqual([])
    // Both devices took work, and every client was served under its own id.
    const devices = new Set(results.flatMap((r) => r.body.job.devices))
    expect([...devices].sort()).toEqual(['cpu:0', 'cpu:1'])
    expect(new Set(results.map((r) => r.body.job.client_id)).size).toBe(CLIENTS)
    const state = await api(h, 'GET', '/system/state')
    expect(state.body.queue).toMatchObject({ queued: 0, running: 0 })
  }, 300_000)
})
