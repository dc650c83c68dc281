/**
 * Replicas and saved placements with real workers on virtual CPU devices: a burst for a group
 * resident on one device spreads over a replica on the idle one, with rows identical to a serial
 * run; pins, preloads and settings are saved atomically and restored at the next start before any
 * job runs, a vanished device is reported and its group placed by the normal rules.
 */
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { JobState } from '@shared/domain/jobs'
import { ensureDemoBundle } from '../../src/main/engine'
import { probeProviders } from '../../src/main/engine/ort'
import { createMemoryClient, type MemoryClient } from '../../src/main/ipc/memoryTransport'
import { createServices, type Services } from '../../src/main/services/createServices'
import { finished, ok } from '../helpers/workbench'

const MiB = 1024 ** 2
const GROUP = 'demo-words'
const COPY = 'demo-copy'
const FAST = { bestOfK: 2, salience: false, rowsPerBatch: 8 }
const TEXTS = [
  'The cat sat on the red chair.',
  'A dog ran to the river in the morning.',
  'The old farmer sold cheese at the market.',
  'My sister read a book in the library.',
  'A small bird sang in the garden.',
  'The queen visited the castle on the island.'
]

let root = ''
let modelsDir = ''
const open: Array<{ services: Services; client: MemoryClient }> = []

async function start(
  placementsFile: string,
  deviceIds = ['cpu:0', 'cpu:1']
): Promise<{ services: Services; client: MemoryClient }> {
  const services = createServices({
    probeProviders: () => probeProviders(['cpu']),
    devices: {
      modelsDir,
      devices: deviceIds.map((id) => ({ id, threads: 1, budgetBytes: 1024 * MiB })),
      heartbeatMs: 500,
      graceMs: 10_000,
      watch: false,
      placementsFile
    }
  })
  const client = createMemoryClient(services.router, services.hub, 'window')
  services.start()
  await services.devices.manager()
  const entry = { services, client }
  open.push(entry)
  return entry
}

async function stop(entry: { services: Services; client: MemoryClient }): Promise<void> {
  entry.client.close()
  await entry.services.dispose()
  open.splice(open.indexOf(entry), 1)
}

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const t = Date.now()
  while (!(await check())) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 30))
  }
}

function expectSameRows(got: AnalysisRow[], want: AnalysisRow[]): void {
  const strip = (r: AnalysisRow): AnalysisRow => ({ ...r, klDivergence: null })
  expect(got.map(strip)).toEqual(want.map(strip))
  got.forEach((r, i) => {
    const w = want[i]!.klDivergence!
    expect(Math.abs(r.klDivergence! - w)).toBeLessThanOrEqual(1e-6 + 1e-3 * Math.abs(w))
  })
}

