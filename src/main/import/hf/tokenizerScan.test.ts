/**
 * The walk of a large BPE `tokenizer.json` (tokenizerScan.ts) against JSON.parse and the parsed
 * path: it accepts exactly the JSON that JSON.parse accepts (else null, and the import parses the
 * whole file with JSON.parse's own error), and prepareTokenizer answers the same walked or parsed,
 * for the real Gemma-3 and Qwen3 files and for small files with escaped keys, string merges, the
 * unknown and byte-fallback tokens, a repeated key, and added tokens past the model.
 */
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeHfFolder, type FixtureTokenizer } from '../../../../test/fixtures/hf/writeHfFolder'
import { randomHfModel } from '../../../../test/reference/hf/random'
import { openHfFolder, type HfFolder } from './folder'
import { prepareTokenizer, type PreparedTokenizer } from './tokenizerFiles'
import { scanTokenizerJson } from './tokenizerScan'
import { tokenizerValidationView } from './tokenizerThread'

type Json = Record<string, unknown>

/** A BPE file as text with `value` placed in a vocabulary value, a merge, and a top-level field. */
const placements = (value: string): string[] => [
  `{"model":{"type":"BPE","vocab":{"a":0,"b":${value}},"merges":[["a","b"]]}}`,
  `{"model":{"type":"BPE","vocab":{"a":0},"merges":[${value}]}}`,
  `{"x":${value},"model":{"type":"BPE","merges":[],"vocab":{}}}`
]

const INVALID = [
  '01',
  '1.',
  '.5',
  '+1',
  '1e',
  '1e+',
  '-',
  '--1',
  'tru',
  'nul',
  'True',
  'NaN',
  'Infinity',
  "'a'",
  '"a\u0001"',
  '"a\nb"',
  '"\\x"',
  '"\\u12G4"',
  '"\\u12"',
  '"abc',
  '[1,]',
  '[,1]',
  '{"a":1,}',
  '{"a" 1}',
  '{a:1}',
  '[1 2]',
  '/*c*/1',
  '1 //c',
  '0x10',
  '[1]]',
  '{"a":[}',
  '\u00a01'
]

const VALID = [
  '-0',
  '0',
  '1e5',
  '1E+5',
  '-0.5e-3',
  '123456789012345678901234567890',
  '"\\u00e9\\/\\"\\\\\\b\\f\\n\\r\\t"',
  '"é ▁ 🥞"',
  ' \t\r\n[ 1 , "x" , { "a" : null } , true , false ] ',
  '{}',
  '[]',
  '[[[[]]]]'
]

const restOf = (json: Json): Json => {
  const model = json.model as Json
  return { ...json, model: { ...model, vocab: {}, merges: [] } }
}

describe('scanTokenizerJson', () => {
  it.each(INVALID)('refuses %j as JSON.parse does', (value) => {
    for (const text of placements(value)) {
      expect(() => JSON.parse(text)).toThrow()
      expect(scanTokenizerJson(Buffer.from(text))).toBeNull()
    }
  })

  it.each(VALID)('accepts %j as JSON.parse does', (value) => {
    for (const text of placements(value)) {
      const scanned = scanTokenizerJson(Buffer.from(text))
      expect(scanned).not.toBeNull()
      expect(scanned!.rest).toEqual(restOf(JSON.parse(text) as Json))
    }
  })

  it('leaves to JSON.parse a BOM, text after the value, invalid UTF-8 and anything but one BPE model', () => {
    const ok = '{"model":{"type":"BPE","vocab":{},"merges":[]}}'
    expect(scanTokenizerJson(Buffer.from(ok))).not.toBeNull()
    expect(scanTokenizerJson(Buffer.from('\ufeff' + ok))).toBeNull()
    expect(scanTokenizerJson(Buffer.from(ok + ' x'))).toBeNull()
    expect(scanTokenizerJson(Buffer.from(ok.replace('{}', '{"\xff":1}'), 'latin1'))).toBeNull()
    for (const other of [
      '[1]',
      '{"model":{"type":"Unigram","vocab":[],"merges":[]}}',
      '{"model":{"type":"BPE","vocab":[],"merges":[]}}',
      '{"model":{"type":"BPE","vocab":{}}}',
      '{"model":{"type":"BPE","vocab":{},"vocab":{},"merges":[]}}',
      '{"model":{"type":"BPE","vocab":{},"merges":[]},"model":{"type":"BPE","vocab":{},"merges":[]}}',
      '{"mod\\u0065l":{"type":"BPE","vocab":{},"merges":[]},"model":{"type":"BPE","vocab":{},"merges":[]}}'
    ]) {
      expect(scanTokenizerJson(Buffer.from(other))).toBeNull()
    }
  })
})

/** prepareTokenizer's answer walked and parsed, with the validation's view of each file. */
async function bothWays(
  folder: HfFolder,
  vocabSize: number
): Promise<{ walked: PreparedTokenizer | unknown; parsed: PreparedTokenizer | unknown }> {
  const walked = await prepareTokenizer(folder, vocabSize, { scan: true }).catch((e: unknown) => e)
  const parsed = await prepareTokenizer(folder, vocabSize, { scan: false }).catch((e: unknown) => e)
  return { walked, parsed }
}

