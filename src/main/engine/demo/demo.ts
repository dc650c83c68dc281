/**
 * The built-in demo group, generated deterministically in TypeScript (docs/demo-lens.md explains
 * the construction). Its weights are built, not trained, so that the explanation of a word names
 * that word and the reconstruction error says whether it does.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { referenceResiduals } from '../graph/reference'
import {
  BASE_GRAPH_VERSION,
  type LayerWeights,
  type TransformerWeights
} from '../graph/transformer'
import { Rng } from '../random'
import { defaultCacheDir } from '../paths'
import { writeBundle, type LensSpec } from '../bundle/write'
import { wordLevelTokenizer } from './tokenizer'
import {
  DEMO_CONTENT_WORDS,
  DEMO_FUNCTION_WORDS,
  DEMO_PUNCTUATION,
  DEMO_SENTENCES,
  DEMO_SPECIALS
} from './vocabulary'
import { createLogger } from '../../platform/logger'

const log = createLogger('engine')

export const DEMO_GROUP_ID = 'demo-words'
/** Bumped whenever the construction changes; a cached demo with another stamp is rebuilt. */
export const DEMO_VERSION = 4

/** Residual layout (d = 128): content, copy channel, marker, sink, misc. */
export const DEMO_LAYOUT = {
  d: 128,
  heads: 2,
  layers: 4,
  ffn: 32,
  content: [0, 48] as const,
  copy: [48, 96] as const,
  marker: 96,
  sink: 97,
  misc: [98, 128] as const,
  maxPositions: 512
}

const C = DEMO_LAYOUT
const CONTENT = C.content[1] - C.content[0]
/** Scale of the mixing head (a little context in every residual). */
const MIX = 0.015
/** Copy head output gain into the copy channel. */
const COPY_GAIN = 1
/** Marker magnitude the decoder projection writes at the activation slot. */
const MARKER = 4
/** Attention score for the marker (at unit-normalised strength 10) and the sink. */
const MARKER_KEY = 2.4
const SINK_KEY = 0.65
/** Unembedding gain on the copy channel. */
const UNEMBED_GAIN = 0.8
/**
 * End of turn (docs/demo-lens.md, "Chat replies"). By the last block <bos>'s normalised sink
 * feature has shrunk to ~5 (its copy channel has filled): this key scores it ~12, so a row rests
 * on <bos> at any chat length (SINK_KEY would give ~3.3 and fade after a few dozen tokens).
 */
const REST_KEY = 2.4
/** The resting head carries <bos>'s normalised sink feature (~5) × this into the row's sink dim. */
const REST_FLAG = 1
/** Unembedding weight from the normalised sink dim (the rest flag) to <end_of_turn>. */
const REST_TO_END = 0.36
/** Other specials (<eos> among them, which also ends a turn) are not written in base text. */
const REST_TO_SPECIALS = -0.5
/** <end_of_turn> read from the current token's content: after "." more, right after "model" less. */
const STOP_TO_END = 2
const OPEN_TO_END = -4
/** The mix head's value dimension, past its 48 content dims, that carries the rest flag. */
const FLAG_VALUE_DIM = CONTENT

export interface DemoModel {
  weights: TransformerWeights
  vocab: string[]
  bosId: number
  nullId: number
  tokenizer: object
  tokenizerConfig: object
}

function unitRandom(rng: Rng, n: number): Float64Array {
  const v = new Float64Array(n)
  let s = 0
  for (let i = 0; i < n; i++) {
    v[i] = rng.normal()
    s += v[i]! * v[i]!
  }
  const inv = 1 / Math.sqrt(s)
  for (let i = 0; i < n; i++) v[i]! *= inv
  return v
}

/** (rows, cols) with `perCol` random non-zeros per column: cheap for the reference pass. */
function sparseRandom(
  rng: Rng,
  rows: number,
  cols: number,
  perCol: number,
  std: number
): Float32Array {
  const w = new Float32Array(rows * cols)
  for (let c = 0; c < cols; c++)
    for (let k = 0; k < perCol; k++) w[rng.int(rows) * cols + c] = rng.normal() * std
  return w
}

