/**
 * The research job kinds end to end: contract → device manager → a real worker process → the
 * engine's intervention and layer sweep on the demo group, then the same runs saved as sessions
 * and read back.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobRows, JobState } from '@shared/domain/jobs'
import { ensureDemoBundle, loadGroup, type LoadedGroup } from '../../src/main/engine'
import type { MemoryClient } from '../../src/main/ipc/memoryTransport'
import {
  finished as jobFinished,
  ok,
  startWorkbench,
  type TestWorkbench
} from '../helpers/workbench'

const GROUP = 'demo-words'
const LENS = 'words-l1'
const TEXT = 'The cat sat on the red chair. A dog ran to the river.'
const OPTIONS = { bestOfK: 2, seed: 5, salience: false }
const INTERVENTION = { positions: [2, 4], strings: ['dog river', 'red'], maxNewTokens: 4 }
const SWEEP = { position: 3 }

let bench: TestWorkbench
let client: MemoryClient
let direct: LoadedGroup
let sessionsDir = ''
const previousDir = process.env.TALKATIVE_SESSIONS_DIR
const rowEvents: JobRows[] = []

const finished = (jobId: string): Promise<JobState> => jobFinished(client, jobId)

beforeAll(async () => {
  sessionsDir = await mkdtemp(join(tmpdir(), 'talkative-research-sessions-'))
  process.env.TALKATIVE_SESSIONS_DIR = sessionsDir
  bench = await startWorkbench([{ id: 'cpu:0', threads: 1, budgetBytes: 1024 ** 3 }])
  client = bench.client('window-research')
  client.on('jobs:rows', (r) => rowEvents.push(r))
  direct = await loadGroup(await ensureDemoBundle(), { provider: 'cpu', threads: 1 })
}, 120_000)

afterAll(async () => {
  await direct?.dispose()
  await bench?.close()
  if (previousDir === undefined) delete process.env.TALKATIVE_SESSIONS_DIR
  else process.env.TALKATIVE_SESSIONS_DIR = previousDir
  await rm(sessionsDir, { recursive: true, force: true })
})

describe('research jobs on a device worker', () => {
  it('an intervene job streams the same rows as the engine called directly, in index order', async () => {
    const { jobId } = await ok(
      client.invoke('jobs:submit', {
        kind: 'intervene',
        groupId: GROUP,
        lensId: LENS,
        text: TEXT,
        options: OPTIONS,
        intervention: INTERVENTION
      })
    )
    const state = await finished(jobId)
    expect(state.status).toBe('done')
    expect(state.progress).toEqual({ rowsDone: 4, rowsTotal: 4 })
    const result = await ok(client.invoke('jobs:result', { jobId }))
    expect(result.rows).toEqual([])
    expect(result.interventions.map((r) => r.index)).toEqual([0, 1, 2, 3])
    expect(result.metadata?.analysedPositions).toBe(4)

    const want = await direct.intervene({
      lensId: LENS,
      text: TEXT,
      options: OPTIONS,
      intervention: INTERVENTION
    })
    expect(result.interventions).toEqual(want.rows)

    const streamed = rowEvents
      .filter((e) => e.jobId === jobId)
      .flatMap((e) => e.interventions ?? [])
    expect(streamed).toEqual(want.rows)
  })

  it('a sweep job returns one row per layer, in layer order, equal to the engine', async () => {
    const { jobId } = await ok(
      client.invoke('jobs:submit', {
        kind: 'sweep',
        groupId: GROUP,
        lensId: LENS,
        text: TEXT,
        options: OPTIONS,
        sweep: SWEEP
      })
    )
    expect((await finished(jobId)).status).toBe('done')
    const result = await ok(client.invoke('jobs:result', { jobId }))
    const want = await direct.sweep({ lensId: LENS, text: TEXT, options: OPTIONS, sweep: SWEEP })
    expect(result.rows.map((r) => r.layer)).toEqual(want.rows.map((r) => r.layer))
    expect(result.rows.length).toBe(direct.summary.baseModel.layers)
    expect(new Set(result.rows.map((r) => r.position))).toEqual(new Set([SWEEP.position]))
    expect(result.rows).toEqual(want.rows)
  })

  it('refuses an intervene job without its request, naming the field', async () => {
    const r = await client.invoke('jobs:submit', {
      kind: 'intervene',
      groupId: GROUP,
      text: TEXT
    })
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.error.message).toMatch(/intervention/)
  })
})

describe('research runs saved as sessions', () => {
  it('an intervention session is saved with its rows and request, and reads back whole', async () => {
    const reply = await ok(
      client.invoke('sessions:run', {
        kind: 'intervene',
        groupId: GROUP,
        lensId: LENS,
        input: { mode: 'text', text: TEXT },
        options: OPTIONS,
        intervention: INTERVENTION
      })
    )
    expect(reply.session.name).toMatch(/^Intervention @2, 4: /)
    expect((await finished(reply.jobId)).status).toBe('done')
    await expect
      .poll(
        async () => (await ok(client.invoke('sessions:get', { id: reply.session.id }))).status,
        {
          timeout: 30_000
        }
      )
      .toBe('completed')
    const saved = await ok(client.invoke('sessions:get', { id: reply.session.id }))
    const result = await ok(client.invoke('jobs:result', { jobId: reply.jobId }))
    expect(saved.kind).toBe('intervene')
    expect(saved.intervention?.positions).toEqual(INTERVENTION.positions)
    expect(saved.interventions).toEqual(result.interventions)
    expect(saved.interventions).toHaveLength(4)
    const list = await ok(client.invoke('sessions:list'))
    expect(list.sessions.find((s) => s.id === saved.id)?.rowCount).toBe(4)
  })

  it('a sweep session keeps one row per layer', async () => {
    const reply = await ok(
      client.invoke('sessions:run', {
        kind: 'sweep',
        groupId: GROUP,
        lensId: LENS,
        input: { mode: 'text', text: TEXT },
        options: OPTIONS,
        sweep: SWEEP
      })
    )
    expect(reply.session.name).toMatch(/^Layer sweep @3: /)
    expect((await finished(reply.jobId)).status).toBe('done')
    await expect
      .poll(
        async () => (await ok(client.invoke('sessions:get', { id: reply.session.id }))).status,
        {
          timeout: 30_000
        }
      )
      .toBe('completed')
    const saved = await ok(client.invoke('sessions:get', { id: reply.session.id }))
    expect(saved.sweep?.position).toBe(SWEEP.position)
    expect(saved.rows.map((r) => r.layer)).toEqual(
      Array.from({ length: direct.summary.baseModel.layers }, (_, i) => i)
    )
  })
})