function expectSame(walked: unknown, parsed: unknown): void {
  if (parsed instanceof Error) {
    expect(walked).toBeInstanceOf(Error)
    expect((walked as Error).message).toBe(parsed.message)
    return
  }
  const { tokenizerParsed: a, tokenizerJson: bytesA, ...restA } = walked as PreparedTokenizer
  const { tokenizerParsed: b, tokenizerJson: bytesB, ...restB } = parsed as PreparedTokenizer
  // (Buffer.equals: a deep comparison of 33 MB element by element takes minutes.)
  expect(Buffer.from(bytesA).equals(bytesB)).toBe(true)
  expect(restA).toEqual(restB)
  expect(tokenizerValidationView(a)).toEqual(tokenizerValidationView(b))
}

let root: string
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-tokenizer-scan-'))
})
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true })
})

const DIMS = { hiddenSize: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, vocabSize: 64 }

async function folderWith(
  name: string,
  options: { tokenizer?: FixtureTokenizer; files?: Record<string, string>; eos?: number[] }
): Promise<HfFolder> {
  const model = randomHfModel('qwen3', DIMS, { seed: 3 })
  const written = await writeHfFolder(path.join(root, name), model, {
    dtype: 'BF16',
    ...(options.tokenizer ? { tokenizer: options.tokenizer } : {}),
    generationConfig: { eos_token_id: options.eos ?? [2] },
    ...(options.files ? { extraFiles: options.files } : {})
  })
  return openHfFolder(written.dir)
}

describe('prepareTokenizer walked or parsed', () => {
  it.each([
    ['gemma3', 262_144, [1, 106]],
    ['qwen3', 151_936, [151645, 151643]]
  ] as const)(
    'answers the same for the real %s file (and walks it)',
    async (tokenizer, vocabSize, eos) => {
      const folder = await folderWith(tokenizer, { tokenizer, eos: [...eos] })
      const bytes = await fs.readFile(folder.files.tokenizer!)
      expect(scanTokenizerJson(bytes)).not.toBeNull()
      const { walked, parsed } = await bothWays(folder, vocabSize)
      expect(walked).not.toBeInstanceOf(Error)
      expectSame(walked, parsed)
      // Too small a model: the same refusal either way.
      const small = await bothWays(folder, 1000)
      expect(small.parsed).toBeInstanceOf(Error)
      expectSame(small.walked, small.parsed)
    },
    120_000
  )

  /** A small SentencePiece-style BPE file, written as text (escapes and repeats as given). */
  const sentencePiece = (vocab: string, merges: string, extra = ''): string =>
    `{"version":"1.0","added_tokens":[` +
    `{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},` +
    `{"id":2,"content":"</s>","special":true},{"id":70,"content":"<past>","special":true}],` +
    `"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"\\u2581"},` +
    `{"type":"Replace","pattern":{"String":" "},"content":"\\u2581"}]},"pre_tokenizer":null,` +
    `"post_processor":null,"decoder":null,${extra}` +
    `"model":{"type":"BPE","dropout":null,"unk_token":"<unk>","continuing_subword_prefix":null,` +
    `"end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,"ignore_merges":false,` +
    `"vocab":{${vocab}},"merges":[${merges}]}}`
  const CONFIG = JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' })
  const BASE_VOCAB =
    '"<unk>":0,"<s>":1,"</s>":2,"<0x20>":3,"<0x41>":4,"a":5,"\\u2581":6,"\\u2581\\u2581":7,' +
    '"\u2581a":8,"b":9,"\\n":10,"\u2581\u2581\u2581":11'

  it.each([
    ['pair merges', BASE_VOCAB, '["\\u2581","\\u2581"],["\u2581\u2581","\u2581"],["a","b"]'],
    ['string merges', BASE_VOCAB, '"\u2581 \u2581","\\u2581\\u2581 \\u2581","a b"'],
    ['odd merges', BASE_VOCAB, '["\u2581"],["\u2581","\u2581","x"],1,null,{"a":1},["\u2581",2]'],
    ['a repeated key (the last value counts)', BASE_VOCAB + ',"b":63,"b":12', '["a","b"]'],
    ['an escaped spelling of a repeated key', BASE_VOCAB + ',"\\u0062":40', '["a","b"]'],
    ['an id past the model', BASE_VOCAB + ',"zz":64', '["a","b"]'],
    ['non-number ids', BASE_VOCAB + ',"zz":"64","yy":null,"xx":1e2', '["a","b"]'],
    ['no byte fallback tokens', '"<unk>":0,"<s>":1,"</s>":2,"a":5', '']
  ])('answers the same for a small file with %s', async (name, vocab, merges) => {
    const text = sentencePiece(vocab, merges)
    const folder = await folderWith(name.replace(/\W+/g, '-'), {
      files: { 'tokenizer.json': text, 'tokenizer_config.json': CONFIG }
    })
    expect(scanTokenizerJson(Buffer.from(text))).not.toBeNull()
    const { walked, parsed } = await bothWays(folder, 64)
    expectSame(walked, parsed)
    if (!(parsed instanceof Error)) {
      // A real answer, not two equal failures.
      expect(isDeepStrictEqual((parsed as PreparedTokenizer).endOfTurnTokens, ['</s>'])).toBe(true)
    }
  })

  it('gives JSON.parse’s error for a file that is not JSON', async () => {
    const text = sentencePiece(BASE_VOCAB + ',', '["a","b"]')
    const folder = await folderWith('not-json', {
      files: { 'tokenizer.json': text, 'tokenizer_config.json': CONFIG }
    })
    const { walked, parsed } = await bothWays(folder, 64)
    expect(parsed).toMatchObject({ problem: 'config_invalid', file: 'tokenizer.json' })
    expectSame(walked, parsed)
  })
})