export function demoModel(): DemoModel {
  const rng = new Rng(20261126)
  const { d, heads, layers, ffn } = C
  const dh = d / heads
  const words = [...DEMO_FUNCTION_WORDS, ...DEMO_CONTENT_WORDS, ...DEMO_PUNCTUATION]
  const vocab = [...DEMO_SPECIALS, ...words]
  const V = vocab.length
  const bosId = vocab.indexOf('<bos>')
  const nullId = vocab.indexOf('<pad>')

  // Token embeddings: words get a unit vector in the content subspace; <bos> is the attention
  // sink; other specials sit in the misc subspace with no content.
  const emb = new Float32Array(V * d)
  vocab.forEach((tok, v) => {
    if (tok === '<bos>') {
      emb[v * d + C.sink] = 1
    } else if ((DEMO_SPECIALS as readonly string[]).includes(tok)) {
      const u = unitRandom(rng, C.misc[1] - C.misc[0])
      u.forEach((x, i) => (emb[v * d + C.misc[0] + i] = x * 0.5))
    } else {
      const u = unitRandom(rng, CONTENT)
      u.forEach((x, i) => (emb[v * d + C.content[0] + i] = x))
    }
  })

  const qkvCols = 3 * d
  const layerWeights: LayerWeights[] = []
  for (let l = 0; l < layers; l++) {
    const qkv = new Float32Array(d * qkvCols)
    const qkvBias = new Float32Array(qkvCols)
    const out = new Float32Array(d * d)
    // Head 0 (mix): no query/key → uniform causal attention; value = content × MIX, written back
    // to content.
    for (let i = 0; i < CONTENT; i++) {
      qkv[(C.content[0] + i) * qkvCols + 2 * d + 0 * dh + i] = MIX
      out[(0 * dh + i) * d + C.content[0] + i] = 1
    }
    if (l === layers - 1) {
      // The rest flag: in the last block the mix head rests on <bos> when the text has one (base
      // text and chat: the analysed or generated rows) and carries <bos>'s sink feature into the
      // row's sink dim. Decoder rows rest on the slot instead (the marker outscores even a
      // sampled <bos>) and encoder rows mix uniformly as before: neither gets the flag. Written
      // in the last block, the flag is read only by the unembedding.
      qkvBias[0 * dh + 0] = Math.sqrt(dh)
      qkv[C.marker * qkvCols + d + 0 * dh + 0] = MARKER_KEY
      qkv[C.sink * qkvCols + d + 0 * dh + 0] = REST_KEY
      qkv[C.sink * qkvCols + 2 * d + 0 * dh + FLAG_VALUE_DIM] = REST_FLAG
      out[(0 * dh + FLAG_VALUE_DIM) * d + C.sink] = 1
    }
    // Head 1 (copy): constant query; keys read the marker strongly and the sink moderately, so
    // a row attends to the activation slot when there is one, else to <bos> (whose value is
    // empty), else (encoder: neither) uniformly. Value = content, written to the copy channel.
    qkvBias[1 * dh + 0] = Math.sqrt(dh)
    qkv[C.marker * qkvCols + d + 1 * dh + 0] = MARKER_KEY
    qkv[C.sink * qkvCols + d + 1 * dh + 0] = SINK_KEY
    for (let i = 0; i < CONTENT; i++) {
      qkv[(C.content[0] + i) * qkvCols + 2 * d + 1 * dh + i] = 1
      out[(1 * dh + i) * d + C.copy[0] + i] = COPY_GAIN
    }
    layerWeights.push({
      ln1Gain: new Float32Array(d).fill(1),
      ln1Bias: new Float32Array(d),
      qkv,
      qkvBias,
      out,
      outBias: new Float32Array(d),
      ln2Gain: new Float32Array(d).fill(1),
      ln2Bias: new Float32Array(d),
      // A near-zero MLP: present (the architecture has one) but it leaves the residual alone.
      up: sparseRandom(rng, d, ffn, 4, 0.05),
      upBias: new Float32Array(ffn),
      down: sparseRandom(rng, ffn, d, 1, 0.001),
      downBias: new Float32Array(d)
    })
  }
  // Words: the unembedding reads only the copy channel, logit(v) ∝ <E[v], copied content>.
  const unembed = new Float32Array(d * V)
  for (let v = 0; v < V; v++) {
    for (let i = 0; i < CONTENT; i++)
      unembed[(C.copy[0] + i) * V + v] = emb[v * d + C.content[0] + i]! * UNEMBED_GAIN
  }
  // Chat replies end: the rest flag raises <end_of_turn> in base text (never in the decoder, whose
  // rows rest on the slot), "." makes it near certain, and the first reply token (read at "model")
  // is rarely <end_of_turn>, so replies are a few words long.
  const endOfTurn = vocab.indexOf('<end_of_turn>')
  const fullStop = vocab.indexOf('.')
  const roleModel = vocab.indexOf('model')
  unembed[C.sink * V + endOfTurn] = REST_TO_END
  for (const special of DEMO_SPECIALS) {
    if (special !== '<end_of_turn>') unembed[C.sink * V + vocab.indexOf(special)] = REST_TO_SPECIALS
  }
  for (let i = 0; i < CONTENT; i++) {
    const c = C.content[0] + i
    unembed[c * V + endOfTurn] =
      STOP_TO_END * emb[fullStop * d + c]! + OPEN_TO_END * emb[roleModel * d + c]!
  }
  const weights: TransformerWeights = {
    dims: {
      hiddenSize: d,
      layers,
      heads,
      vocabSize: V,
      ffnSize: ffn,
      maxPositions: C.maxPositions
    },
    embeddingScale: 1,
    tokenEmbedding: emb,
    positionEmbedding: new Float32Array(C.maxPositions * d),
    layers: layerWeights,
    finalGain: new Float32Array(d).fill(1),
    finalBias: new Float32Array(d),
    unembedding: unembed
  }
  // Gemma's convention: the assistant's turns are `model` turns, so every role the template writes
  // (user, model, system) is a word of the vocabulary and none reaches the model as <unk>.
  const chatTemplate =
    "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}" +
    "<start_of_turn>{{ role }} {{ message['content'] }}<end_of_turn>{% endfor %}" +
    '{% if add_generation_prompt %}<start_of_turn>model {% endif %}'
  const { tokenizer, tokenizerConfig } = wordLevelTokenizer([...DEMO_SPECIALS], words, {
    chat_template: chatTemplate,
    end_of_turn_tokens: ['<end_of_turn>'],
    additional_special_tokens: ['<start_of_turn>', '<end_of_turn>']
  })
  return { weights, vocab, bosId, nullId, tokenizer, tokenizerConfig }
}

