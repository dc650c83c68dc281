/**
 * A Hugging Face folder's tokenizer files → what a group needs: `tokenizer.json` as it is, and one
 * `tokenizer_config.json` that says everything the engine reads (docs/bundle-format.md):
 *   - the chat template: `chat_template.jinja` (what transformers ≥ 4.43 saves, and loads in
 *     preference), else `chat_template.json`, else the config's own `chat_template`;
 *   - specials (`bos_token`, `eos_token`, `pad_token`, `unk_token`): the config's, else
 *     `special_tokens_map.json`'s;
 *   - `end_of_turn_tokens`: the texts of `generation_config.json`'s `eos_token_id` (one id or a
 *     list, e.g. Gemma-3's `<eos>` and `<end_of_turn>`, Qwen3's `<|im_end|>` and `<|endoftext|>`),
 *     so generation stops where the real model's `generate` stops.
 * It also picks the conventions' BOS id (the tokenizer's BOS token, else config.json's
 * `bos_token_id`) and the salience null token (the predecessor's `encode(" ")[0]`, else EOS), and
 * checks that every id the tokenizer can produce is inside the model's vocabulary.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { checkpointFail } from '../errors'
import { isPlainObject } from '../files'
import { CONFIG_FILE, readHfFolderBytes, readHfFolderFile, type HfFolder } from './folder'
import {
  decodeKey,
  forEachMerge,
  forEachVocabEntry,
  scanTokenizerJson,
  type ScannedTokenizer
} from './tokenizerScan'

export interface PreparedTokenizer {
  /** `tokenizer.json`, byte for byte (written as read: re-encoding 30 MB of text costs time). */
  tokenizerJson: Uint8Array
  /**
   * The same file parsed (handed to the bundle validation, which would otherwise parse it again);
   * for a file walked rather than parsed (tokenizerScan.ts), what that validation reads of it: the
   * file without its merges, its vocabulary reduced to its largest id (`{ max: id }`).
   */
  tokenizerParsed: Record<string, unknown>
  /** The group's `tokenizer_config.json`. */
  tokenizerConfig: Record<string, unknown>
  bosTokenId: number
  nullTokenId: number
  /** Texts of the ids that end a turn (also in `tokenizerConfig.end_of_turn_tokens`). */
  endOfTurnTokens: string[]
  /** Where the chat template came from, or null when the folder has none. */
  chatTemplateFrom: string | null
  /** Largest id the tokenizer can produce. */
  maxTokenId: number
  warnings: string[]
}

type Json = Record<string, unknown>

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const

function parseJson(text: string, file: string): Json {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    checkpointFail('config_invalid', { file }, `not valid JSON: ${(err as Error).message}`)
  }
  if (!isPlainObject(value)) checkpointFail('config_invalid', { file }, 'must hold a JSON object')
  return value
}

/** A special token as its text: a string, or an AddedToken object's `content`. */
function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v
  if (isPlainObject(v) && typeof v.content === 'string') return v.content
  return null
}

/** An id or a list of ids from a config field, as a list (empty when absent or malformed). */
function idList(v: unknown): number[] {
  const list = Array.isArray(v) ? v : [v]
  return list.filter((x): x is number => Number.isInteger(x) && (x as number) >= 0)
}

/** Largest id of tokenizer.json's model vocabulary. */
function maxVocabIdOf(json: Json): number {
  let maxVocabId = -1
  const model = isPlainObject(json.model) ? json.model : {}
  const vocab = model.vocab
  if (Array.isArray(vocab)) {
    // Unigram: a list of [piece, score], ids are the positions.
    maxVocabId = vocab.length - 1
  } else if (isPlainObject(vocab)) {
    for (const token in vocab) {
      const id = vocab[token]
      if (typeof id === 'number' && id > maxVocabId) maxVocabId = id
    }
  }
  return maxVocabId
}

