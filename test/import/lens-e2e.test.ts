/**
 * End to end, as a researcher does it in the app: a Hugging Face folder (the cache layout, named
 * as the training config's `model_name`) imported as a group (`imports:base`'s service), then a
 * real `torch.save` lens checkpoint imported into it (`imports:lens`: a job with progress, the
 * `-it` donor from `--orig` where the lens was trained on one), analysed by the engine at
 * temperature 0 and compared column by column with the float64 reference of the predecessor's
 * analyzer on the same weights — the lens read from the fixture's expected.json (what torch held),
 * not through our reader. One checkpoint per family convention (GPT-2, Qwen2 in float16,
 * Gemma-2 and Gemma-3 in bfloat16); Gemma-3 with its real tokenizer and chat template, for a
 * chat-formatted prompt and for generation too.
 */
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ImportJob, ImportProgress } from '@shared/domain/imports'
import {
  ChatTemplate,
  loadGroup,
  loadTokenizerConfig,
  type LoadedGroup
} from '../../src/main/engine'
import { ImportService } from '../../src/main/import/service'
import { lensReference } from '../reference/hf/lens'
import { hfReference, type HfReferenceModel } from '../reference/hf/model'
import { randomHfModel, type HfDims } from '../reference/hf/random'
import type { HfFamily } from '../reference/hf/types'
import { wordLevelTokenizer } from '../../src/main/engine/demo/tokenizer'
import { writeHfFolder } from '../fixtures/hf/writeHfFolder'
import { expectRowsMatch } from '../fixtures/lens/compare'
import { readExpectedCheckpoints, seedLensOf } from '../fixtures/lens/expectedLens'
import { WORD_SPECIALS, wordToken } from '../fixtures/lens/hfGroup'

const FIXTURES = path.resolve(__dirname, '../fixtures/lens-checkpoints/e2e')
const expected = readExpectedCheckpoints(path.join(FIXTURES, 'expected.json'))

interface Case {
  file: string
  family: HfFamily
  dims: HfDims
  seed: number
  tokenizer: 'words' | 'gemma3'
  text: string
}

const WORDS_TEXT = 'w3 w10 w7 w22 w15 w40 w2'
const CASES: Case[] = [
  {
    file: 'gpt2.pt',
    family: 'gpt2',
    dims: { hiddenSize: 16, layers: 4, heads: 4, vocabSize: 64 },
    seed: 81,
    tokenizer: 'words',
    text: WORDS_TEXT
  },
  {
    file: 'qwen.pt',
    family: 'qwen2',
    dims: { hiddenSize: 32, layers: 6, heads: 4, kvHeads: 2, vocabSize: 64 },
    seed: 82,
    tokenizer: 'words',
    text: WORDS_TEXT
  },
  {
    file: 'gemma2.pt',
    family: 'gemma2',
    dims: { hiddenSize: 24, layers: 4, heads: 4, kvHeads: 2, headDim: 6, vocabSize: 64 },
    seed: 84,
    tokenizer: 'words',
    text: WORDS_TEXT
  },
  {
    file: 'gemma3.pt',
    family: 'gemma3_text',
    dims: { hiddenSize: 32, layers: 6, heads: 4, kvHeads: 2, headDim: 8, vocabSize: 262144 },
    seed: 84,
    tokenizer: 'gemma3',
    text: 'A short test of the lens.'
  }
]

let tmp: string
let modelsDir: string
let service: ImportService
const events: ImportJob[] = []
const loaded: LoadedGroup[] = []

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-lens-e2e-'))
  modelsDir = path.join(tmp, 'models')
  await fs.mkdir(modelsDir)
  service = new ImportService({
    modelsDir,
    emit: (job) => events.push(job),
    imported: async () => {}
  })
})
afterAll(async () => {
  await service?.dispose()
  for (const g of loaded) await g.dispose()
  await fs.rm(tmp, { recursive: true, force: true })
})

/** The word-level tokenizer over the model's vocabulary, as Hugging Face files. */
function wordFiles(vocabSize: number): Record<string, string> {
  const words = Array.from({ length: vocabSize - WORD_SPECIALS.length }, (_, k) => `w${k}`)
  const files = wordLevelTokenizer([...WORD_SPECIALS], words)
  return {
    'tokenizer.json': JSON.stringify(files.tokenizer),
    'tokenizer_config.json': JSON.stringify(files.tokenizerConfig)
  }
}

async function writeModel(
  c: Case,
  repoId: string,
  seed: number
): Promise<{
  dir: string
  ref: HfReferenceModel
}> {
  const model = randomHfModel(c.family, c.dims, { seed })
  const written = await writeHfFolder(path.join(tmp, 'hf', repoId.replace('/', '__')), model, {
    layout: 'hf-cache',
    repoId,
    ...(c.tokenizer === 'gemma3'
      ? { tokenizer: 'gemma3' as const }
      : { extraFiles: wordFiles(c.dims.vocabSize) })
  })
  return { dir: written.dir, ref: hfReference(model.config, model.tensors) }
}

