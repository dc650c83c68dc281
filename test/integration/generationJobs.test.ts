/**
 * The generate and generate-analyze job kinds end to end: contract → device manager → a real
 * worker process → the engine's generate on the demo group.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobState } from '@shared/domain/jobs'
import { ensureDemoBundle, loadGroup } from '../../src/main/engine'
import type { MemoryClient } from '../../src/main/ipc/memoryTransport'
import {
  finished as jobFinished,
  ok,
  startWorkbench,
  type TestWorkbench
} from '../helpers/workbench'

const GROUP = 'demo-words'
let bench: TestWorkbench
let client: MemoryClient

const finished = (jobId: string): Promise<JobState> => jobFinished(client, jobId)

beforeAll(async () => {
  bench = await startWorkbench([{ id: 'cpu:0', threads: 1, budgetBytes: 1024 * 1024 ** 2 }], {
    devicesOptions: { heartbeatMs: 250, graceMs: 4000, cancelGraceMs: 10_000 }
  })
  client = bench.client('window-gen')
}, 120_000)

afterAll(async () => {
  await bench?.close()
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
      expect(result.replies).toEqual(direct.completions.map((c) => c.reply))
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