beforeAll(async () => {
  process.env.TALKATIVE_OPTIMIZED_MODELS_DIR = 'off'
  root = await mkdtemp(join(tmpdir(), 'talkative-placements-it-'))
  modelsDir = join(root, 'models')
  const demo = await ensureDemoBundle()
  await cp(demo, join(modelsDir, 'copy'), { recursive: true })
  const manifestFile = join(modelsDir, 'copy', 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
  manifest.group.id = COPY
  await writeFile(manifestFile, JSON.stringify(manifest))
}, 60_000)

afterAll(async () => {
  for (const entry of [...open]) await stop(entry)
  await rm(root, { recursive: true, force: true })
})

describe('replicas', () => {
  it('spreads a burst over a replica on the idle device, rows identical to a serial run', async () => {
    const w = await start(join(root, 'replicas.json'))
    const c = w.client
    await ok(c.invoke('models:load', { groupId: GROUP, deviceId: 'cpu:0' }))
    // Serial reference: every text on cpu:0 alone, one after another.
    const serial: AnalysisRow[][] = []
    for (const text of TEXTS) {
      const { jobId } = await ok(
        c.invoke('jobs:submit', {
          kind: 'analyze',
          groupId: GROUP,
          text,
          options: FAST,
          deviceId: 'cpu:0'
        })
      )
      expect((await finished(c, jobId)).status).toBe('done')
      serial.push((await ok(c.invoke('jobs:result', { jobId }))).rows)
    }
    expect((await ok(c.invoke('devices:state'))).devices[1]!.placements).toEqual([])

    const burst = await Promise.all(
      [...TEXTS, ...TEXTS].map((text) =>
        ok(c.invoke('jobs:submit', { kind: 'analyze', groupId: GROUP, text, options: FAST }))
      )
    )
    const ends: JobState[] = []
    for (const { jobId } of burst) ends.push(await finished(c, jobId))
    expect(ends.every((j) => j.status === 'done')).toBe(true)
    const used = new Set(ends.flatMap((j) => j.devices))
    expect([...used].sort()).toEqual(['cpu:0', 'cpu:1'])
    const state = await ok(c.invoke('devices:state'))
    expect(state.devices[1]!.placements.map((p) => p.groupId)).toEqual([GROUP])
    expect(state.library.groups.find((g) => g.groupId === GROUP)!.loadedOn).toEqual([
      'cpu:0',
      'cpu:1'
    ])
    for (const [i, { jobId }] of burst.entries()) {
      expectSameRows((await ok(c.invoke('jobs:result', { jobId }))).rows, serial[i % TEXTS.length]!)
    }
    // 18 analyses and two loads: more than the default limit on a machine shared by other work.
  }, 180_000)

  it('keeps to one device when replicas.max is 1', async () => {
    const c = open[0]!.client
    await ok(c.invoke('devices:clear', { deviceId: 'cpu:1' }))
    const settings = await ok(
      c.invoke('models:settings', { groupId: GROUP, replicas: { min: 0, max: 1 } })
    )
    expect(settings).toEqual({ replicas: { min: 0, max: 1 }, preload: false })
    const burst = await Promise.all(
      TEXTS.map((text) =>
        ok(c.invoke('jobs:submit', { kind: 'analyze', groupId: GROUP, text, options: FAST }))
      )
    )
    for (const { jobId } of burst) expect((await finished(c, jobId)).devices).toEqual(['cpu:0'])
    expect((await ok(c.invoke('devices:state'))).devices[1]!.placements).toEqual([])
    await stop(open[0]!)
  })
})

describe('saved placements', () => {
  it('saves pins, preloads and settings atomically as they change', async () => {
    const file = join(root, 'saved.json')
    const w = await start(file)
    const c = w.client
    await ok(c.invoke('models:load', { groupId: GROUP, deviceId: 'cpu:1' }))
    await ok(c.invoke('models:pin', { groupId: GROUP, deviceId: 'cpu:1', pinned: true }))
    await ok(c.invoke('models:settings', { groupId: COPY, preload: true }))
    const saved = async (): Promise<unknown> => {
      try {
        return JSON.parse(await readFile(file, 'utf8'))
      } catch {
        return null
      }
    }
    const want = {
      version: 1,
      groups: { [COPY]: { replicas: { min: 0, max: null }, preload: true } },
      placements: [{ groupId: GROUP, deviceId: 'cpu:1', pinned: true }]
    }
    await until(
      'the file to say so',
      async () => JSON.stringify(await saved()) === JSON.stringify(want)
    )
    expect((await readdir(root)).filter((n) => n.includes('.tmp'))).toEqual([])
    const library = (await ok(c.invoke('models:list'))).groups
    expect(library.find((g) => g.groupId === COPY)!.settings).toEqual(want.groups[COPY])
    await stop(w)
  })

  it('restores them at start before any job runs, and reports a vanished device', async () => {
    const file = join(root, 'saved.json')
    // cpu:1 is gone at this start: the pinned group is placed by the rules, and pinned there.
    const w = await start(file, ['cpu:0', 'cpu:2'])
    const c = w.client
    const early = await ok(
      c.invoke('jobs:submit', { kind: 'analyze', groupId: GROUP, text: TEXTS[0]!, options: FAST })
    )
    const job = await finished(c, early.jobId)
    expect(job.status).toBe('done')
    const state = await ok(c.invoke('devices:state'))
    expect(state.startup?.status).toBe('done')
    expect(state.startup?.notes.join('\n')).toMatch(
      /cpu:1 is gone: demo-words \(pinned there\) is placed by the normal rules and pinned/
    )
    const placed = state.devices.flatMap((d) =>
      d.placements.map((p) => ({ deviceId: d.id, groupId: p.groupId, pinned: p.pinned }))
    )
    expect(placed.filter((p) => p.groupId === GROUP && p.pinned)).toHaveLength(1)
    expect(placed.some((p) => p.groupId === COPY)).toBe(true)
    // The preloads were loaded by the startup client before the early job started.
    const loads = state.queue.jobs.filter((j) => j.kind === 'load' && j.clientId === 'startup')
    expect(loads.length).toBeGreaterThanOrEqual(2)
    for (const l of loads) expect(l.finishedAt!).toBeLessThanOrEqual(job.startedAt!)
    await stop(w)
  })

  it('sets a broken file aside, says so, and starts with nothing restored', async () => {
    const file = join(root, 'broken.json')
    await writeFile(file, '{"version": 1, "groups": {}, "placements": [{"groupId": 5}]}')
    const w = await start(file)
    await w.services.devices.manager().then((m) => m.restored())
    const state = await ok(w.client.invoke('devices:state'))
    expect(state.startup?.notes.join('\n')).toMatch(
      /saved placements not used: .*moved to broken\.json\.bad-/
    )
    expect(state.devices.every((d) => d.placements.length === 0)).toBe(true)
    await stop(w)
  })
})
