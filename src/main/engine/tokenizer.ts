/** The bundle's Hugging Face tokenizer, with the analysis conventions applied (double-BOS rule). */
import { basename } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { AppError } from '@shared/ipc/errors'
import { BundleFileError, MAX_JSON_BYTES, jsonFailure, readRegularFileSync } from './bundle/files'

/**
 * A tokenizer file's JSON; a failure names the file (by its name in the bundle), never its content.
 * Read synchronously: the parse that follows blocks longer than the read, and four thread-pool
 * round trips per file cost more CPU than the read itself (every load of a replica takes them).
 */
function readBundleJson(file: string): unknown {
  const name = basename(file)
  let text: string
  try {
    text = readRegularFileSync(file, MAX_JSON_BYTES).toString('utf8')
  } catch (err) {
    const reason = err instanceof BundleFileError ? err.reason : 'cannot be read'
    throw new AppError('bundle_invalid', `${name}: ${reason}`, { file: name })
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new AppError('bundle_invalid', `${name}: ${jsonFailure(err)}`, { file: name })
  }
}

export interface TokenizedText {
  ids: number[]
  /** What the model received, decoded: `<unk>` for a word the vocabulary does not have. */
  tokens: string[]
  /**
   * The text the tokenizer read (after its normaliser) where it differs from the token: the word
   * behind an `<unk>`; undefined where the token is the text.
   */
  sources: (string | undefined)[]
}

/**
 * Lets the parsed tokenizer.json's big tables go once the tokenizer is built. The library keeps
 * the whole parsed file (`tokenizer`) and, for BPE, the merge list, though after construction it
 * reads only the maps it built from them (token ids, merge ranks). At a 262k vocabulary those
 * tables held about 50 MB of a worker's heap for nothing (docs/benchmarks.md, "At real shapes").
 */
function releaseParsedTables(tok: Tokenizer, json: { model?: Record<string, unknown> }): void {
  const model = json.model
  if (!model || model.type !== 'BPE') return
  delete model.vocab
  delete model.merges
  const built = tok as unknown as { model?: { merges?: unknown } }
  if (built.model && Array.isArray(built.model.merges)) built.model.merges = []
}

export class TextTokenizer {
  readonly #tok: Tokenizer
  readonly #unkId: number | undefined
  readonly #vocabSize: number
  readonly bosId: number

  private constructor(tok: Tokenizer, bosId: number, unkId: number | undefined, vocabSize: number) {
    this.#tok = tok
    this.bosId = bosId
    this.#unkId = unkId
    this.#vocabSize = vocabSize
  }

  /**
   * `vocabSize` is the model's embedding rows: a tokenizer may list added tokens past it (Gemma-3's
   * image token sits at id 262144 of a 262,144-row text model), which a text may name but no graph
   * can embed, so `encode` refuses such a text instead of handing the id to the model.
   */
  static async load(
    file: string,
    configFile: string,
    bosId: number,
    vocabSize = Number.POSITIVE_INFINITY
  ): Promise<TextTokenizer> {
    const json = readBundleJson(file) as { model?: { unk_token?: string } }
    const config = readBundleJson(configFile) as { unk_token?: string }
    let tok: Tokenizer
    try {
      tok = new Tokenizer(json, config)
    } catch (err) {
      throw new AppError(
        'bundle_invalid',
        `tokenizer.json: cannot build the tokenizer: ${(err as Error).message}`,
        {
          file: 'tokenizer.json'
        }
      )
    }
    const unkName = json.model?.unk_token ?? config.unk_token
    const unkId = unkName ? tok.token_to_id(unkName) : undefined
    releaseParsedTables(tok, json)
    return new TextTokenizer(tok, bosId, unkId, vocabSize)
  }

  /**
   * Token ids and strings as the analysis sees them. Double-BOS rule: drop token 0 only when
   * tokens 0 and 1 are both the BOS id (a chat-templated string that already starts with BOS,
   * re-tokenised); other leading duplicates are real text and stay.
   */
  encode(text: string): TokenizedText {
    const enc = this.#tok.encode(text)
    const ids: number[] = []
    for (const [i, id] of enc.ids.entries()) {
      // Some model types have returned null for out-of-vocabulary words; map those to <unk>.
      if (id === null || id === undefined || Number.isNaN(Number(id))) {
        if (this.#unkId === undefined) {
          throw new AppError('invalid_input', `token "${enc.tokens[i]}" is not in the vocabulary`, {
            field: 'text'
          })
        }
        ids.push(this.#unkId)
      } else if (Number(id) >= this.#vocabSize) {
        throw new AppError(
          'invalid_input',
          `token "${enc.tokens[i]}" (id ${Number(id)}) is a special token of the tokenizer that the model has no embedding for (vocabSize ${this.#vocabSize})`,
          { field: 'text' }
        )
      } else {
        ids.push(Number(id))
      }
    }
    let tokens = ids.map((id) => this.decodeOne(id))
    let sources = ids.map((id, i) => {
      const read = enc.tokens[i]
      return id === this.#unkId && read && read !== tokens[i] ? read : undefined
    })
    if (ids.length >= 2 && ids[0] === this.bosId && ids[1] === this.bosId) {
      ids.shift()
      tokens = tokens.slice(1)
      sources = sources.slice(1)
    }
    return { ids, tokens, sources }
  }

  /** The id of a token text (e.g. a special like `<end_of_turn>`); undefined when not in the vocabulary. */
  tokenToId(token: string): number | undefined {
    const id = this.#tok.token_to_id(token)
    return id === null || id === undefined ? undefined : Number(id)
  }

  /** Ids of a text without special tokens (explanations typed by a user). */
  encodePlain(text: string): number[] {
    const enc = this.#tok.encode(text, { add_special_tokens: false })
    return enc.ids.map((id) => (id === null || id === undefined ? (this.#unkId ?? 0) : Number(id)))
  }

  decodeOne(id: number): string {
    return this.#tok.decode([id], { skip_special_tokens: false })
  }

  decode(ids: number[]): string {
    // @huggingface/tokenizers throws on an empty array; an empty chat reply is legitimate.
    if (ids.length === 0) return ''
    return this.#tok.decode(ids, { skip_special_tokens: false })
  }
}
