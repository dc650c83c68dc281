/**
 * The importer's tokenizer lookup for BPE files (bpeLookup: ids and texts from the file, " "
 * encoded by a tokenizer cut to the characters it can become) answers exactly as the whole
 * tokenizer does (fullLookup), for the real Gemma-3 and Qwen3 files and for small files whose
 * " " goes through a merge, a Metaspace prefix, byte fallback or the unknown token.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { bpeLookup, fullLookup } from '../../src/main/import/hf/tokenizerFiles'
import { tokenizerFile, type FixtureTokenizer } from '../fixtures/hf/writeHfFolder'

type Json = Record<string, unknown>

function real(which: FixtureTokenizer): { json: Json; config: Json } {
  const read = (f: 'tokenizer.json' | 'tokenizer_config.json'): Json =>
    JSON.parse(readFileSync(tokenizerFile(which, f), 'utf8')) as Json
  return { json: read('tokenizer.json'), config: read('tokenizer_config.json') }
}

/** A SentencePiece-style BPE file (as Llama's and Gemma's are converted). */
function sentencePiece(options: {
  vocab: string[]
  merges: [string, string][]
  normalizer?: Json | null
  preTokenizer?: Json | null
  byteFallback?: boolean
  unk?: string
}): { json: Json; config: Json } {
  const vocab: Record<string, number> = {}
  options.vocab.forEach((t, i) => (vocab[t] = i))
  const json: Json = {
    version: '1.0',
    added_tokens: [
      {
        id: 0,
        content: '<unk>',
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false
      },
      {
        id: 1,
        content: '<s>',
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false
      },
      {
        id: 2,
        content: '</s>',
        special: true,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false
      }
    ],
    normalizer:
      options.normalizer === undefined
        ? {
            type: 'Sequence',
            normalizers: [
              { type: 'Prepend', prepend: '▁' },
              { type: 'Replace', pattern: { String: ' ' }, content: '▁' }
            ]
          }
        : options.normalizer,
    pre_tokenizer: options.preTokenizer ?? null,
    post_processor: null,
    decoder: null,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: options.unk ?? '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: options.byteFallback ?? false,
      ignore_merges: false,
      vocab,
      merges: options.merges
    }
  }
  return { json, config: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' } }
}

const BYTES = Array.from(
  { length: 256 },
  (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`
)

/** `space`: what the whole tokenizer makes of " " (so each case takes the path it names). */
const CASES: { name: string; file: () => { json: Json; config: Json }; space?: number[] }[] = [
  { name: 'real Gemma-3', file: () => real('gemma3'), space: [236_743] },
  { name: 'real Qwen3', file: () => real('qwen3'), space: [220] },
  {
    name: 'prepended and replaced "▁▁" through a merge (Llama-2 style)',
    file: () =>
      sentencePiece({
        vocab: ['<unk>', '<s>', '</s>', '▁', '▁▁', 'a', '▁a', 'aa'],
        merges: [
          ['▁', 'a'],
          ['a', 'a'],
          ['▁', '▁']
        ]
      }),
    space: [4]
  },
  {
    name: 'Metaspace pre-tokeniser, no normaliser',
    file: () =>
      sentencePiece({
        vocab: ['<unk>', '<s>', '</s>', '▁', '▁▁', 'b'],
        merges: [['▁', '▁']],
        normalizer: null,
        preTokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false }
      }),
    // " " → "▁", which already starts with the replacement: nothing is prepended.
    space: [3]
  },
  {
    name: 'byte fallback (no "▁" in the vocabulary)',
    file: () =>
      sentencePiece({
        vocab: ['<unk>', '<s>', '</s>', 'x', ...BYTES],
        merges: [],
        byteFallback: true
      }),
    // "▁▁" as the bytes of "▁" (E2 96 81) twice; the bytes' ids start at 4.
    space: [0xe2, 0x96, 0x81, 0xe2, 0x96, 0x81].map((b) => 4 + b)
  },
  {
    name: 'the unknown token',
    file: () => sentencePiece({ vocab: ['<unk>', '<s>', '</s>', 'x'], merges: [] })
  }
]

describe('bpeLookup answers as the whole tokenizer', () => {
  it.each(CASES)('$name', ({ file, space }) => {
    const { json, config } = file()
    const ids = [0, 1, 2, 3, 4, 5, 106, 151_643, 151_645, 999_999]
    const fast = bpeLookup(json, config, [' '], ids)
    expect(fast).not.toBeNull()
    const full = fullLookup(json, config)
    if (space) expect(full.encode(' ')).toEqual(space)
    expect(fast!.maxVocabId).toBe(full.maxVocabId)
    expect(fast!.encode(' ')).toEqual(full.encode(' '))
    expect(fast!.encode(' ').length).toBeGreaterThan(0)
    for (const id of ids) expect(fast!.textOf(id)).toBe(full.textOf(id))
    for (const text of [
      '<s>',
      '</s>',
      '<bos>',
      '<eos>',
      '<end_of_turn>',
      '<|im_end|>',
      '<|endoftext|>',
      '▁',
      ' ',
      'absent'
    ])
      expect(fast!.idOf(text)).toBe(full.idOf(text))
  })

  it('is not used for a model other than BPE', () => {
    const { json, config } = sentencePiece({ vocab: ['<unk>', '<s>', '</s>'], merges: [] })
    const unigram = { ...json, model: { type: 'Unigram', unk_id: 0, vocab: [['<unk>', 0]] } }
    expect(bpeLookup(unigram, config, [' '], [])).toBeNull()
  })
})