/** The added tokens whose id is at or past `limit`. */
function addedPastOf(json: Json, limit: number): { id: number; content: string }[] {
  const addedPast: { id: number; content: string }[] = []
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens) {
      if (isPlainObject(t) && typeof t.id === 'number' && t.id >= limit) {
        addedPast.push({ id: t.id, content: typeof t.content === 'string' ? t.content : '?' })
      }
    }
  }
  return addedPast
}

/** What the import asks of the tokenizer. */
export interface TokenLookup {
  maxVocabId: number
  /** The id of a token text (added tokens first, as the tokenizer looks them up). */
  idOf(text: string): number | undefined
  /** The text of one of the ids asked for when the lookup was made. */
  textOf(id: number): string | undefined
  /** The ids of `text` without special tokens. */
  encode(text: string): number[]
}

function buildTokenizer(json: Json, config: Json): Tokenizer {
  try {
    return new Tokenizer(json, config)
  } catch (err) {
    checkpointFail(
      'tokenizer_invalid',
      { file: 'tokenizer.json' },
      `cannot build the tokenizer: ${(err as Error).message}`
    )
  }
}

export function fullLookup(json: Json, config: Json): TokenLookup {
  const tokenizer = buildTokenizer(json, config)
  return {
    maxVocabId: maxVocabIdOf(json),
    idOf: (text) => {
      const id = tokenizer.token_to_id(text)
      return id === undefined || id === null ? undefined : Number(id)
    },
    textOf: (id) => tokenizer.id_to_token(id) ?? undefined,
    encode: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids.map(Number)
  }
}

const BYTE_FALLBACK_TOKEN = /^<0x[0-9A-F]{2}>$/

/**
 * The lookup for a BPE tokenizer without building its whole vocabulary and merge table (for
 * Gemma-3's 262,144 tokens and 514,906 merges that build costs more than streaming the weights).
 * Ids and texts come from the file's vocabulary and added tokens directly, as the tokenizer reads
 * them. Encoding `texts`: BPE only ever looks up tokens, and merges of adjacent pieces, made of
 * the characters of the words it is handed, so a tokenizer whose vocabulary and merges are cut
 * to entries made of those characters (the normaliser's and pre-tokeniser's output for `texts`,
 * found with the same file's normaliser and pre-tokeniser, and the byte-fallback and unknown
 * tokens) encodes them exactly as the full one; the merges keep their order, hence their ranks.
 * Null when the model is not BPE with a token → id object and a merge list.
 */
export function bpeLookup(
  json: Json,
  config: Json,
  texts: string[],
  wantIds: readonly number[]
): TokenLookup | null {
  const model = json.model
  if (!isPlainObject(model) || model.type !== 'BPE') return null
  const vocab = model.vocab
  const merges = model.merges
  if (!isPlainObject(vocab) || !Array.isArray(merges)) return null
  const { madeOfChars } = bpeCharacters(json, model, config, texts)

  const wanted = new Set(wantIds)
  const texts0 = new Map<number, string>()
  const kept: Record<string, number> = {}
  let maxVocabId = -1
  for (const token in vocab) {
    const id = vocab[token]
    if (typeof id !== 'number') continue
    if (id > maxVocabId) maxVocabId = id
    if (wanted.has(id)) texts0.set(id, token)
    if (
      madeOfChars(token) ||
      token === model.unk_token ||
      (token.startsWith('<0x') && BYTE_FALLBACK_TOKEN.test(token))
    ) {
      kept[token] = id
    }
  }
  const keptMerges: unknown[] = []
  for (const m of merges as unknown[]) {
    // A merge is a pair ["a", "b"] or, in older files, one string "a b".
    const made = Array.isArray(m)
      ? typeof m[0] === 'string' &&
        typeof m[1] === 'string' &&
        madeOfChars(m[0]) &&
        madeOfChars(m[1])
      : typeof m === 'string' && madeOfChars(m.replace(' ', ''))
    if (made) keptMerges.push(m)
  }
  return cutBpeLookup(json, model, config, texts, {
    maxVocabId,
    kept,
    keptMerges,
    texts0,
    vocabIdOf: (text) => {
      const id = Object.hasOwn(vocab, text) ? vocab[text] : undefined
      return typeof id === 'number' ? id : undefined
    }
  })
}

