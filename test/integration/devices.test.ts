/**
 * The device manager with real worker processes on the demo group: three virtual CPU devices,
 * one thread each, driven through the contract (router + in-memory clients) as a window would.
 */
import { cp, mkdtemp, readFile, rm, symlink, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AnalysisRow } from '@shared/domain/analysis'
import type { JobRows, JobState } from '@shared/domain/jobs'
import { probeProviders } from '../../src/main/engine/ort'
import { ensureDemoBundle, openBundle } from '../../src/main/engine'
import { createMemoryClient, type MemoryClient } from '../../src/main/ipc/memoryTransport'
import { createServices, type Services } from '../../src/main/services/createServices'
import { finished, ok } from '../helpers/workbench'

const MiB = 1024 ** 2
const GROUP = 'demo-words'
const TEXT =
  'The cat sat on the red chair. A dog ran to the river in the morning. The old farmer sold cheese at the market.'
const FAST = { bestOfK: 2, salience: false, rowsPerBatch: 4 }

let services: Services
let a: MemoryClient
let b: MemoryClient
let modelsDir: string
const events: JobState[] = []
const rowEvents: JobRows[] = []

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 30_000
): Promise<void> {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 30))
  }
}

async function deviceState(id: string) {
  const snap = await ok(a.invoke('devices:state'))
  return snap.devices.find((d) => d.id === id)!
}

/** Everything but KL must be bit-identical; KL is compared to float32 rounding (see report). */
function expectSameRows(got: AnalysisRow[], want: AnalysisRow[]): void {
  expect(got.map((r) => r.position)).toEqual(want.map((r) => r.position))
  const strip = (r: AnalysisRow) => ({ ...r, klDivergence: null })
  expect(got.map(strip)).toEqual(want.map(strip))
  got.forEach((r, i) => {
    const w = want[i]!.klDivergence!
    expect(Math.abs(r.klDivergence! - w)).toBeLessThanOrEqual(1e-6 + 1e-3 * Math.abs(w))
  })
}

beforeAll(async () => {
  // The first optimized-graph write in a worker keeps a few MB for good (ONNX Runtime's own
  // buffers), which blurs the "memory came back" checks below; the reload cache has its own tests.
  process.env.TALKATIVE_OPTIMIZED_MODELS_DIR = 'off'
  modelsDir = await mkdtemp(join(tmpdir(), 'talkative-models-'))
  const demo = await ensureDemoBundle()
  // An intact second group (for eviction) and one that breaks after the scan (failed load).
  for (const [folder, id] of [
    ['copy', 'demo-copy'],
    ['gone', 'demo-gone']
  ] as const) {
    await cp(demo, join(modelsDir, folder), { recursive: true })
    const manifestFile = join(modelsDir, folder, 'manifest.json')
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
    manifest.group.id = id
    await writeFile(manifestFile, JSON.stringify(manifest))
  }
  await mkdir(join(modelsDir, 'junk'))
  await writeFile(join(modelsDir, 'junk', 'manifest.json'), '{ not json')
  await symlink(tmpdir(), join(modelsDir, 'escape'))
  // cpu:2 holds one demo group but not two: its budget is two CPU estimates, so the eviction checks
  // follow the estimate rather than a hard-coded size. Two, not fewer: once loaded, a group counts
  // what its load measured, which for a group this small (a few MiB of weights) is mostly ONNX
  // Runtime's fixed per-session cost and runs above the estimate (35 MiB against 23); one measured
  // group plus one estimated one still exceeds two estimates.
  const summary = await openBundle(demo)
  const oneGroup = summary.estimatedBytesByKind?.cpu ?? summary.estimatedBytes
  const smallBudget = Math.round(oneGroup * 2)
  services = createServices({
    probeProviders: () => probeProviders(['cpu']),
    devices: {
      modelsDir,
      devices: [
        { id: 'cpu:0', threads: 1, budgetBytes: 1024 * MiB },
        { id: 'cpu:1', threads: 1, budgetBytes: 1024 * MiB },
        { id: 'cpu:2', threads: 1, budgetBytes: smallBudget }
      ],
      heartbeatMs: 250,
      graceMs: 4000,
      cancelGraceMs: 10_000,
      watch: false
    }
  })
  a = createMemoryClient(services.router, services.hub, 'window-a')
  b = createMemoryClient(services.router, services.hub, 'window-b')
  a.on('jobs:changed', (s) => events.push(s))
  a.on('jobs:rows', (r) => rowEvents.push(r))
  services.start()
  await services.devices.manager()
}, 120_000)