/** Ids as the demo tokenizer makes them (lowercase words and punctuation, <bos> first). */
export function demoIds(vocab: string[], text: string): number[] {
  const unk = vocab.indexOf('<unk>')
  const pieces = text.toLowerCase().match(/\w+|[^\w\s]+/g) ?? []
  return [
    vocab.indexOf('<bos>'),
    ...pieces.map((p) => (vocab.includes(p) ? vocab.indexOf(p) : unk))
  ]
}

function miscRows(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n * C.d)
  for (let r = 0; r < n; r++) {
    const u = unitRandom(rng, C.misc[1] - C.misc[0])
    u.forEach((x, i) => (out[r * C.d + C.misc[0] + i] = x * 0.5))
  }
  return out
}

/** Ridge least squares: W (p+1, q) minimising ‖[X 1]·W − Y‖² + λ‖W‖². */
function ridge(X: Float64Array[], Y: Float64Array[], lambda: number): Float64Array[] {
  const p = X[0]!.length + 1
  const q = Y[0]!.length
  const A = Array.from({ length: p }, () => new Float64Array(p))
  const B = Array.from({ length: p }, () => new Float64Array(q))
  X.forEach((x0, n) => {
    const x = Float64Array.from([...x0, 1])
    const y = Y[n]!
    for (let i = 0; i < p; i++) {
      const xi = x[i]!
      if (xi === 0) continue
      for (let j = 0; j < p; j++) A[i]![j]! += xi * x[j]!
      for (let j = 0; j < q; j++) B[i]![j]! += xi * y[j]!
    }
  })
  for (let i = 0; i < p - 1; i++) A[i]![i]! += lambda
  A[p - 1]![p - 1]! += 1e-9
  // Gauss–Jordan with partial pivoting (p is ~130: trivial).
  for (let c = 0; c < p; c++) {
    let piv = c
    for (let r = c + 1; r < p; r++) if (Math.abs(A[r]![c]!) > Math.abs(A[piv]![c]!)) piv = r
    ;[A[c], A[piv]] = [A[piv]!, A[c]!]
    ;[B[c], B[piv]] = [B[piv]!, B[c]!]
    const inv = 1 / A[c]![c]!
    for (let j = 0; j < p; j++) A[c]![j]! *= inv
    for (let j = 0; j < q; j++) B[c]![j]! *= inv
    for (let r = 0; r < p; r++) {
      if (r === c) continue
      const f = A[r]![c]!
      if (f === 0) continue
      for (let j = 0; j < p; j++) A[r]![j]! -= f * A[c]![j]!
      for (let j = 0; j < q; j++) B[r]![j]! -= f * B[c]![j]!
    }
  }
  return B
}

