/**
 * prepareTokenizer on its thread against the same call in-process: the same answer (with the
 * validation's view of tokenizer.json in place of the parsed file), the same CheckpointError for a
 * bad folder, and every way the thread can fail (a throw, an exit, no answer until cancelled, no
 * thread at all) as an error naming the folder's tokenizer file instead of a wait. Then the whole
 * import: a tokenizer that does not fit the model fails it with the tokenizer's error while the
 * weights were streaming, and leaves nothing behind.
 */
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeHfFolder } from '../../../../test/fixtures/hf/writeHfFolder'
import { randomHfModel } from '../../../../test/reference/hf/random'
import { CheckpointError } from '../errors'
import { openHfFolder, type HfFolder } from './folder'
import { importHfBase } from './importBase'
import { prepareTokenizer } from './tokenizerFiles'
import { prepareTokenizerInThread, tokenizerValidationView } from './tokenizerThread'

const DIMS = { hiddenSize: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, vocabSize: 151_936 }

let root: string
let folder: HfFolder
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-tokenizer-thread-'))
  const model = randomHfModel('qwen3', DIMS, { seed: 5 })
  const written = await writeHfFolder(path.join(root, 'qwen'), model, {
    dtype: 'BF16',
    tokenizer: 'qwen3',
    generationConfig: { eos_token_id: [151645, 151643] }
  })
  folder = await openHfFolder(written.dir)
}, 120_000)
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true })
})

const thrower = (code: string): { code: string; eval: true } => ({ code, eval: true })

describe('prepareTokenizerInThread', () => {
  it('answers as prepareTokenizer does in-process', async () => {
    const here = await prepareTokenizer(folder, DIMS.vocabSize)
    const there = await prepareTokenizerInThread(folder, DIMS.vocabSize)
    const { tokenizerParsed, tokenizerJson, ...rest } = here
    expect(there).toMatchObject(rest)
    expect(Buffer.compare(Buffer.from(there.tokenizerJson), Buffer.from(tokenizerJson))).toBe(0)
    expect(there.validationView).toEqual(tokenizerValidationView(tokenizerParsed))
    expect(there.validationView).toMatchObject({ model: { vocab: { max: 151642 } } })
  })

  it('rejects with the same CheckpointError for a tokenizer that does not fit the model', async () => {
    const here = await prepareTokenizer(folder, 1000).catch((e: unknown) => e)
    const there = await prepareTokenizerInThread(folder, 1000).catch((e: unknown) => e)
    expect(here).toBeInstanceOf(CheckpointError)
    expect(there).toBeInstanceOf(CheckpointError)
    expect(there).toMatchObject({
      problem: 'tokenizer_invalid',
      file: 'tokenizer.json',
      message: (here as Error).message
    })
  })

  const where = (): string => path.join(folder.dir, 'tokenizer.json')

  it('rejects naming the file when the thread throws, exits or cannot start', async () => {
    await expect(
      prepareTokenizerInThread(folder, 10, { entry: thrower(`throw new Error('boom')`) })
    ).rejects.toThrow(`${where()}: the tokenizer thread failed: boom`)
    await expect(
      prepareTokenizerInThread(folder, 10, { entry: thrower('process.exit(5)') })
    ).rejects.toThrow(`${where()}: the tokenizer thread stopped without an answer (exit code 5)`)
    await expect(
      prepareTokenizerInThread(folder, 10, {
        entry: { code: path.join(root, 'no-such-thread.js'), eval: false }
      })
    ).rejects.toThrow(where())
  })

  it('stops a thread that does not answer when cancelled', async () => {
    const stop = new AbortController()
    const silent = thrower(`require('node:worker_threads').parentPort.on('message', () => {})`)
    const run = prepareTokenizerInThread(folder, 10, { entry: silent, signal: stop.signal })
    setTimeout(() => stop.abort(), 50)
    await expect(run).rejects.toMatchObject({ problem: 'cancelled', file: 'tokenizer.json' })
  })
})

describe('tokenizerValidationView', () => {
  it('keeps the largest vocabulary id and the added tokens’ ids', () => {
    const json = {
      model: { type: 'BPE', vocab: { a: 0, b: 7, c: 3 }, merges: [['a', 'b']] },
      added_tokens: [
        { id: 8, content: '<x>', special: true },
        { id: 9, content: 'y', special: false }
      ],
      normalizer: null
    }
    expect(tokenizerValidationView(json)).toEqual({
      model: { vocab: { max: 7 } },
      added_tokens: [
        { id: 8, special: true },
        { id: 9, special: false }
      ]
    })
    expect(
      tokenizerValidationView({
        model: {
          vocab: [
            ['a', 0],
            ['b', 0]
          ]
        }
      })
    ).toEqual({
      model: { vocab: { max: 1 } }
    })
    // What the check refuses stays refused: no model object, no vocabulary.
    expect(tokenizerValidationView({ model: 'x' })).toEqual({ model: 'x' })
    expect(tokenizerValidationView({})).toEqual({ model: undefined })
    expect(tokenizerValidationView({ model: {} })).toEqual({ model: { vocab: {} } })
  })
})

describe('importHfBase with the tokenizer on its thread', () => {
  it('fails with the tokenizer’s error, not a cancellation, and leaves nothing', async () => {
    const small = randomHfModel('qwen3', { ...DIMS, vocabSize: 500 }, { seed: 6 })
    const written = await writeHfFolder(path.join(root, 'small'), small, {
      dtype: 'BF16',
      tokenizer: 'qwen3'
    })
    const parent = path.join(root, 'groups')
    await fs.mkdir(parent)
    const err = await importHfBase({ source: written.dir, out: path.join(parent, 'g') }).catch(
      (e: unknown) => e
    )
    expect(err).toBeInstanceOf(CheckpointError)
    expect(err).toMatchObject({ problem: 'tokenizer_invalid', file: 'tokenizer.json' })
    expect((err as Error).message).toMatch(/500 embedding rows/)
    expect(await fs.readdir(parent)).toEqual([])
  })
})