/** The characters `texts` can become through the file's normaliser and pre-tokeniser. */
function bpeCharacters(
  json: Json,
  model: Json,
  config: Json,
  texts: string[]
): { chars: Set<string>; madeOfChars: (t: string) => boolean } {
  // The same file with an empty vocabulary and no added tokens: its normaliser and pre-tokeniser.
  const probe = buildTokenizer(
    { ...json, added_tokens: [], model: { ...model, vocab: {}, merges: [] } },
    config
  )
  const chars = new Set<string>()
  const addChars = (t: unknown): void => {
    if (typeof t === 'string') for (const c of t) chars.add(c)
  }
  for (const text of texts) {
    addChars(text)
    const normalized = probe.normalizer ? probe.normalizer(text) : text
    addChars(normalized)
    // As the first section of a text (a Metaspace pre-tokeniser prepends "▁" there) and as any.
    for (const options of [{ section_index: 0 }, {}]) {
      const words: unknown = probe.pre_tokenizer
        ? probe.pre_tokenizer(normalized, options)
        : [normalized]
      if (Array.isArray(words)) words.forEach(addChars)
    }
  }
  addChars(model.end_of_word_suffix)
  addChars(model.continuing_subword_suffix)
  const madeOfChars = (t: string): boolean => {
    for (const c of t) if (!chars.has(c)) return false
    return true
  }
  return { chars, madeOfChars }
}

/** What a BPE lookup keeps of the vocabulary and merges (bpeLookup, scannedBpeLookup). */
interface BpeCut {
  maxVocabId: number
  /** The vocabulary entries made of the characters (and the unknown and byte-fallback tokens). */
  kept: Record<string, number>
  keptMerges: unknown[]
  /** Texts of the ids asked for. */
  texts0: Map<number, string>
  /** A text's id in the vocabulary (not the added tokens). */
  vocabIdOf: (text: string) => number | undefined
}

/** The lookup from a cut of the vocabulary and merges (see bpeLookup). */
function cutBpeLookup(
  json: Json,
  model: Json,
  config: Json,
  texts: string[],
  { maxVocabId, kept, keptMerges, texts0, vocabIdOf }: BpeCut
): TokenLookup {
  const small = buildTokenizer(
    { ...json, model: { ...model, vocab: kept, merges: keptMerges } },
    config
  )

  // Added tokens override the vocabulary, as in the tokenizer's own maps.
  const addedIds = new Map<string, number>()
  const addedTexts = new Map<number, string>()
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens) {
      if (isPlainObject(t) && typeof t.id === 'number' && typeof t.content === 'string') {
        addedIds.set(t.content, t.id)
        addedTexts.set(t.id, t.content)
      }
    }
  }
  return {
    maxVocabId,
    idOf: (text) => {
      const added = addedIds.get(text)
      if (added !== undefined) return added
      return vocabIdOf(text)
    },
    textOf: (id) => addedTexts.get(id) ?? texts0.get(id),
    encode: (text) => {
      if (!texts.includes(text)) throw new Error(`the lookup was made for ${JSON.stringify(texts)}`)
      return small.encode(text, { add_special_tokens: false }).ids.map(Number)
    }
  }
}

/**
 * bpeLookup for a file read by scanTokenizerJson (tokenizerScan.ts): the same answers, with only
 * the vocabulary entries and merges it keeps decoded. `wantTexts` are the texts `idOf` will be
 * asked for (it answers only those). Null when the walk cannot answer as the parsed file would (a
 * key twice in the vocabulary): the caller parses the whole file.
 */
