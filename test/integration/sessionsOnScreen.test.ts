/**
 * The renderer bridge (what the page shows) against the real services and the demo group: a run
 * shown while it streams ends showing exactly what its session file holds.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStore } from 'zustand/vanilla'
import { ok, startWorkbench, type TestWorkbench } from '../helpers/workbench'
import { initialAppState, type AppState } from '../../src/renderer/src/store'
import { startedRun } from '../../src/renderer/src/store/slices/runsSlice'
import { startBridge } from '../../src/renderer/src/ipc/bridge'

let bench: TestWorkbench
let sessionsDir = ''
const previousDir = process.env.TALKATIVE_SESSIONS_DIR

beforeAll(async () => {
  sessionsDir = await mkdtemp(join(tmpdir(), 'talkative-bridge-sessions-'))
  process.env.TALKATIVE_SESSIONS_DIR = sessionsDir
  bench = await startWorkbench([{ id: 'cpu:0', threads: 1, budgetBytes: 1024 ** 3 }])
}, 120_000)

afterAll(async () => {
  await bench?.close()
  if (previousDir === undefined) delete process.env.TALKATIVE_SESSIONS_DIR
  else process.env.TALKATIVE_SESSIONS_DIR = previousDir
  await rm(sessionsDir, { recursive: true, force: true })
})

describe('bridge: runs on screen', () => {
  it('a finished generate + analyse run shows its saved rows, layer and continuation', async () => {
    const client = bench.client('renderer')
    const store = createStore<AppState>()(() => ({ ...initialAppState }))
    const stop = startBridge(client, store)
    const reply = await ok(
      client.invoke('sessions:run', {
        kind: 'generate-analyze',
        groupId: 'demo-words',
        input: { mode: 'text', text: 'the cat sat on the mat' },
        options: { bestOfK: 2, seed: 7 },
        generate: { maxNewTokens: 6, temperature: 1, seed: 7 }
      })
    )
    store.setState((s) => startedRun(s, reply.session, reply.jobId))
    const id = reply.session.id

    await expect.poll(() => store.getState().runs.byId[id]?.settled, { timeout: 60_000 }).toBe(true)
    const run = store.getState().runs.byId[id]!
    const saved = await ok(client.invoke('sessions:get', { id }))
    expect(saved.status).toBe('completed')
    expect(run.summary.status).toBe('completed')
    expect(run.metadata?.layer).toBe(saved.metadata?.layer)
    expect(run.metadata).not.toBeNull()
    expect(run.completions).toEqual(saved.completions)
    expect(run.completions.length).toBeGreaterThan(0)
    expect(run.rows).toEqual(saved.rows)
    expect(store.getState().runs.activeId).toBe(id)
    stop()
  })
})
