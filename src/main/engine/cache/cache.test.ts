/**
 * The reload cache on the real demo group: a reload comes from host memory and analyses exactly
 * like a load without any cache; a saved optimized graph is reused by a fresh process-level cache;
 * a changed bundle never meets a stale entry; a damaged entry is rebuilt and an unwritable store
 * costs only the speed-up; the byte budget evicts least recently used groups.
 */
import { cp, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { onnx } from 'onnx-proto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDemoBundle, loadGroup, type LoadedGroup } from '../index'
import type { SessionTarget } from '../ort'
import { Session } from '../ort'
import { GroupCache, fingerprintFolder, type LoadCacheResult } from './index'

const TARGET: SessionTarget = { provider: 'cpu', threads: 1 }
const TEXT = 'The cat sat on the red chair. A lion ate cheese in the dark castle.'

let scratch: string
let bundleA: string
let bundleB: string
/** Rows of an analysis of the untouched demo group loaded without any cache. */
let plainRows: string

async function analyse(group: LoadedGroup): Promise<string> {
  const lensIds = group.summary.lenses.map((l) => l.id)
  const out: unknown[] = []
  for (const lensId of lensIds) {
    const r = await group.analyze({ lensId, text: TEXT, options: { bestOfK: 4, seed: 11 } })
    out.push(r.rows)
  }
  return JSON.stringify(out)
}

async function loadAndAnalyse(
  dir: string,
  cache?: GroupCache
): Promise<{ rows: string; result: LoadCacheResult | null; contentHash: string }> {
  let result: LoadCacheResult | null = null
  const g = await loadGroup(dir, TARGET, { cache, onCacheResult: (r) => (result = r) })
  try {
    return { rows: await analyse(g), result, contentHash: g.summary.contentHash }
  } finally {
    await g.dispose()
  }
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'talkative-cache-'))
  const demo = await ensureDemoBundle()
  bundleA = path.join(scratch, 'models', 'a')
  bundleB = path.join(scratch, 'models', 'b')
  await cp(demo, bundleA, { recursive: true })
  await cp(demo, bundleB, { recursive: true })
  plainRows = (await loadAndAnalyse(bundleA)).rows
})

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