afterAll(async () => {
  a?.close()
  b?.close()
  await services?.dispose()
  await rm(modelsDir, { recursive: true, force: true })
})

describe('device manager with real workers', () => {
  it('shows every device, the demo group, and broken bundles with their errors', async () => {
    const state = await ok(a.invoke('system:state'))
    expect(state.cpu.id).toBe('cpu')
    expect(state.devices?.map((d) => [d.id, d.provider, d.status])).toEqual([
      ['cpu:0', 'cpu', 'ready'],
      ['cpu:1', 'cpu', 'ready'],
      ['cpu:2', 'cpu', 'ready']
    ])
    const groups = state.library!.groups
    expect(groups.find((g) => g.groupId === GROUP)).toMatchObject({ source: 'demo', status: 'ok' })
    expect(groups.find((g) => g.groupId === 'demo-copy')).toMatchObject({
      source: 'folder',
      status: 'ok'
    })
    expect(groups.find((g) => g.folder === 'junk')).toMatchObject({
      status: 'broken',
      errors: [expect.objectContaining({ code: 'bundle_invalid' })]
    })
    expect(groups.find((g) => g.folder === 'escape')).toMatchObject({
      status: 'broken',
      errors: [expect.objectContaining({ code: 'forbidden' })]
    })
  })

  it('estimates before a load, then shows the measured memory beside the estimate', async () => {
    const before = await ok(a.invoke('models:estimate', { groupId: GROUP, deviceId: 'cpu:0' }))
    expect(before.verdict).toBe('fits')
    const res = await ok(a.invoke('models:load', { groupId: GROUP, deviceId: 'cpu:0' }))
    expect(res.deviceId).toBe('cpu:0')
    expect(res.placement?.state).toBe('ready')
    expect(res.placement?.measuredBytes).toBeGreaterThan(0)
    expect(res.placement?.estimatedBytes).toBe(before.requiredBytes)
    expect(
      (await ok(a.invoke('models:estimate', { groupId: GROUP, deviceId: 'cpu:0' }))).verdict
    ).toBe('loaded')
    await ok(a.invoke('models:load', { groupId: GROUP, deviceId: 'cpu:1' }))
  })

  it('splits one analysis across every device holding the group, rows in order, equal to one device', async () => {
    rowEvents.length = 0
    const { jobId } = await ok(
      a.invoke('jobs:submit', { kind: 'analyze', groupId: GROUP, text: TEXT, options: FAST })
    )
    const split = await finished(a, jobId)
    expect(split.status).toBe('done')
    expect([...split.devices].sort()).toEqual(['cpu:0', 'cpu:1'])
    const streamed = rowEvents.filter((r) => r.jobId === jobId)
    let next = 0
    for (const r of streamed) {
      expect(r.startIndex).toBe(next)
      next += r.rows.length
    }
    const single = await ok(
      a.invoke('jobs:submit', {
        kind: 'analyze',
        groupId: GROUP,
        text: TEXT,
        options: FAST,
        deviceId: 'cpu:0'
      })
    )
    expect((await finished(a, single.jobId)).devices).toEqual(['cpu:0'])
    const splitRows = (await ok(a.invoke('jobs:result', { jobId }))).rows
    const singleRows = (await ok(a.invoke('jobs:result', { jobId: single.jobId }))).rows
    expect(streamed.flatMap((r) => r.rows)).toEqual(splitRows)
    expect(splitRows.length).toBeGreaterThan(20)
    expectSameRows(splitRows, singleRows)
  })

  it('holds one job ahead at each busy worker in a burst: every job whole, rows in order, as on one device', async () => {
    // Two holders only (cpu:2 would take a replica): the burst drains over cpu:0 and cpu:1.
    await ok(a.invoke('models:settings', { groupId: GROUP, replicas: { min: 0, max: 2 } }))
    try {
      const text = 'The cat sat on the red chair. A dog ran to the river.'
      const single = await ok(
        a.invoke('jobs:submit', {
          kind: 'analyze',
          groupId: GROUP,
          text,
          options: FAST,
          deviceId: 'cpu:0'
        })
      )
      await finished(a, single.jobId)
      const want = (await ok(a.invoke('jobs:result', { jobId: single.jobId }))).rows
      events.length = 0
      rowEvents.length = 0
      const burst = await Promise.all(
        Array.from({ length: 8 }, () =>
          ok(a.invoke('jobs:submit', { kind: 'analyze', groupId: GROUP, text, options: FAST }))
        )
      )
      const ends = await Promise.all(burst.map((j) => finished(a, j.jobId)))
      expect(ends.map((j) => j.status)).toEqual(burst.map(() => 'done'))
      const ahead = new Set(
        events.filter((e) => /^next on cpu:[01], after /.test(e.stage ?? '')).map((e) => e.id)
      )
      expect(ahead.size).toBeGreaterThan(0)
      for (const { jobId } of burst) {
        const streamed = rowEvents.filter((r) => r.jobId === jobId)
        let next = 0
        for (const r of streamed) {
          expect(r.startIndex).toBe(next)
          next += r.rows.length
        }
        const rows = (await ok(a.invoke('jobs:result', { jobId }))).rows
        expect(streamed.flatMap((r) => r.rows)).toEqual(rows)
        expectSameRows(rows, want)
      }
      // A job held ahead ran after the job it waited for, on that device, whole.
      for (const id of ahead) {
        const end = ends.find((j) => j.id === id)!
        expect(end.devices).toHaveLength(1)
        expect(end.progress).toMatchObject({ rowsDone: want.length, rowsTotal: want.length })
      }
      for (const id of ['cpu:0', 'cpu:1'])
        expect(await deviceState(id)).toMatchObject({ status: 'ready', runningJobId: null })
    } finally {
      await ok(a.invoke('models:settings', { groupId: GROUP, replicas: { min: 0, max: null } }))
    }
  })

  it('is fair between clients: a late client is not queued behind a burst', async () => {
    const opts = {
      kind: 'analyze' as const,
      groupId: GROUP,
      text: 'The cat sat on the red chair.',
      options: FAST,
      deviceId: 'cpu:0'
    }
    const a1 = await ok(a.invoke('jobs:submit', opts))
    const a2 = await ok(a.invoke('jobs:submit', opts))
    const a3 = await ok(a.invoke('jobs:submit', opts))
    const b1 = await ok(b.invoke('jobs:submit', opts))
    expect(b1.queuePosition).toBe(1)
    const done = await Promise.all([a1, a2, a3, b1].map((j) => finished(a, j.jobId)))
    expect(done.map((j) => j.status)).toEqual(['done', 'done', 'done', 'done'])
    const order = [...done].sort((x, y) => x.startedAt! - y.startedAt!).map((j) => j.id)
    expect(order).toEqual([a1.jobId, b1.jobId, a2.jobId, a3.jobId])
  })

  it('cancels a queued job at once and a running one at its next batch boundary', async () => {
    const long = 'The queen visited the castle on the island. '.repeat(6)
    const opts = {
      kind: 'analyze' as const,
      groupId: GROUP,
      text: long,
      options: { ...FAST, rowsPerBatch: 2 },
      deviceId: 'cpu:1'
    }
    const running = await ok(a.invoke('jobs:submit', opts))
    const queued = await ok(b.invoke('jobs:submit', opts))
    const cancelledQueued = await ok(b.invoke('jobs:cancel', { jobId: queued.jobId }))
    expect(cancelledQueued.status).toBe('cancelled')
    await until(
      'first rows',
      async () =>
        ((await ok(a.invoke('jobs:get', { jobId: running.jobId }))).progress?.rowsDone ?? 0) > 0
    )
    await ok(a.invoke('jobs:cancel', { jobId: running.jobId }))
    const end = await finished(a, running.jobId)
    expect(end.status).toBe('cancelled')
    const result = await ok(a.invoke('jobs:result', { jobId: running.jobId }))
    expect(result.rows.length).toBeGreaterThan(0)
    expect(result.rows.length).toBeLessThan(end.progress!.rowsTotal)
    expect(result.metadata?.status).toBe('cancelled')
    expect((await deviceState('cpu:1')).status).toBe('ready')
  })

  it('survives SIGKILL of a worker mid-job: recovers the device, retries once, keeps rows, spares others', async () => {
    const long = 'A small bird sang in the garden. My sister read a book in the library. '.repeat(2)
    const options = { ...FAST, rowsPerBatch: 2 }
    const reference = await ok(
      a.invoke('jobs:submit', {
        kind: 'analyze',
        groupId: GROUP,
        text: long,
        options,
        deviceId: 'cpu:0'
      })
    )
    const referenceRows = (await finished(a, reference.jobId),
    await ok(a.invoke('jobs:result', { jobId: reference.jobId }))).rows

    const victimPid = (await deviceState('cpu:1')).workerPid!
    const other = await ok(
      b.invoke('jobs:submit', {
        kind: 'analyze',
        groupId: GROUP,
        text: TEXT,
        options: FAST,
        deviceId: 'cpu:2'
      })
    )
    const job = await ok(
      a.invoke('jobs:submit', { kind: 'analyze', groupId: GROUP, text: long, options })
    )
    await until('cpu:1 to work on the split job', async () => {
      const d = await deviceState('cpu:1')
      const s = await ok(a.invoke('jobs:get', { jobId: job.jobId }))
      return d.runningJobId === job.jobId && (s.progress?.rowsDone ?? 0) > 0
    })
    process.kill(victimPid, 'SIGKILL')
    await until(
      'cpu:1 recovering',
      async () =>
        (await deviceState('cpu:1')).status === 'recovering' ||
        (await deviceState('cpu:1')).restarts > 0
    )

    const end = await finished(a, job.jobId)
    expect(end.status).toBe('done')
    expect(end.retries).toBe(1)
    expect(end.notes.join(' ')).toMatch(/cpu:1 crashed/)
    expectSameRows((await ok(a.invoke('jobs:result', { jobId: job.jobId }))).rows, referenceRows)
    expect((await finished(b, other.jobId)).status).toBe('done')

    await until('cpu:1 back with its group', async () => {
      const d = await deviceState('cpu:1')
      return (
        d.status === 'ready' && d.placements.some((p) => p.groupId === GROUP && p.state === 'ready')
      )
    })
    const d = await deviceState('cpu:1')
    expect(d.restarts).toBe(1)
    expect(d.workerPid).not.toBe(victimPid)
  })

  it('restarts a worker that stops answering within the grace period', async () => {
    const before = await deviceState('cpu:2')
    process.kill(before.workerPid!, 'SIGSTOP')
    await until(
      'cpu:2 restarted',
      async () => {
        const d = await deviceState('cpu:2')
        return d.restarts === before.restarts + 1 && d.status === 'ready'
      },
      // The restart itself takes seconds; a fresh worker's start-up on a saturated machine more.
      45_000
    )
    expect((await deviceState('cpu:2')).statusDetail ?? '').not.toMatch(/could not/)
  })

  it('evicts the least recently used unpinned group, never a pinned one, and refuses what cannot fit', async () => {
    await ok(a.invoke('models:load', { groupId: GROUP, deviceId: 'cpu:2' }))
    const estimate = await ok(
      a.invoke('models:estimate', { groupId: 'demo-copy', deviceId: 'cpu:2' })
    )
    expect(estimate.verdict).toBe('fits_after_evicting')
    expect(estimate.evictions.map((e) => e.groupId)).toEqual([GROUP])
    await ok(a.invoke('models:pin', { groupId: GROUP, deviceId: 'cpu:2', pinned: true }))
    const refused = await ok(
      a.invoke('models:estimate', { groupId: 'demo-copy', deviceId: 'cpu:2' })
    )
    expect(refused.verdict).toBe('does_not_fit')
    expect(refused.reason).toMatch(/pinned demo-words/)
    const failed = await a.invoke('models:load', { groupId: 'demo-copy', deviceId: 'cpu:2' })
    expect(failed.ok).toBe(false)
    if (!failed.ok) expect(failed.error.message).toMatch(/demo-copy needs .* on cpu:2/)
    const unpinnedRefusal = await a.invoke('models:unload', { groupId: GROUP, deviceId: 'cpu:2' })
    expect(unpinnedRefusal).toMatchObject({ ok: false, error: { code: 'conflict' } })
    await ok(a.invoke('models:pin', { groupId: GROUP, deviceId: 'cpu:2', pinned: false }))
    const loaded = await ok(a.invoke('models:load', { groupId: 'demo-copy', deviceId: 'cpu:2' }))
    const job = await ok(a.invoke('jobs:get', { jobId: loaded.jobId }))
    expect(job.notes).toContain('evicted demo-words from cpu:2')
    expect((await deviceState('cpu:2')).placements.map((p) => p.groupId)).toEqual(['demo-copy'])
  })

  it('unload reports what came back and never grows the process; move loads elsewhere then unloads the source', async () => {
    const moved = await ok(
      a.invoke('models:move', { groupId: 'demo-copy', fromDeviceId: 'cpu:2', toDeviceId: 'cpu:0' })
    )
    expect(moved.deviceId).toBe('cpu:0')
    expect((await deviceState('cpu:2')).placements).toEqual([])
    // The source's unload was checked and did not grow the process. Whether `ok` holds is not
    // asserted for a group this small: its memory stays in glibc's heap (below the workers' mmap
    // threshold), so the unload frees ≈ 0 bytes of RSS and `ok` rests on the baseline rule alone,
    // which the load's measured delta (6–12 MB between runs) passes or misses against the 8 MiB
    // slack (diagnosed 2026-11-30: it failed 1 run in 3 on unchanged code). Memory that is really
    // given back is asserted in src/main/devices/reloadCache.test.ts (> 1 MB freed).
    const sourceUnload = (await deviceState('cpu:2')).lastUnload
    expect(sourceUnload?.groupId).toBe('demo-copy')
    expect(sourceUnload!.freedBytes).toBeGreaterThanOrEqual(-MiB)
    // On a device whose process has run many analyses, RSS stays at its high-water mark (the
    // allocator keeps the pages for reuse): unload must not grow it beyond the allocator's own
    // bookkeeping (well under a MiB; the group itself is several).
    const res = await ok(a.invoke('models:unload', { groupId: 'demo-copy', deviceId: 'cpu:0' }))
    expect(res.unloaded[0]!.deviceId).toBe('cpu:0')
    expect(res.unloaded[0]!.freedBytes).toBeGreaterThanOrEqual(-MiB)
    expect((await deviceState('cpu:0')).placements.map((p) => p.groupId)).toEqual([GROUP])
  })

  it('a group that fails to load leaves the device usable', async () => {
    await ok(a.invoke('models:list', { rescan: true }))
    await rm(join(modelsDir, 'gone', 'tokenizer.json'))
    const failed = await a.invoke('models:load', { groupId: 'demo-gone', deviceId: 'cpu:2' })
    expect(failed).toMatchObject({ ok: false, error: { code: 'bundle_invalid' } })
    expect((await deviceState('cpu:2')).status).toBe('ready')
    const { jobId } = await ok(
      a.invoke('jobs:submit', {
        kind: 'analyze',
        groupId: GROUP,
        text: 'The cat sat.',
        options: FAST,
        deviceId: 'cpu:2'
      })
    )
    expect((await finished(a, jobId)).status).toBe('done')
  })

  it('reports job states as events: queued with a position, loading, running with progress, done', () => {
    const statuses = new Set(events.map((e) => e.status))
    for (const s of ['queued', 'loading', 'running', 'done', 'cancelled'])
      expect(statuses).toContain(s)
    expect(events.some((e) => e.status === 'running' && e.progress && e.etaSeconds !== null)).toBe(
      true
    )
  })
})
