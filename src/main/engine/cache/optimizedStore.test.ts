/**
 * The optimized-graph store's own rules, on plain bytes: a committed entry is read back exactly;
 * another bundle, model, target or set of session options never reads it; a damaged, torn or
 * unsealed entry is removed and reported as a miss; a write that fails publishes nothing and
 * leaves no temporary file. (cache.test.ts runs the same paths through a real load.)
 */
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { SessionTarget } from '../ort'
import { OptimizedModelStore, sealOf, unseal, type OptimizedModel } from './optimizedStore'

/** Set to change the session options the engine would create sessions with. */
const optionsChange = vi.hoisted(() => ({ level: null as 'basic' | null }))
vi.mock('../ort', async (importOriginal) => {
  const real = await importOriginal<typeof import('../ort')>()
  return {
    ...real,
    sessionOptions: (target: SessionTarget) => ({
      ...real.sessionOptions(target),
      ...(optionsChange.level ? { graphOptimizationLevel: optionsChange.level } : {})
    })
  }
})

const TARGET: SessionTarget = { provider: 'cpu', threads: 1 }
const HASH = 'a'.repeat(64)
const GRAPH = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)

let scratch: string
let dir: string
let store: OptimizedModelStore

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'talkative-optimized-store-'))
})
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})
beforeEach(async () => {
  optionsChange.level = null
  dir = await mkdtemp(path.join(scratch, 'store-'))
  store = new OptimizedModelStore({ dir })
})

function expectMiss(
  entry: OptimizedModel
): asserts entry is Extract<OptimizedModel, { kind: 'miss' }> {
  expect(entry.kind).toBe('miss')
}

/** Stores GRAPH the way a load does: ONNX Runtime writes the temporary file, then the commit. */
async function put(modelRel = 'base.onnx', target = TARGET): Promise<string> {
  const entry = await store.open(HASH, modelRel, target)
  expectMiss(entry)
  await writeFile(entry.saveTo, GRAPH)
  await entry.commit()
  return store.fileFor(store.keyFor(HASH, modelRel, target))
}

describe('optimized-graph store', () => {
  it('reads a committed graph back exactly, as a view without the seal', async () => {
    const file = await put()
    const entry = await store.open(HASH, 'base.onnx', TARGET)
    expect(entry.kind).toBe('hit')
    if (entry.kind !== 'hit') return
    expect(Buffer.from(entry.bytes).equals(Buffer.from(GRAPH))).toBe(true)
    expect(entry.file).toBe(file)
    const onDisk = await readFile(file)
    expect(onDisk.byteLength).toBe(GRAPH.byteLength + sealOf(GRAPH).byteLength)
    expect(await readdir(dir)).toEqual([path.basename(file)])
  })

  it('another bundle, model, target or set of session options is a different entry', async () => {
    await put()
    expectMiss(await store.open('b'.repeat(64), 'base.onnx', TARGET))
    expectMiss(await store.open(HASH, 'base.onnx#analysis', TARGET))
    expectMiss(await store.open(HASH, 'base.onnx', { provider: 'cpu', threads: 2 }))
    optionsChange.level = 'basic'
    const changed = await store.open(HASH, 'base.onnx', TARGET)
    expectMiss(changed)
    await changed.abandon()
    optionsChange.level = null
    expect((await store.open(HASH, 'base.onnx', TARGET)).kind).toBe('hit')
  })

  it('removes a damaged, torn or unsealed entry and reports a miss', async () => {
    const damage: Record<string, (file: string) => Promise<void>> = {
      'one byte of the graph changed': async (file) => {
        const bytes = await readFile(file)
        bytes[1000] = bytes[1000]! ^ 0x01
        await writeFile(file, bytes)
      },
      'torn (its end lost)': (file) => truncate(file, GRAPH.byteLength + 10),
      'no seal (the graph alone)': (file) => writeFile(file, GRAPH),
      empty: (file) => writeFile(file, new Uint8Array(0))
    }
    for (const [what, spoil] of Object.entries(damage)) {
      const file = await put()
      await spoil(file)
      const entry = await store.open(HASH, 'base.onnx', TARGET)
      expect(entry.kind, what).toBe('miss')
      expect(
        (await readdir(dir)).filter((n) => !n.startsWith('.tmp-')),
        what
      ).toEqual([])
      if (entry.kind === 'miss') await entry.abandon()
    }
  })

  it('unseal accepts only a graph followed by its own seal', () => {
    const sealed = Buffer.concat([GRAPH, sealOf(GRAPH)])
    expect(unseal(sealed)?.byteLength).toBe(GRAPH.byteLength)
    expect(unseal(sealOf(GRAPH))).toBeNull()
    expect(unseal(Buffer.concat([GRAPH.subarray(1), sealOf(GRAPH)]))).toBeNull()
  })

  it('a write that fails publishes nothing and leaves no temporary file', async () => {
    // ONNX Runtime wrote nothing (a provider that cannot save): the commit fails.
    const unsaved = await store.open(HASH, 'base.onnx', TARGET)
    expectMiss(unsaved)
    await expect(unsaved.commit()).rejects.toThrow()
    await unsaved.abandon()
    expect(await readdir(dir)).toEqual([])

    // The entry's name is taken by a folder (as a full or read-only disk fails the rename).
    const file = store.fileFor(store.keyFor(HASH, 'base.onnx', TARGET))
    await mkdir(path.join(file, 'in-the-way'), { recursive: true })
    const blocked = await store.open(HASH, 'base.onnx', TARGET)
    expectMiss(blocked)
    await writeFile(blocked.saveTo, GRAPH)
    await expect(blocked.commit()).rejects.toThrow()
    await blocked.abandon()
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([])

    // A store folder that cannot be created fails the open, which a load treats as no store.
    const notAFolder = path.join(scratch, 'a-file')
    await writeFile(notAFolder, 'x')
    const nowhere = new OptimizedModelStore({ dir: path.join(notAFolder, 'store') })
    await expect(nowhere.open(HASH, 'base.onnx', TARGET)).rejects.toThrow()
  })
})
