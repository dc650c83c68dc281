/**
 * A large BPE `tokenizer.json` read without decoding and parsing its vocabulary and merge list.
 *
 * Why: the import reads of those two only their largest id and the few entries made of the
 * characters " " can become (tokenizerFiles.ts `bpeLookup`), yet decoding Gemma-3's 33 MB file to
 * a string and JSON.parse-ing its 262,144 tokens and 514,906 merges cost about 2 s of CPU, as much
 * as the rest of the import together (docs/import.md "Safety and memory").
 *
 * So the bytes are walked once by a strict JSON validator (every rule of RFC 8259 that JSON.parse
 * applies: string escapes and control characters, number grammar, literals, whitespace, nothing
 * after the value). The file without its `model.vocab` and `model.merges` values (replaced by
 * `{}` and `[]`) is parsed as usual; the two are then walked once more, entry by entry, and only
 * the entries a caller asks for are decoded (by the same utf8 decoding and JSON.parse as the whole
 * file would be). Anything the walk does not accept, or where the answer could differ from the
 * parsed file's (a key twice in the vocabulary, `model`, `vocab` or `merges` twice, no BPE model),
 * makes `scanTokenizerJson` return null and the caller parses the whole file as before: the same
 * answer, or the same error.
 */
import { isUtf8 } from 'node:buffer'
import { isPlainObject } from '../files'

type Json = Record<string, unknown>

/** Bytes [start, end) of a JSON value in the file. */
interface Span {
  start: number
  end: number
}

/** Thrown inside the walk where the bytes are not JSON the walk accepts (never escapes here). */
class NotScanned extends Error {}

const fail = (): never => {
  throw new NotScanned()
}

/** Nesting deeper than this is left to JSON.parse. */
const MAX_DEPTH = 256

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const MINUS = 0x2d

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39
const isHex = (b: number): boolean =>
  isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)

/** A member of an object: its key's bytes with the quotes, whether it holds an escape, its value. */
type OnMember = (
  keyStart: number,
  keyEnd: number,
  keyEscaped: boolean,
  valueStart: number,
  valueEnd: number
) => void
type OnElement = (start: number, end: number) => void

/** A strict JSON walk over bytes; members and elements of a container can be visited. */
class Walk {
  readonly bytes: Uint8Array
  readonly length: number
  /** Whether the last string walked held an escape. */
  escaped = false

  constructor(bytes: Uint8Array) {
    this.bytes = bytes
    this.length = bytes.length
  }

  ws(i: number): number {
    const b = this.bytes
    while (i < this.length) {
      const c = b[i]!
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
      i++
    }
    return i
  }

  /** A value starting at `i` (no whitespace before it); returns where it ends. */
  value(i: number, depth: number): number {
    const c = this.bytes[i]
    if (c === QUOTE) return this.string(i)
    if (c === OPEN_BRACE) return this.object(i, depth + 1, null)
    if (c === OPEN_BRACKET) return this.array(i, depth + 1, null)
    if (c === MINUS || (c !== undefined && isDigit(c))) return this.number(i)
    if (c === 0x74) return this.literal(i, 'true')
    if (c === 0x66) return this.literal(i, 'false')
    if (c === 0x6e) return this.literal(i, 'null')
    return fail()
  }

  literal(i: number, word: string): number {
    for (let k = 0; k < word.length; k++) {
      if (this.bytes[i + k] !== word.charCodeAt(k)) fail()
    }
    return i + word.length
  }

  number(i: number): number {
    const b = this.bytes
    if (b[i] === MINUS) i++
    if (b[i] === 0x30) i++
    else if (b[i] !== undefined && isDigit(b[i]!)) while (i < this.length && isDigit(b[i]!)) i++
    else fail()
    if (b[i] === 0x2e) {
      i++
      if (!(i < this.length && isDigit(b[i]!))) fail()
      while (i < this.length && isDigit(b[i]!)) i++
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++
      if (b[i] === 0x2b || b[i] === MINUS) i++
      if (!(i < this.length && isDigit(b[i]!))) fail()
      while (i < this.length && isDigit(b[i]!)) i++
    }
    return i
  }

  /** A string from its opening quote; returns the index after the closing one. */
  string(i: number): number {
    const b = this.bytes
    let escaped = false
    i++
    for (;;) {
      if (i >= this.length) fail()
      const c = b[i]!
      if (c === QUOTE) break
      if (c < 0x20) fail()
      if (c === BACKSLASH) {
        escaped = true
        const e = b[i + 1]
        if (e === 0x75) {
          for (let k = 2; k < 6; k++) if (!isHex(b[i + k] ?? 0)) fail()
          i += 6
          continue
        }
        // " \ / b f n r t
        if (
          e !== QUOTE &&
          e !== BACKSLASH &&
          e !== 0x2f &&
          e !== 0x62 &&
          e !== 0x66 &&
          e !== 0x6e &&
          e !== 0x72 &&
          e !== 0x74
        ) {
          fail()
        }
        i += 2
        continue
      }
      i++
    }
    this.escaped = escaped
    return i + 1
  }

