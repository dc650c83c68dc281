/**
 * The import-job framework through ImportService's `imports:*` handlers, on real Hugging Face
 * folders: a job answers at once, reports progress through `imports:changed`, ends `done` with the
 * group's summary (and the library is told), or `failed` with the checkpoint error as data, or
 * `cancelled` — and a failed or cancelled job leaves nothing in the models folder.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { ImportJob } from '@shared/domain/imports'
import { AppError } from '@shared/ipc/errors'
import { ImportService } from '../../src/main/import/service'
import { BAD_CHECKPOINTS } from '../fixtures/hf/badCheckpoints'
import { byteTokenizer } from '../fixtures/hf/byteTokenizer'
import { writeHfFolder } from '../fixtures/hf/writeHfFolder'
import { randomHfModel } from '../reference/hf/random'

const tok = byteTokenizer({ specials: ['<|endoftext|>'], eos: '<|endoftext|>' })
const files = { 'tokenizer.json': tok.tokenizerJson, 'tokenizer_config.json': tok.tokenizerConfig }

const roots: string[] = []
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true })
})

async function setup(): Promise<{
  root: string
  models: string
  service: ImportService
  events: ImportJob[]
  imported: ImportJob[]
}> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tw-import-service-'))
  roots.push(root)
  const models = path.join(root, 'models')
  await mkdir(models)
  const events: ImportJob[] = []
  const imported: ImportJob[] = []
  const service = new ImportService({
    modelsDir: models,
    emit: (job) => events.push(job),
    imported: async (job) => {
      imported.push(job)
    }
  })
  return { root, models, service, events, imported }
}

const model = randomHfModel(
  'qwen3',
  { hiddenSize: 32, layers: 4, heads: 4, kvHeads: 2, headDim: 8, vocabSize: tok.size },
  { seed: 3 }
)

describe('ImportService', () => {
  it('imports a folder as a job: running → progress → done, the library told', async () => {
    const { root, models, service, events, imported } = await setup()
    const folder = await writeHfFolder(path.join(root, 'hf'), model, {
      shards: 2,
      layout: 'hf-cache',
      repoId: 'acme/tiny-qwen',
      extraFiles: files
    })
    const h = service.handlers()
    const ctx = { clientId: 'test' }
    const job = await Promise.resolve(h['imports:base']({ source: folder.repoDir! }, ctx))
    expect(job).toMatchObject({ kind: 'base', status: 'running', folder: 'acme--tiny-qwen' })
    const done = await service.jobs.settled(job.id)
    expect(done.status, JSON.stringify(done.error)).toBe('done')
    expect(done.result).toMatchObject({
      groupId: 'acme--tiny-qwen',
      name: 'acme/tiny-qwen',
      modelType: 'qwen3',
      checkpointDtype: 'F32',
      graphDtype: 'float32'
    })
    expect(done.result!.parameters).toBeGreaterThan(0)
    const progress = events.filter((e) => e.id === job.id && e.progress)
    expect(progress.at(-1)!.progress!.bytesDone).toBe(progress.at(-1)!.progress!.bytesTotal)
    expect(progress.at(-1)!.progress!.tensorsDone).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 50))
    expect(imported.map((j) => j.id)).toEqual([job.id])
    expect(await readdir(models)).toEqual(['acme--tiny-qwen'])
    expect(h['imports:list'](undefined, ctx)).toMatchObject([{ id: job.id, status: 'done' }])

    // The same folder again is refused before a job starts, naming the field.
    const again = await Promise.resolve(h['imports:base']({ source: folder.repoDir! }, ctx)).catch(
      (e: unknown) => e
    )
    expect(again).toBeInstanceOf(AppError)
    expect((again as AppError).field).toBe('folder')
    await service.dispose()
  })

  it('a bad checkpoint fails the job with the error as data, nothing written', async () => {
    const { root, models, service } = await setup()
    const { folder } = await BAD_CHECKPOINTS.missingShard!(path.join(root, 'hf'), model)
    const h = service.handlers()
    const ctx = { clientId: 'test' }
    const job = await Promise.resolve(
      h['imports:base']({ source: folder.dir, folder: 'broken' }, ctx)
    )
    const done = await service.jobs.settled(job.id)
    expect(done.status).toBe('failed')
    expect(done.error).toMatchObject({ code: 'bundle_invalid' })
    expect(done.error!.message).toMatch(/model-0000\d-of-00003\.safetensors/)
    expect(await readdir(models)).toEqual([])
    await service.dispose()
  })

  it('cancel stops the job and leaves nothing behind', async () => {
    const { root, models, service } = await setup()
    const folder = await writeHfFolder(path.join(root, 'hf'), model, { extraFiles: files })
    const h = service.handlers()
    const ctx = { clientId: 'test' }
    const job = await Promise.resolve(
      h['imports:base']({ source: folder.dir, folder: 'cancelled' }, ctx)
    )
    expect((await h['imports:cancel']({ importId: job.id }, ctx)).id).toBe(job.id)
    const done = await service.jobs.settled(job.id)
    expect(done.status).toBe('cancelled')
    expect(await readdir(models)).toEqual([])
    await service.dispose()
  })

  it('refuses a relative or missing source, and an unknown import id, naming the field', async () => {
    const { root, service } = await setup()
    const h = service.handlers()
    const ctx = { clientId: 'test' }
    for (const source of ['relative/path', path.join(root, 'nowhere')]) {
      const err = await Promise.resolve(h['imports:base']({ source }, ctx)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(AppError)
      expect((err as AppError).field).toBe('source')
    }
    expect(() => h['imports:cancel']({ importId: 'import-none' }, ctx)).toThrow(/no import/)
    await service.dispose()
  })
})