export function scannedBpeLookup(
  scanned: ScannedTokenizer,
  config: Json,
  texts: string[],
  wantIds: readonly number[],
  wantTexts: readonly string[]
): TokenLookup | null {
  const json = scanned.rest
  const model = json.model as Json
  const bytes = scanned.bytes
  const { chars, madeOfChars } = bpeCharacters(json, model, config, texts)
  // Bytes of the characters' UTF-8: a key with any other byte is not made of them.
  const charBytes = new Uint8Array(256)
  for (const c of chars) for (const b of Buffer.from(c, 'utf8')) charBytes[b] = 1
  const onlyCharBytes = (from: number, to: number, also = -1): boolean => {
    for (let k = from; k < to; k++) {
      const b = bytes[k]!
      if (charBytes[b] === 0 && b !== also) return false
    }
    return true
  }
  const sameBytes = (from: number, to: number, target: Buffer): boolean => {
    if (to - from !== target.length) return false
    for (let k = 0; k < target.length; k++) if (bytes[from + k] !== target[k]) return false
    return true
  }
  const unk = typeof model.unk_token === 'string' ? Buffer.from(model.unk_token, 'utf8') : null
  const asked = wantTexts.map((text) => ({ text, bytes: Buffer.from(text, 'utf8') }))
  const LT = 0x3c

  const wanted = new Set(wantIds)
  const texts0 = new Map<number, string>()
  const textIds = new Map<string, number>()
  const kept: Record<string, number> = {}
  let maxVocabId = -1
  const unique = forEachVocabEntry(scanned, (keyStart, keyEnd, escaped, id) => {
    if (id === undefined) return
    if (id > maxVocabId) maxVocabId = id
    const from = keyStart + 1
    const to = keyEnd - 1
    // Decoded only where the key could be kept, asked for, or is escaped (then compared as text).
    let maybe =
      escaped ||
      wanted.has(id) ||
      onlyCharBytes(from, to) ||
      bytes[from] === LT ||
      (unk !== null && sameBytes(from, to, unk))
    for (let k = 0; !maybe && k < asked.length; k++) maybe = sameBytes(from, to, asked[k]!.bytes)
    if (!maybe) return
    const token = decodeKey(bytes, { start: keyStart, end: keyEnd }, escaped)
    if (wanted.has(id)) texts0.set(id, token)
    for (const a of asked) if (a.text === token) textIds.set(token, id)
    if (
      madeOfChars(token) ||
      token === model.unk_token ||
      (token.startsWith('<0x') && BYTE_FALLBACK_TOKEN.test(token))
    ) {
      kept[token] = id
    }
  })
  if (!unique) return null

  const SPACE = 0x20
  const keptMerges: unknown[] = []
  const stringMadeOf = (start: number, end: number, dropSpace: boolean): boolean => {
    if (start < 0 || bytes[start] !== QUOTE_BYTE) return false
    let escaped = false
    for (let k = start + 1; k < end - 1 && !escaped; k++) escaped = bytes[k] === BACKSLASH_BYTE
    if (!escaped && !onlyCharBytes(start + 1, end - 1, dropSpace ? SPACE : -1)) return false
    const text = decodeKey(bytes, { start, end }, escaped)
    return madeOfChars(dropSpace ? text.replace(' ', '') : text)
  }
  forEachMerge(scanned, (start, end, pair) => {
    const made = pair
      ? stringMadeOf(pair[0]!, pair[1]!, false) && stringMadeOf(pair[2]!, pair[3]!, false)
      : stringMadeOf(start, end, true)
    if (made) keptMerges.push(JSON.parse(Buffer.from(bytes.subarray(start, end)).toString('utf8')))
  })
  return cutBpeLookup(json, model, config, texts, {
    maxVocabId,
    kept,
    keptMerges,
    texts0,
    vocabIdOf: (text) => {
      if (!wantTexts.includes(text)) {
        throw new Error(`the lookup was made for the texts ${JSON.stringify(wantTexts)}`)
      }
      return textIds.get(text)
    }
  })
}

const QUOTE_BYTE = 0x22
const BACKSLASH_BYTE = 0x5c

/**
 * From this size on, `tokenizer.json` is walked (tokenizerScan.ts) rather than parsed whole:
 * Qwen3's 11 MB and Gemma-3's 33 MB are; GPT-2's 1.4 MB parses in about 10 ms.
 */