  /**
   * An object from its `{`; `onMember(key, keyEscaped, value)` for each member (key: the string's
   * bytes with its quotes). Returns where it ends.
   */
  object(i: number, depth: number, onMember: OnMember | null): number {
    if (depth > MAX_DEPTH) fail()
    i = this.ws(i + 1)
    if (this.bytes[i] === CLOSE_BRACE) return i + 1
    for (;;) {
      if (this.bytes[i] !== QUOTE) fail()
      const keyStart = i
      i = this.string(i)
      const keyEscaped = this.escaped
      const keyEnd = i
      i = this.ws(i)
      if (this.bytes[i] !== COLON) fail()
      const valueStart = this.ws(i + 1)
      i = this.value(valueStart, depth)
      onMember?.(keyStart, keyEnd, keyEscaped, valueStart, i)
      i = this.ws(i)
      const c = this.bytes[i]
      if (c === CLOSE_BRACE) return i + 1
      if (c !== COMMA) fail()
      i = this.ws(i + 1)
    }
  }

  /** An array from its `[`; `onElement(value)` for each element. Returns where it ends. */
  array(i: number, depth: number, onElement: OnElement | null): number {
    if (depth > MAX_DEPTH) fail()
    i = this.ws(i + 1)
    if (this.bytes[i] === CLOSE_BRACKET) return i + 1
    for (;;) {
      const start = i
      i = this.value(i, depth)
      onElement?.(start, i)
      i = this.ws(i)
      const c = this.bytes[i]
      if (c === CLOSE_BRACKET) return i + 1
      if (c !== COMMA) fail()
      i = this.ws(i + 1)
    }
  }
}

/** A BPE `tokenizer.json` walked by scanTokenizerJson. */
export interface ScannedTokenizer {
  /** The file parsed with `model.vocab` as `{}` and `model.merges` as `[]`. */
  rest: Json
  bytes: Uint8Array
  vocab: Span
  merges: Span
}

/**
 * Validates `bytes` as JSON and parses all of it but the BPE model's vocabulary and merges; null
 * when the file is not JSON this walk accepts or not a BPE model with one vocabulary object and
 * one merge list (the caller then parses the whole file).
 */
export function scanTokenizerJson(bytes: Uint8Array): ScannedTokenizer | null {
  // Valid UTF-8 only: then a key's bytes and its decoded text stand for each other one to one.
  if (!isUtf8(bytes)) return null
  try {
    const walk = new Walk(bytes)
    const models: Span[] = []
    const start = walk.ws(0)
    if (bytes[start] !== OPEN_BRACE) return null
    let end = walk.object(start, 1, (ks, ke, keyEscaped, vs, ve) => {
      const key = { start: ks, end: ke }
      if (keyEscaped) {
        if (decodeKey(bytes, key, true) === 'model') fail()
      } else if (isAscii(bytes, key, 'model')) models.push({ start: vs, end: ve })
    })
    end = walk.ws(end)
    if (end !== bytes.length || models.length !== 1) return null
    const model = models[0]!
    if (bytes[model.start] !== OPEN_BRACE) return null
    const vocab: Span[] = []
    const merges: Span[] = []
    walk.object(model.start, 2, (ks, ke, keyEscaped, vs, ve) => {
      const key = { start: ks, end: ke }
      const value = { start: vs, end: ve }
      const name = keyEscaped ? decodeKey(bytes, key, true) : null
      if (name === 'vocab' || name === 'merges') fail()
      if (isAscii(bytes, key, 'vocab')) vocab.push(value)
      else if (isAscii(bytes, key, 'merges')) merges.push(value)
    })
    if (vocab.length !== 1 || merges.length !== 1) return null
    const v = vocab[0]!
    const m = merges[0]!
    if (bytes[v.start] !== OPEN_BRACE || bytes[m.start] !== OPEN_BRACKET) return null
    const [first, second] = v.start < m.start ? [v, m] : [m, v]
    const text = Buffer.concat([
      bytes.subarray(0, first.start),
      Buffer.from(first === v ? '{}' : '[]'),
      bytes.subarray(first.end, second.start),
      Buffer.from(second === v ? '{}' : '[]'),
      bytes.subarray(second.end)
    ]).toString('utf8')
    const rest: unknown = JSON.parse(text)
    if (!isPlainObject(rest) || !isPlainObject(rest.model) || rest.model.type !== 'BPE') return null
    return { rest, bytes, vocab: v, merges: m }
  } catch (err) {
    if (err instanceof NotScanned || err instanceof SyntaxError) return null
    throw err
  }
}