interface DemoLensPlan {
  id: string
  name: string
  layer: number
  T: number
  patchLayers: number
  outputLayer: number
}

const LENSES: DemoLensPlan[] = [
  {
    id: 'words-l1',
    name: 'Words L1 (T=6, patch 2 layers)',
    layer: 1,
    T: 6,
    patchLayers: 2,
    outputLayer: 1
  },
  {
    id: 'words-l3',
    name: 'Words L3 (T=8, patch input only)',
    layer: 3,
    T: 8,
    patchLayers: 1,
    outputLayer: 3
  }
]

/**
 * Builds one lens: the projection copies the content of A and adds the marker; the encoder
 * head is fitted by ridge regression from encoder outputs on sampled explanations (mostly the
 * word itself, some context words, some random words) to the true activations.
 */
function demoLens(model: DemoModel, plan: DemoLensPlan, seed: number): LensSpec {
  const rng = new Rng(seed)
  const { weights, vocab } = model
  const d = C.d
  const np = plan.patchLayers
  const proj = new Float32Array(np * d * d)
  const bias = new Float32Array(np * d)
  for (let l = 0; l < np; l++) {
    for (let i = C.content[0]; i < C.content[1]; i++) proj[(l * d + i) * d + i] = 1
    bias[l * d + C.marker] = MARKER
  }
  const decoderRows = 5
  const embedPos = 2
  const decoderPrefix = miscRows(rng, decoderRows)
  decoderPrefix.fill(0, embedPos * d, (embedPos + 1) * d)
  const encoderPrefix = miscRows(rng, 2)

  const wordIds = vocab
    .map((_, i) => i)
    .filter((i) => !(DEMO_SPECIALS as readonly string[]).includes(vocab[i]!))
  const X: Float64Array[] = []
  const Y: Float64Array[] = []
  const encoderRows = (expl: number[]): Float64Array => {
    const rows = new Float64Array((2 + expl.length) * d)
    rows.set(encoderPrefix, 0)
    expl.forEach((id, j) => {
      for (let i = 0; i < d; i++) rows[(2 + j) * d + i] = weights.tokenEmbedding[id * d + i]!
    })
    return rows
  }
  for (const sentence of DEMO_SENTENCES) {
    const ids = demoIds(vocab, sentence)
    const inputs = new Float64Array(ids.length * d)
    ids.forEach((id, t) => {
      for (let i = 0; i < d; i++) inputs[t * d + i] = weights.tokenEmbedding[id * d + i]!
    })
    const acts = referenceResiduals(weights, inputs, plan.layer)[plan.layer]!
    for (let t = 1; t < ids.length; t++) {
      const target = acts.slice(t * d, (t + 1) * d)
      for (let variant = 0; variant < 2; variant++) {
        const expl = Array.from({ length: plan.T }, () => {
          const u = rng.uniform()
          if (u < 0.6) return ids[t]!
          if (u < 0.85) return ids[1 + rng.int(t)]!
          return wordIds[rng.int(wordIds.length)]!
        })
        const hidden = referenceResiduals(weights, encoderRows(expl), plan.outputLayer)[
          plan.outputLayer
        ]!
        X.push(hidden.slice((expl.length + 1) * d, (expl.length + 2) * d))
        Y.push(target)
      }
    }
  }
  const W = ridge(X, Y, 1e-3)
  const head = new Float32Array(d * d)
  const headBias = new Float32Array(d)
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) head[i * d + j] = W[i]![j]!
  for (let j = 0; j < d; j++) headBias[j] = W[d]![j]!
  return {
    id: plan.id,
    name: plan.name,
    description:
      'Constructed demo lens: the explanation of a word names the word (docs/demo-lens.md).',
    layer: plan.layer,
    explanationTokens: plan.T,
    decoder: { prefix: decoderPrefix, embedPos, patchLayers: np, weights: proj, bias },
    encoder: {
      outputLayer: plan.outputLayer,
      prefix: encoderPrefix,
      addCurrentToken: false,
      head: { weight: head, bias: headBias }
    }
  }
}