describe('reload cache', () => {
  it('a reload comes from host memory and analyses bit-identically to an uncached load', async () => {
    const live = Session.liveCount
    const cache = new GroupCache({ hostBytes: 1 << 30, optimizedDir: path.join(scratch, 'opt1') })
    const first = await loadAndAnalyse(bundleA, cache)
    expect(first.result).toEqual({ hostHit: false, preOptimizedSessions: 0, savedOptimized: 1 })
    expect(first.rows).toBe(plainRows)
    const stats = cache.stats()
    expect(stats.groups.map((g) => g.groupId)).toEqual(['demo-words'])
    // Base model plus both lenses' projection and head.
    expect(stats.groups[0]!.models).toBe(5)
    expect(stats.bytes).toBeGreaterThan(1e6)

    const again = await loadAndAnalyse(bundleA, cache)
    expect(again.result?.hostHit).toBe(true)
    expect(again.result?.preOptimizedSessions).toBe(1)
    expect(again.rows).toBe(plainRows)
    expect(cache.stats().hits).toBe(1)
    // Back in the cache after the second unload, and every session released.
    expect(cache.stats().groups).toHaveLength(1)
    expect(Session.liveCount).toBe(live)
  })

  it('a fresh cache (a new worker) reads the saved optimized graphs from disk', async () => {
    const optimizedDir = path.join(scratch, 'opt2')
    await loadAndAnalyse(bundleA, new GroupCache({ hostBytes: 0, optimizedDir }))
    const fresh = new GroupCache({ hostBytes: 0, optimizedDir })
    const second = await loadAndAnalyse(bundleA, fresh)
    expect(second.result).toEqual({ hostHit: false, preOptimizedSessions: 1, savedOptimized: 0 })
    expect(second.rows).toBe(plainRows)
    // Budget 0 keeps nothing in memory.
    expect(fresh.stats().groups).toEqual([])
  })

  it('a damaged optimized graph on disk is rebuilt, and a store that cannot be written loads anyway', async () => {
    const optimizedDir = path.join(scratch, 'opt-damaged')
    await loadAndAnalyse(bundleA, new GroupCache({ hostBytes: 0, optimizedDir }))
    // One bit in the middle of every stored graph (the base's and the lens parts'; which file is
    // the base's depends on its key): ONNX Runtime alone opens such a file and runs what it reads.
    const names = (await readdir(optimizedDir)).filter((n) => n.endsWith('.ort'))
    expect(names.length).toBeGreaterThan(0)
    for (const name of names) {
      const file = path.join(optimizedDir, name)
      const bytes = await readFile(file)
      const at = bytes.byteLength >> 1
      bytes[at] = bytes[at]! ^ 0x10
      await writeFile(file, bytes)
    }
    const rebuilt = await loadAndAnalyse(bundleA, new GroupCache({ hostBytes: 0, optimizedDir }))
    expect(rebuilt.result).toEqual({ hostHit: false, preOptimizedSessions: 0, savedOptimized: 1 })
    expect(rebuilt.rows).toBe(plainRows)
    const reread = await loadAndAnalyse(bundleA, new GroupCache({ hostBytes: 0, optimizedDir }))
    expect(reread.result?.preOptimizedSessions).toBe(1)
    expect(reread.rows).toBe(plainRows)

    // The store's folder cannot be created (a file holds its name): the load works without it.
    const blocked = path.join(scratch, 'opt-is-a-file')
    await writeFile(blocked, 'not a folder')
    const unwritable = await loadAndAnalyse(
      bundleA,
      new GroupCache({ hostBytes: 0, optimizedDir: blocked })
    )
    expect(unwritable.result).toEqual({
      hostHit: false,
      preOptimizedSessions: 0,
      savedOptimized: 0
    })
    expect(unwritable.rows).toBe(plainRows)
  })

  it('a changed bundle never reads a stale entry', async () => {
    const dir = path.join(scratch, 'models', 'changed')
    await cp(bundleA, dir, { recursive: true })
    const cache = new GroupCache({ hostBytes: 1 << 30, optimizedDir: path.join(scratch, 'opt3') })
    const before = await loadAndAnalyse(dir, cache)
    expect(before.rows).toBe(plainRows)

    // Same bytes, new ctime: the host entry is dropped, but the content hash is unchanged, so the
    // optimized graph on disk is still the right one.
    const tokenizer = path.join(dir, 'tokenizer.json')
    const now = new Date()
    await utimes(tokenizer, now, now)
    const touched = await loadAndAnalyse(dir, cache)
    expect(touched.result?.hostHit).toBe(false)
    expect(touched.result?.preOptimizedSessions).toBe(1)
    expect(touched.contentHash).toBe(before.contentHash)
    expect(touched.rows).toBe(plainRows)

    // A new bias in the first lens's encoder head, a model whose optimized graph is cached: a new
    // content hash, and results equal to an uncached load of the changed folder.
    const headFile = path.join(dir, 'lenses', (await firstLensFolder(dir))!, 'encoder_head.onnx')
    const st = await stat(headFile)
    const model = onnx.ModelProto.decode(await readFile(headFile))
    const bias = model.graph!.initializer!.find((t) => t.name === 'head.bias')!
    const values = new Float32Array(new Uint8Array(bias.rawData!).buffer)
    for (let i = 0; i < values.length; i++) values[i] = values[i]! + 0.05
    bias.rawData = new Uint8Array(values.buffer)
    const bytes = onnx.ModelProto.encode(model).finish()
    expect(bytes.byteLength).toBe(st.size)
    await writeFile(headFile, bytes)
    // Even with the old modification time put back, the change is seen (ctime moved).
    await utimes(headFile, st.atime, st.mtime)
    const changed = await loadAndAnalyse(dir, cache)
    expect(changed.result?.hostHit).toBe(false)
    expect(changed.contentHash).not.toBe(before.contentHash)
    const uncached = await loadAndAnalyse(dir)
    expect(changed.rows).toBe(uncached.rows)
    expect(changed.rows).not.toBe(plainRows)
  })

  it('a load reuses an earlier validation of the folder only while none of its files changed', async () => {
    const dir = path.join(scratch, 'models', 'revalidated')
    await cp(bundleA, dir, { recursive: true })
    // No host cache: every load opens the bundle's files, as a replica after an unload does.
    const cache = new GroupCache({ hostBytes: 0, optimizedDir: null })
    const stagesOf = async (): Promise<{ stages: string[]; rows: string }> => {
      const stages: string[] = []
      const g = await loadGroup(dir, TARGET, { cache, onStage: (s) => stages.push(s) })
      try {
        return { stages, rows: await analyse(g) }
      } finally {
        await g.dispose()
      }
    }
    const first = await stagesOf()
    expect(first.stages).toContain('validating bundle')
    expect(first.rows).toBe(plainRows)
    const again = await stagesOf()
    expect(again.stages).toContain('reusing validated bundle')
    expect(again.stages).not.toContain('validating bundle')
    expect(again.rows).toBe(plainRows)

    // A lens tensor cut short, its modification time put back: validated again, and refused.
    const prefix = path.join(dir, 'lenses', (await firstLensFolder(dir))!, 'decoder_prefix.f32')
    const st = await stat(prefix)
    const bytes = await readFile(prefix)
    await writeFile(prefix, bytes.subarray(0, bytes.byteLength - 4))
    await utimes(prefix, st.atime, st.mtime)
    await expect(loadGroup(dir, TARGET, { cache })).rejects.toMatchObject({
      code: 'bundle_invalid'
    })
    // Put right again (new ctime): validated again, and loads.
    await writeFile(prefix, bytes)
    const repaired = await stagesOf()
    expect(repaired.stages).toContain('validating bundle')
    expect(repaired.rows).toBe(plainRows)
    expect(cache.validated.size).toBe(1)
  })

  it('the byte budget evicts the least recently used group', async () => {
    const probe = new GroupCache({ hostBytes: 1 << 30, optimizedDir: path.join(scratch, 'opt4') })
    await loadAndAnalyse(bundleA, probe)
    const oneGroup = probe.stats().bytes
    // Room for one group, not two.
    const cache = new GroupCache({
      hostBytes: Math.floor(oneGroup * 1.5),
      optimizedDir: path.join(scratch, 'opt4')
    })
    await loadAndAnalyse(bundleA, cache)
    expect(cache.stats().groups).toHaveLength(1)
    await loadAndAnalyse(bundleB, cache)
    const stats = cache.stats()
    expect(stats.evictions).toBe(1)
    expect(stats.groups).toHaveLength(1)
    expect(stats.bytes).toBeLessThanOrEqual(stats.budgetBytes)
    const a = await loadAndAnalyse(bundleA, cache)
    expect(a.result?.hostHit).toBe(false)
    expect(a.rows).toBe(plainRows)
    const b = await loadAndAnalyse(bundleA, cache)
    expect(b.result?.hostHit).toBe(true)

    // A budget smaller than one group keeps nothing.
    const tiny = new GroupCache({ hostBytes: 1024, optimizedDir: null })
    await loadAndAnalyse(bundleA, tiny)
    expect(tiny.stats().groups).toEqual([])
  })

  it('the folder fingerprint changes with the content, not only with size or mtime', async () => {
    const dir = path.join(scratch, 'fp')
    await cp(bundleA, dir, { recursive: true })
    const f = path.join(dir, 'tokenizer_config.json')
    const before = await fingerprintFolder(dir)
    expect(await fingerprintFolder(dir)).toBe(before)
    const st = await stat(f)
    const text = await readFile(f, 'utf8')
    await writeFile(f, text.replace(/"/, "'"))
    await utimes(f, st.atime, st.mtime)
    expect((await stat(f)).size).toBe(st.size)
    expect(await fingerprintFolder(dir)).not.toBe(before)
  })
})

async function firstLensFolder(dir: string): Promise<string | undefined> {
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as {
    lenses: string[]
  }
  return manifest.lenses[0]?.split('/').pop()
}