async function finished(job: ImportJob): Promise<ImportJob> {
  const done = await service.jobs.settled(job.id)
  if (done.status !== 'done') {
    throw new Error(`${job.kind} import ${done.status}: ${done.error?.message ?? ''}`)
  }
  return done
}

describe.each(CASES)('$file: imported with its base, analysed as the predecessor did', (c) => {
  const want = expected[c.file]!
  const lens = seedLensOf(want)
  let group: LoadedGroup
  let baseRef: HfReferenceModel
  let origRef: HfReferenceModel
  let tokenText: (id: number) => string = wordToken
  const folder = c.file.replace('.pt', '')

  beforeAll(async () => {
    const base = await writeModel(c, want.config.modelName, c.seed)
    baseRef = base.ref
    origRef = base.ref
    let orig: string | undefined
    if (want.config.origModelName && want.config.origModelName !== want.config.modelName) {
      const donor = await writeModel(c, want.config.origModelName, c.seed + 100)
      orig = donor.dir
      origRef = donor.ref
    }
    await finished(await service.importBase({ source: base.dir, folder }))

    const job = await service.importLens({
      checkpoint: path.join(FIXTURES, c.file),
      folder,
      id: 'trained',
      ...(orig ? { orig } : {})
    })
    expect(job.kind).toBe('lens')
    const done = await finished(job)
    expect(done.lens).toMatchObject({
      lensId: 'trained',
      layer: want.config.layer,
      explanationTokens: want.config.explanationTokens,
      step: want.step,
      modelName: want.config.modelName,
      orig: orig ? expect.stringMatching(/it$/) : 'base'
    })
    // Progress came as bytes of the checkpoint read.
    const reads = events
      .filter((e) => e.id === job.id && e.progress?.stage.startsWith('reading'))
      .map((e) => e.progress as ImportProgress)
    expect(reads.length).toBeGreaterThan(0)
    expect(reads.at(-1)!.bytesTotal).toBeGreaterThan(0)

    group = await loadGroup(path.join(modelsDir, folder), { provider: 'cpu', threads: 1 })
    loaded.push(group)
    if (c.tokenizer === 'gemma3') tokenText = await hfTokenText(path.join(modelsDir, folder))
  }, 600_000)

  const compare = async (text: string, inputIds: number[]): Promise<void> => {
    const manifest = JSON.parse(
      await fs.readFile(path.join(modelsDir, folder, 'manifest.json'), 'utf8')
    ) as { conventions: { nullTokenId: number } }
    const result = await group.analyze({
      lensId: 'trained',
      text,
      options: { temperature: 0, bestOfK: 1, logitLens: true, salience: true, kl: true }
    })
    expect(result.metadata.status).toBe('completed')
    const reference = lensReference({
      base: baseRef,
      orig: origRef,
      lens,
      inputIds,
      nullTokenId: manifest.conventions.nullTokenId,
      logitLensFinalNorm: true,
      currentTokenBeforeSuffix: true
    })
    const { tokens } = group.tokenize(text)
    expectRowsMatch(result.rows, reference, {
      token: tokenText,
      currentToken: (position) => tokens[position]!,
      addCurrentToken: lens.encoder.addCurrentToken
    })
  }

  it('analyses a text: every column matches the reference', async () => {
    const { ids } = group.tokenize(c.text)
    if (c.tokenizer === 'words') expect(ids[0]).toBe(1)
    await compare(c.text, ids)
  }, 300_000)

  // Only the Gemma-3 case has a real tokenizer with a chat template (the others are word-level).
  if (c.tokenizer !== 'gemma3') return
  it('a chat-formatted prompt (the real Gemma-3 template) and a greedy continuation match too', async () => {
    const template = ChatTemplate.fromSpecials(
      await loadTokenizerConfig(path.join(modelsDir, folder))
    )
    const messages = [
      { role: 'user' as const, content: 'What does the lens say?' },
      { role: 'assistant' as const, content: 'Ask it.' }
    ]
    const chat = template.render(messages)
    const { ids } = group.tokenize(chat.text)
    // The template writes <bos> itself: the double-BOS rule leaves one.
    expect(ids.filter((id) => id === 2).length).toBe(1)
    await compare(chat.text, ids)

    const generated = await group.generate({
      lensId: 'trained',
      messages: [{ role: 'user', content: 'What does the lens say?' }],
      options: { temperature: 0, maxNewTokens: 6 }
    })
    const completion = generated.completions[0]!
    const greedy = origRef.greedy(generated.promptIds, 6)
    expect(generated.metadata.origModel).not.toBe('base')
    expect(completion.tokenIds).toEqual(greedy.tokens)
  }, 300_000)
})

/** One token id's text as the group's tokenizer.json decodes it, special tokens kept. */
async function hfTokenText(groupDir: string): Promise<(id: number) => string> {
  const read = async (f: string): Promise<Record<string, unknown>> =>
    JSON.parse(await fs.readFile(path.join(groupDir, f), 'utf8')) as Record<string, unknown>
  const tok = new Tokenizer(await read('tokenizer.json'), await read('tokenizer_config.json'))
  return (id) => tok.decode([id], { skip_special_tokens: false })
}