/** The demo's lenses as written (tests compare against them with the float64 reference). */
export function demoLensSpecs(model: DemoModel = demoModel()): LensSpec[] {
  return LENSES.map((plan, i) => demoLens(model, plan, 1000 + i))
}

/** Writes the demo group into `dir`. */
export async function writeDemoBundle(dir: string): Promise<void> {
  const model = demoModel()
  await writeBundle(dir, {
    group: {
      id: DEMO_GROUP_ID,
      name: 'Demo: words',
      description: 'A tiny constructed model whose lens explanations name the analysed word.'
    },
    tokenizer: model.tokenizer,
    tokenizerConfig: model.tokenizerConfig,
    bosTokenId: model.bosId,
    nullTokenId: model.nullId,
    base: { id: 'demo-base', name: 'Demo base (d=128, 4 layers)', weights: model.weights },
    lenses: demoLensSpecs(model),
    externalData: false
  })
  await fs.writeFile(
    path.join(dir, 'demo-version.json'),
    JSON.stringify({ demoVersion: DEMO_VERSION, baseGraphVersion: BASE_GRAPH_VERSION }) + '\n'
  )
}

export { defaultCacheDir }

async function isCurrent(dir: string): Promise<boolean> {
  try {
    const stamp = JSON.parse(await fs.readFile(path.join(dir, 'demo-version.json'), 'utf8')) as {
      demoVersion?: number
      baseGraphVersion?: number
    }
    // A demo written by another graph builder lacks roles or differs in them: rebuilt.
    if (stamp.demoVersion !== DEMO_VERSION || stamp.baseGraphVersion !== BASE_GRAPH_VERSION)
      return false
    await fs.access(path.join(dir, 'manifest.json'))
    return true
  } catch {
    return false
  }
}

/**
 * Returns the demo group's folder, generating it when missing or stale. Safe when several
 * processes call it at once: each writes a private temp folder and renames it into place; the
 * stamp file is written last, so a half-written folder never looks current.
 */
export async function ensureDemoBundle(cacheDir: string = defaultCacheDir()): Promise<string> {
  const dir = path.join(cacheDir, 'bundles', `${DEMO_GROUP_ID}-v${DEMO_VERSION}`)
  if (await isCurrent(dir)) return dir
  await fs.mkdir(path.dirname(dir), { recursive: true })
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`
  try {
    await writeDemoBundle(tmp)
    try {
      await fs.rename(tmp, dir)
    } catch (err) {
      // Another process won the race (ENOTEMPTY/EEXIST), or a stale folder is in the way.
      if (await isCurrent(dir)) return dir
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err
      const old = `${dir}.old-${process.pid}-${Date.now()}`
      // Gone already (another process moved it): the rename below decides.
      await fs.rename(dir, old).catch(log.failed(`moving the stale ${dir} aside`, 'debug'))
      await fs.rename(tmp, dir).catch(async (e: unknown) => {
        if (!(await isCurrent(dir))) throw e
      })
      await fs.rm(old, { recursive: true, force: true })
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true })
  }
  return dir
}
