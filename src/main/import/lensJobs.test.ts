import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ImportJob, ImportProgress } from '@shared/domain/imports'
import { AppError } from '@shared/ipc/errors'
import { randomHfModel } from '../../../test/reference/hf/random'
import { writeHfGroup } from '../../../test/fixtures/lens/hfGroup'
import { lensProgressReporter } from './lens'
import { ImportService } from './service'

// `imports:lens` before any work starts: only groups inside the models folder, only absolute
// paths that exist; and a lens import's progress in the shape every import job reports. The
// import itself runs end to end in test/import/lens-e2e.test.ts.
let tmp: string
let modelsDir: string
let service: ImportService
const events: ImportJob[] = []
const rescans: ImportJob[] = []
const CHECKPOINT = path.resolve(__dirname, '../../../test/fixtures/lens-checkpoints/e2e/gpt2.pt')

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-lens-jobs-'))
  modelsDir = path.join(tmp, 'models')
  await fs.mkdir(path.join(modelsDir, 'empty'), { recursive: true })
  await fs.mkdir(path.join(tmp, 'elsewhere'))
  await fs.writeFile(path.join(tmp, 'elsewhere', 'manifest.json'), '{}')
  await fs.symlink(path.join(tmp, 'elsewhere'), path.join(modelsDir, 'escape'))
  service = new ImportService({
    modelsDir,
    emit: (j) => events.push(j),
    imported: async (j) => void rescans.push(j)
  })
  // A group whose base is shaped as gpt2.pt's training config names it.
  await writeHfGroup(
    path.join(modelsDir, 'gpt2'),
    randomHfModel('gpt2', { hiddenSize: 16, layers: 4, heads: 4, vocabSize: 64 }, { seed: 5 }),
    { groupId: 'gpt2-group', baseName: 'openai-community/gpt2' }
  )
})
afterAll(async () => {
  await service?.dispose()
  await fs.rm(tmp, { recursive: true, force: true })
})

async function refusal(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e
  )
  expect(err).toBeInstanceOf(AppError)
  return err as AppError
}

describe('imports:lens requests', () => {
  it('refuses a group folder the models folder does not hold, or one resolving outside it', async () => {
    for (const folder of ['absent', 'escape']) {
      const err = await refusal(service.importLens({ checkpoint: CHECKPOINT, folder }))
      expect(err.code).toBe('not_found')
      expect(err.field).toBe('folder')
    }
    expect(
      (await refusal(service.importLens({ checkpoint: CHECKPOINT, folder: '../models' }))).field
    ).toBe('folder')
  })

  it('refuses relative or missing checkpoint and orig paths, naming the field', async () => {
    const relative = await refusal(service.importLens({ checkpoint: 'gpt2.pt', folder: 'empty' }))
    expect(relative).toMatchObject({ code: 'invalid_input', field: 'checkpoint' })
    const missing = await refusal(
      service.importLens({ checkpoint: path.join(tmp, 'none.pt'), folder: 'empty' })
    )
    expect(missing).toMatchObject({ code: 'invalid_input', field: 'checkpoint' })
    const orig = await refusal(
      service.importLens({ checkpoint: CHECKPOINT, folder: 'empty', orig: path.join(tmp, 'x') })
    )
    expect(orig).toMatchObject({ code: 'invalid_input', field: 'orig' })
  })

  it('a folder without a manifest is a bad group, named before any job starts', async () => {
    const err = await refusal(service.importLens({ checkpoint: CHECKPOINT, folder: 'empty' }))
    expect(err.code).toBe('bundle_invalid')
    expect(err.message).toContain('manifest.json')
    expect(events).toEqual([])
  })
})

describe('imports:lens jobs', () => {
  it('a cancelled import leaves the group as it was', async () => {
    const dir = path.join(modelsDir, 'gpt2')
    const before = await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')
    const job = await service.importLens({ checkpoint: CHECKPOINT, folder: 'gpt2' })
    service.jobs.cancel(job.id)
    const done = await service.jobs.settled(job.id)
    expect(done.status).toBe('cancelled')
    expect(done.lens).toBeNull()
    expect(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')).toBe(before)
    expect((await fs.readdir(dir)).sort()).toEqual(
      [
        'base.onnx',
        'base.onnx.data',
        'manifest.json',
        'tokenizer.json',
        'tokenizer_config.json'
      ].sort()
    )
  })

  it('a finished import says what it added, and the library is told', async () => {
    const h = service.handlers()
    const job = await Promise.resolve(
      h['imports:lens']({ checkpoint: CHECKPOINT, folder: 'gpt2', id: 'l2' }, { clientId: 'test' })
    )
    expect(job).toMatchObject({ kind: 'lens', status: 'running', groupId: 'gpt2-group' })
    const done = await service.jobs.settled(job.id)
    expect(done.error).toBeNull()
    expect(done.lens).toMatchObject({ lensId: 'l2', layer: 2, explanationTokens: 4, orig: 'base' })
    await expect.poll(() => rescans.map((j) => j.id)).toEqual([job.id])
    const manifest = JSON.parse(
      await fs.readFile(path.join(modelsDir, 'gpt2', 'manifest.json'), 'utf8')
    ) as { lenses: string[] }
    expect(manifest.lenses).toEqual(['lenses/l2'])
  })
})

describe('lens import progress', () => {
  it('reports checkpoint bytes with a rate while reading, donor weights as tensors', () => {
    const seen: ImportProgress[] = []
    let t = 1000
    const report = lensProgressReporter(
      (p) => seen.push(p),
      () => t
    )
    report({ stage: 'find', message: 'looking for the checkpoint' })
    report({ stage: 'read', done: 0, total: 4e6, message: 'reading data.pkl' })
    t += 1000
    report({ stage: 'read', done: 2e6, total: 4e6, message: 'reading models.dec.proj.weight' })
    report({ stage: 'donor', done: 3, total: 10, message: 'donor it: weight 3 of 10' })
    expect(seen.map((p) => p.stage)).toEqual([
      'looking for the checkpoint',
      'reading data.pkl',
      'reading models.dec.proj.weight',
      'donor it: weight 3 of 10'
    ])
    expect(seen[2]).toMatchObject({
      bytesDone: 2e6,
      bytesTotal: 4e6,
      mbPerSecond: 2,
      etaSeconds: 1
    })
    expect(seen[3]).toMatchObject({ tensorsDone: 3, tensorsTotal: 10, bytesDone: 2e6 })
  })
})
