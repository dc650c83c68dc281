/**
 * The generate and generate-analyze job kinds end to end: contract → device manager → a real
 * worker process → the engine's generate on the demo group.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobState } from '@shared/domain/jobs'
import { probeProviders } from '../ort'
import { ensureDemoBundle, loadGroup } from '../index'
import { createMemoryClient, type MemoryClient } from '../../ipc/memoryTransport'
import { createServices, type Services } from '../../services/createServices'

const GROUP = 'demo-words'
let services: Services
let client: MemoryClient
let modelsDir: string

async function ok<T>(
  p: Promise<{ ok: true; value: T } | { ok: false; error: { message: string } }>
): Promise<T> {
  const r = await p
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

async function finished(jobId: string): Promise<JobState> {
  const until = Date.now() + 60_000
  for (;;) {
    const s = await ok(client.invoke('jobs:get', { jobId }))
    if (['done', 'failed', 'cancelled'].includes(s.status)) return s
    if (Date.now() > until) throw new Error(`job ${jobId} still ${s.status}`)
    await new Promise((r) => setTimeout(r, 30))
  }
}

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'talkative-gen-jobs-'))
  await ensureDemoBundle()
  services = createServices({
    probeProviders: () => probeProviders(['cpu']),
    devices: {
      modelsDir,
      devices: [{ id: 'cpu:0', threads: 1, budgetBytes: 1024 * 1024 ** 2 }],
      heartbeatMs: 250,
      graceMs: 4000,
      cancelGraceMs: 10_000,
      watch: false
    }
  })
  client = createMemoryClient(services.router, services.hub, 'window-gen')
  services.start()
  await services.devices.manager()
}, 120_000)

afterAll(async () => {
  client?.close()
  await services?.dispose()
  await rm(modelsDir, { recursive: true, force: true })
})

describe('generation jobs on a device worker', () => {
  const text = 'the cat sat on the'
  const generate = { maxNewTokens: 5, completions: 2, seed: 4, temperature: 1 }

  it('returns the same completions as the engine called directly', async () => {
    const { jobId } = await ok(
      client.invoke('jobs:submit', { kind: 'generate', groupId: GROUP, text, generate })
    )
    const state = await finished(jobId)
    expect(state.status).toBe('done')
    const result = await ok(client.invoke('jobs:result', { jobId }))
    expect(result.completions).toHaveLength(2)

    const group = await loadGroup(await ensureDemoBundle(), { provider: 'cpu', threads: 1 })
    try {
      const direct = await group.generate({
        lensId: group.summary.lenses[0]!.id,
        text,
        options: { maxNewTokens: 5, n: 2, seed: 4, temperature: 1 }
      })
      expect(result.completions).toEqual(direct.completions.map((c) => c.fullText))
    } finally {
      await group.dispose()
    }
  })

  it('generate-analyze analyses prompt + continuation', async () => {
    const { jobId } = await ok(
      client.invoke('jobs:submit', {
        kind: 'generate-analyze',
        groupId: GROUP,
        text,
        generate: { ...generate, completions: 1 },
        options: { bestOfK: 2, salience: false, kl: false }
      })
    )
    expect((await finished(jobId)).status).toBe('done')
    const result = await ok(client.invoke('jobs:result', { jobId }))
    const full = result.completions[0]!
    expect(full.startsWith('<bos> the cat sat on the ')).toBe(true)
    // One row per token of the full text: BOS, five prompt words, five new ones.
    expect(result.rows.map((r) => r.token)).toEqual(full.split(' '))
    expect(result.rows).toHaveLength(11)
  })
})