export const SCAN_MIN_BYTES = 4 * 1024 * 1024

/** The chat template text of `chat_template.json` (`{ "chat_template": … }`). */
function templateFromJson(text: string, file: string): string | null {
  const obj = parseJson(text, file)
  const t = obj.chat_template
  return typeof t === 'string' && t.length > 0 ? t : null
}

/**
 * Reads and checks the folder's tokenizer files for a model with `vocabSize` embedding rows.
 * `config` is config.json (its `bos_token_id` / `eos_token_id` fill in what the tokenizer files
 * leave out; for a multimodal Gemma-3, `text_config` is consulted too).
 */
export async function prepareTokenizer(
  folder: Pick<HfFolder, 'dir' | 'config' | 'files' | 'fileNames'>,
  vocabSize: number,
  options: { scan?: boolean } = {}
): Promise<PreparedTokenizer> {
  const warnings: string[] = []
  const tokenizerBytes = await readHfFolderBytes(folder, 'tokenizer')
  if (tokenizerBytes === undefined) {
    const hint = (await hasAny(folder, ['tokenizer.model', 'vocab.json', 'spiece.model']))
      ? ' The folder has a slow tokenizer only; save the fast one once with transformers: AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR).'
      : ''
    checkpointFail(
      'missing_file',
      { file: 'tokenizer.json' },
      `missing: a model group needs the Hugging Face fast tokenizer file.${hint}`
    )
  }
  // A large BPE file is walked rather than parsed whole (tokenizerScan.ts); any other, or one the
  // walk does not take, is parsed (with JSON.parse's own error for a file that is not JSON).
  const scanned =
    (options.scan ?? tokenizerBytes.byteLength >= SCAN_MIN_BYTES)
      ? scanTokenizerJson(tokenizerBytes)
      : null
  let tokenizerJson = scanned
    ? scanned.rest
    : parseJson(tokenizerBytes.toString('utf8'), 'tokenizer.json')

  const configText = await readHfFolderFile(folder, 'tokenizerConfig')
  const config: Json = configText ? parseJson(configText, 'tokenizer_config.json') : {}
  const mapText = await readHfFolderFile(folder, 'specialTokensMap')
  const specialMap: Json = mapText ? parseJson(mapText, 'special_tokens_map.json') : {}
  const genText = await readHfFolderFile(folder, 'generationConfig')
  const generation: Json = genText ? parseJson(genText, 'generation_config.json') : {}

  const out: Json = { ...config }
  for (const key of SPECIAL_KEYS) {
    if (tokenText(out[key]) === null && tokenText(specialMap[key]) !== null) {
      out[key] = tokenText(specialMap[key])
    }
  }

  let chatTemplateFrom: string | null = null
  const templateFile = folder.fileNames.chatTemplate
  const templateText = await readHfFolderFile(folder, 'chatTemplate')
  if (templateText !== undefined && templateFile) {
    const t = templateFile.endsWith('.json')
      ? templateFromJson(templateText, templateFile)
      : templateText
    if (t) {
      out.chat_template = t
      chatTemplateFrom = templateFile
    }
  }
  if (!chatTemplateFrom && out.chat_template !== undefined && out.chat_template !== null) {
    chatTemplateFrom = 'tokenizer_config.json'
  }

  const modelConfig = folder.config
  const textConfig = isPlainObject(modelConfig.text_config) ? modelConfig.text_config : {}
  const configIds = (key: string): number[] => [
    ...idList(generation[key]),
    ...idList(modelConfig[key]),
    ...idList(textConfig[key])
  ]
  const eosIds = [...new Set([...idList(generation.eos_token_id)])]
  if (eosIds.length === 0) eosIds.push(...new Set(configIds('eos_token_id')))

  const wantTexts = [tokenText(out.bos_token), tokenText(out.eos_token)].filter(
    (t): t is string => t !== null
  )
  let lookup = scanned ? scannedBpeLookup(scanned, out, [' '], eosIds, wantTexts) : null
  let tokenizerParsed = tokenizerJson
  if (scanned && lookup) {
    // What the bundle validation reads of the file: its largest vocabulary id and added tokens.
    const model = tokenizerJson.model as Json
    const vocab = lookup.maxVocabId >= 0 ? { max: lookup.maxVocabId } : {}
    tokenizerParsed = { ...tokenizerJson, model: { ...model, vocab } }
  } else if (scanned) {
    tokenizerJson = parseJson(tokenizerBytes.toString('utf8'), 'tokenizer.json')
    tokenizerParsed = tokenizerJson
  }
  lookup ??= bpeLookup(tokenizerJson, out, [' '], eosIds) ?? fullLookup(tokenizerJson, out)
  // The vocabulary itself must fit the embedding; a few added tokens past it (Gemma-3's text
  // models share the multimodal tokenizer, whose <image_soft_token> is id 262144 of a 262,144-row
  // embedding) only make texts that spell them out unusable, as with the real model.
  const maxVocabId = lookup.maxVocabId
  const addedPast = addedPastOf(tokenizerJson, vocabSize)
  if (maxVocabId >= vocabSize) {
    checkpointFail(
      'tokenizer_invalid',
      { file: 'tokenizer.json' },
      `holds token id ${maxVocabId}, but ${CONFIG_FILE} gives the model ${vocabSize} embedding rows (vocab_size); the tokenizer does not belong to this model`
    )
  }
  if (addedPast.length > 0) {
    const shown = addedPast
      .slice(0, 5)
      .map((t) => `${t.content} (${t.id})`)
      .join(', ')
    warnings.push(
      `tokenizer.json: ${addedPast.length} added token(s) past the model's ${vocabSize} embedding rows: ${shown}${addedPast.length > 5 ? ', …' : ''}; a text that contains them cannot be run`
    )
  }
  const maxTokenId = Math.max(maxVocabId, ...addedPast.map((t) => t.id))
  const idOf = (text: string | null): number | undefined =>
    text === null ? undefined : lookup.idOf(text)
  const textOf = (id: number): string | undefined => lookup.textOf(id)

  const eosText = tokenText(out.eos_token)
  const endOfTurnTokens: string[] = []
  for (const id of eosIds) {
    const t = id < vocabSize ? textOf(id) : undefined
    if (t === undefined) {
      warnings.push(
        `generation_config.json: eos_token_id ${id} is not a token of tokenizer.json; generation does not stop on it`
      )
    } else if (!endOfTurnTokens.includes(t)) {
      endOfTurnTokens.push(t)
    }
  }
  if (eosText && !endOfTurnTokens.includes(eosText) && idOf(eosText) !== undefined) {
    endOfTurnTokens.push(eosText)
  }
  if (endOfTurnTokens.length > 0) out.end_of_turn_tokens = endOfTurnTokens

  const bosTokenId =
    idOf(tokenText(out.bos_token)) ??
    configIds('bos_token_id').find((id) => id < vocabSize) ??
    idOf(eosText) ??
    0
  const space = lookup.encode(' ')
  const firstSpace = space[0]
  const nullTokenId =
    firstSpace !== undefined && firstSpace < vocabSize
      ? firstSpace
      : (idOf(eosText) ?? eosIds[0] ?? bosTokenId)

  if (!chatTemplateFrom) {
    warnings.push(
      'no chat template (tokenizer_config.json, chat_template.jinja): chat is off for this group; plain-text generation and analysis work'
    )
  }
  return {
    tokenizerJson: tokenizerBytes,
    tokenizerParsed,
    tokenizerConfig: out,
    bosTokenId,
    nullTokenId,
    endOfTurnTokens,
    chatTemplateFrom,
    maxTokenId,
    warnings
  }
}

async function hasAny(folder: Pick<HfFolder, 'dir'>, names: string[]): Promise<boolean> {
  for (const n of names) {
    try {
      await fs.lstat(path.join(folder.dir, n))
      return true
    } catch {
      // not there
    }
  }
  return false
}