/** Whether the string `key` (bytes with quotes, no escapes) is the ASCII text `word`. */
function isAscii(bytes: Uint8Array, key: Span, word: string): boolean {
  if (key.end - key.start !== word.length + 2) return false
  for (let k = 0; k < word.length; k++) {
    if (bytes[key.start + 1 + k] !== word.charCodeAt(k)) return false
  }
  return true
}

/** A string's text, decoded as the whole file would be (utf8, then JSON.parse for escapes). */
export function decodeKey(bytes: Uint8Array, key: Span, escaped: boolean): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (!escaped) return buf.toString('utf8', key.start + 1, key.end - 1)
  return JSON.parse(buf.toString('utf8', key.start, key.end)) as string
}

/**
 * Visits each vocabulary entry in file order: the key's bytes with quotes [keyStart, keyEnd),
 * whether it holds an escape, and its id when the value is a number (else undefined: the lookup
 * skips those). Returns false (after visiting them all) when a key occurs twice, where the parsed
 * file would keep only the last value: the caller must not use the visits then.
 */
export function forEachVocabEntry(
  scanned: ScannedTokenizer,
  visit: (keyStart: number, keyEnd: number, escaped: boolean, id: number | undefined) => void
): boolean {
  const { bytes } = scanned
  const walk = new Walk(bytes)
  // Two independent 32-bit hashes of each key's text (as UTF-8 bytes), 53 bits together: a
  // repeat means a repeated key (or, about once in 10^5 files of a million keys, a collision:
  // then the whole file is parsed, as for a repeat).
  let hashes = new Float64Array(1 << 16)
  let count = 0
  walk.object(scanned.vocab.start, 1, (ks, ke, escaped, vs, ve) => {
    let id: number | undefined
    const c = bytes[vs]!
    if (c === MINUS || isDigit(c)) {
      let n = 0
      let plain = ve - vs <= 15
      for (let k = vs; plain && k < ve; k++) {
        const d = bytes[k]!
        if (isDigit(d)) n = n * 10 + (d - 0x30)
        else plain = false
      }
      id = plain ? n : Number(Buffer.from(bytes.subarray(vs, ve)).toString('latin1'))
    }
    let h1 = 0x811c9dc5
    let h2 = 0x01000193
    if (escaped) {
      for (const x of Buffer.from(decodeKey(bytes, { start: ks, end: ke }, true), 'utf8')) {
        h1 = Math.imul(h1 ^ x, 0x01000193)
        h2 = Math.imul(h2 + x, 0x5bd1e995) ^ (h2 >>> 15)
      }
    } else {
      for (let k = ks + 1; k < ke - 1; k++) {
        const x = bytes[k]!
        h1 = Math.imul(h1 ^ x, 0x01000193)
        h2 = Math.imul(h2 + x, 0x5bd1e995) ^ (h2 >>> 15)
      }
    }
    if (count === hashes.length) {
      const grown = new Float64Array(2 * count)
      grown.set(hashes)
      hashes = grown
    }
    hashes[count++] = (h1 >>> 0) * 0x200000 + (h2 & 0x1fffff)
    visit(ks, ke, escaped, id)
  })
  const sorted = hashes.subarray(0, count).sort()
  for (let k = 1; k < count; k++) if (sorted[k] === sorted[k - 1]) return false
  return true
}

/**
 * Visits each element of the merge list in file order, with the first two elements of an element
 * that is an array (-1 where it has fewer; `first`/`second` are [start, end) pairs).
 */
export function forEachMerge(
  scanned: ScannedTokenizer,
  visit: (start: number, end: number, pair: Int32Array | null) => void
): void {
  const { bytes } = scanned
  const walk = new Walk(bytes)
  // [firstStart, firstEnd, secondStart, secondEnd], reused.
  const pair = new Int32Array(4)
  let seen = 0
  const onInner: OnElement = (s, e) => {
    if (seen < 2) {
      pair[2 * seen] = s
      pair[2 * seen + 1] = e
    }
    seen++
  }
  walk.array(scanned.merges.start, 1, (start, end) => {
    if (bytes[start] !== OPEN_BRACKET) return visit(start, end, null)
    pair.fill(-1)
    seen = 0
    walk.array(start, 2, onInner)
    visit(start, end, pair)
  })
}
