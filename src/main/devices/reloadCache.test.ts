/**
 * The reload cache through the device manager: a real worker on a virtual CPU device, the demo
 * group unloaded and loaded again. The unload still counts as memory returned (the cached bytes
 * are the cache's, shown on the device), the reload comes from the host cache and its analysis is
 * identical to the first one. Settings parsing is checked on its own.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, freemem, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { HardwareState } from '@shared/domain/system'
import { ensureDemoBundle, openBundle } from '../engine'
import { ModelLibrary } from './library'
import { DeviceManager } from './manager'
import { reloadCacheFromEnv, workerCacheConfig } from './reloadCache'
import { childProcessSpawner } from './transport'

const GROUP = 'demo-words'
const TEXT = 'The cat sat on the red chair. A dog ran to the river in the morning.'

let scratch: string
let manager: DeviceManager

const hardware: HardwareState = {
  cpu: {
    id: 'cpu',
    kind: 'cpu',
    name: cpus()[0]?.model ?? 'CPU',
    cores: cpus().length,
    memoryTotalBytes: totalmem(),
    memoryFreeBytes: freemem(),
    utilization: 0
  },
  gpus: [],
  onnxRuntimeVersion: '',
  providers: [{ provider: 'cpu', available: true }],
  appVersion: '',
  takenAt: Date.now()
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'talkative-reload-'))
  const library = new ModelLibrary({
    folder: join(scratch, 'models'),
    openBundle,
    ensureDemoBundle: () => ensureDemoBundle()
  })
  manager = new DeviceManager({
    hardware,
    library,
    spawn: childProcessSpawner(),
    devices: [{ id: 'cpu:0', threads: 1 }],
    reloadCache: { hostCacheBytes: 256 * 1024 ** 2, optimizedModelsDir: join(scratch, 'optimized') }
  })
  await manager.start()
})

afterAll(async () => {
  await manager?.dispose()
  await rm(scratch, { recursive: true, force: true })
})

async function analyse(): Promise<string> {
  const { jobId } = manager.submit(
    { kind: 'analyze', groupId: GROUP, text: TEXT, options: { bestOfK: 2 } },
    'test'
  )
  const s = await manager.waitFor(jobId)
  expect(s.status).toBe('done')
  return JSON.stringify(manager.result(jobId).rows)
}

describe('reload cache in the device manager', () => {
  it('unload keeps the group in the host cache; the reload uses it and analyses identically', async () => {
    await manager.load({ groupId: GROUP, deviceId: 'cpu:0' }, 'test')
    const first = await analyse()

    const [unloaded] = await manager.unload({ groupId: GROUP, deviceId: 'cpu:0' })
    let device = manager.devices()[0]!
    expect(device.placements).toEqual([])
    // What went into the cache counts as freed from the device (the cache has its own budget).
    // Whether the rest came back is the integration suite's check: on a 2 MB group it is within
    // allocator noise.
    const cachedBytes = device.lastUnload?.cachedBytes ?? 0
    expect(cachedBytes).toBeGreaterThan(1e6)
    expect(unloaded!.freedBytes).toBeGreaterThanOrEqual(cachedBytes)
    // The snapshot's cache view arrives with the worker's next answer.
    for (let i = 0; i < 100 && !device.hostCache?.groups.length; i++) {
      await new Promise((r) => setTimeout(r, 20))
      device = manager.devices()[0]!
    }
    expect(device.hostCache?.budgetBytes).toBe(256 * 1024 ** 2)
    expect(device.hostCache?.groups.map((g) => g.groupId)).toEqual([GROUP])

    const { placement } = await manager.load({ groupId: GROUP, deviceId: 'cpu:0' }, 'test')
    expect(placement?.state).toBe('ready')
    // The group's bytes moved back out of the cache: the measured figure still counts them.
    expect(placement?.measuredBytes ?? 0).toBeGreaterThan(1e6)
    expect(await analyse()).toBe(first)
    for (let i = 0; i < 100 && manager.devices()[0]!.hostCache?.groups.length; i++)
      await new Promise((r) => setTimeout(r, 20))
    expect(manager.devices()[0]!.hostCache?.groups).toEqual([])
  })
})

async function generate(): Promise<string[]> {
  const { jobId } = manager.submit(
    {
      kind: 'generate',
      groupId: GROUP,
      text: 'The cat sat',
      generate: { temperature: 0.8, seed: 3, maxNewTokens: 4, completions: 2 }
    },
    'test'
  )
  const s = await manager.waitFor(jobId)
  expect(s.status, s.error?.message).toBe('done')
  return manager.result(jobId).completions
}

describe('a load for an analysis opens the analysis roles first (engine/graph/roleSubset.ts)', () => {
  it('a generate after analyses works, and after the unload and an analysis-led reload again', async () => {
    await manager.unload({ groupId: GROUP, deviceId: 'cpu:0' })
    expect(manager.devices()[0]!.placements).toEqual([])
    // The analysis job loads the group (opensAnalysisRolesFirst('analyze')).
    const rows = await analyse()
    const completions = await generate()
    expect(completions).toHaveLength(2)
    // Analyses on the whole graph, after the switch, are the same rows.
    expect(await analyse()).toBe(rows)
    const [unloaded] = await manager.unload({ groupId: GROUP, deviceId: 'cpu:0' })
    expect(unloaded!.freedBytes).toBeGreaterThan(1e6)
    expect(await analyse()).toBe(rows)
    expect(await generate()).toEqual(completions)
    await manager.unload({ groupId: GROUP, deviceId: 'cpu:0' })
  })
})

describe('reload cache settings', () => {
  it('reads the environment and splits the host budget between workers', () => {
    expect(reloadCacheFromEnv({})).toEqual({})
    expect(
      reloadCacheFromEnv({ TALKATIVE_HOST_CACHE: '1GiB', TALKATIVE_OPTIMIZED_MODELS_DIR: 'off' })
    ).toEqual({ hostCacheBytes: 1024 ** 3, optimizedModelsDir: null })
    expect(() => reloadCacheFromEnv({ TALKATIVE_HOST_CACHE: 'lots' })).toThrow(
      /TALKATIVE_HOST_CACHE/
    )
    const split = workerCacheConfig({ hostCacheBytes: 1000, optimizedModelsDir: null }, 8e9, 4)
    expect(split).toEqual({ hostBytes: 250, optimizedDir: null })
    const byDefault = workerCacheConfig({}, 8e9, 2)
    expect(byDefault.hostBytes).toBe(500_000_000)
    expect(byDefault.optimizedDir).toMatch(/optimized-models$/)
  })
})
