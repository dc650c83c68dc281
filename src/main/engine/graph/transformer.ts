/**
 * The base-model graph: one ONNX model that serves every role the engine needs (activations,
 * whole-batch generation, encoder, KL, logit lens, generation), selected by the `role` input, so
 * one session per device holds the weights once for every lens of a group. The architecture is
 * any ArchSpec (src/main/engine/arch): the demo and synthetic bundles' pre-norm GPT and the
 * Hugging Face families; the engine relies only on the input/output contract in
 * docs/bundle-format.md, not on these internals.
 *
 * Two ways to write one: `buildBaseModel` from weights in memory (demo, synthetic, tests), and
 * `planBaseModel`, which lays out every weight in `<model>.onnx.data` (64-byte aligned) and returns
 * the graph plus that layout, for an importer to fill tensor by tensor without holding the model.
 */
import { ExternalWriter, GraphBuilder, encodeModel, type ExternalRef, type Weight } from './builder'
import { buildGenerateRole, type DecoderKit } from '../generation/role'
import {
  buildSampler,
  buildSharedSampler,
  dividedLogits,
  vocabularyBlock
} from '../generation/sampler'
import { checkArchSpec, preNormGptSpec, rotary, type ArchSpec } from '../arch/spec'
import { archWeights, elementCount, layerWeightName, type WeightInfo } from '../arch/weights'
import { ropeInverseFrequencies } from '../arch/rope'
import {
  addPositions,
  beginPass,
  block,
  cachedBlock,
  embedIds,
  finalNorm,
  logits,
  replacedBlock,
  replacedCtx,
  prefixedCache,
  unembed,
  type ArchCtx,
  type ArchNames,
  type Kv
} from './blocks'

/**
 * Bumped whenever the graph written here changes its contract or numerics (2: decode reads
 * patch_index, KL unembeds only the gathered rows; 3: any ArchSpec, one sampler for decode and
 * generate; 4: the decode role runs the prefix once per position; 5: the patch and patchGenerate
 * roles, forced explanation tokens in decode; 6: the decode steps attend to the per-position prefix
 * cache and carry only each row's own tokens; 7: the decode role unembeds and samples its rows in
 * chunks of at most 64 rows, so one chunk's vocabulary-wide temporaries are alive at a
 * time; 8: decode rows laid out in runs of K per position attend to the prefix per position, never
 * copied to the rows, and every row's own cache grows by one token a step; 9: the tanh GELU written
 * in the form ONNX Runtime fuses into one kernel, the same function to float32 rounding, and the
 * decode's step 0 drawn from one CDF per position, the same ids; 10: the decode draws each later
 * token at the start of the step loop's next iteration, the last one after the loop, so one copy
 * of the rows' caches is alive while it samples, the same ids, and the encode role runs its
 * prefix once for the batch, the rows attending to its keys and values; 11: the decode's step
 * loop carries its caches out of its last iteration with no tokens, the same ids; 12: the decode
 * and generate roles draw in two levels, vocabulary blocks then a block's tokens, so the decode
 * unembeds up to `decodeSampleRows` rows at once, different ids). Generated
 * bundles cached with another value are regenerated (synthetic.ts and the demo's stamp); a group
 * imported before keeps the graph it was written with, which has the same inputs and outputs.
 */
export const BASE_GRAPH_VERSION = 12

export const ROLE = {
  acts: 0,
  decode: 1,
  encode: 2,
  kl: 3,
  logitLens: 4,
  generate: 5,
  patch: 6,
  patchGenerate: 7
} as const
export type Role = keyof typeof ROLE

/**
 * Per role, whether the model's final-logit softcap (Gemma-2) applies: the orig model's own
 * predictions keep it (KL, logit lens — top-k ids are unchanged by the monotone cap — and
 * continuations); the lens decoder switches it off, as the predecessor's decoder did.
 */
export const SOFTCAP_ROLES = {
  decode: false,
  kl: true,
  logitLens: true,
  generate: true,
  patch: true,
  patchGenerate: true
} as const

export interface TransformerDims {
  hiddenSize: number
  layers: number
  heads: number
  vocabSize: number
  ffnSize: number
  maxPositions: number
}

/** The pre-norm GPT's weights (demo and synthetic bundles). */
export interface LayerWeights {
  ln1Gain: Float32Array
  ln1Bias: Float32Array
  /** (d, 3d): columns are [q | k | v], head h uses columns h*dh..(h+1)*dh of each. */
  qkv: Float32Array
  qkvBias: Float32Array
  /** (d, d) */
  out: Float32Array
  outBias: Float32Array
  ln2Gain: Float32Array
  ln2Bias: Float32Array
  /** (d, f) */
  up: Float32Array
  upBias: Float32Array
  /** (f, d) */
  down: Float32Array
  downBias: Float32Array
}

export interface TransformerWeights {
  dims: TransformerDims
  /** Multiplier applied to token-embedding rows (e.g. sqrt(d) for Gemma); 1 for GPT-2. */
  embeddingScale: number
  /** (V, d) */
  tokenEmbedding: Float32Array
  /** (maxPositions, d) */
  positionEmbedding: Float32Array
  layers: LayerWeights[]
  finalGain: Float32Array
  finalBias: Float32Array
  /** (d, V) */
  unembedding: Float32Array
}

/** Canonical weights by initializer name (src/main/engine/arch/weights.ts). */
export type ArchWeightMap = ReadonlyMap<string, Float32Array>

/** The pre-norm GPT as an ArchSpec and its weights under the canonical names. */
export function preNormGpt(w: TransformerWeights): { spec: ArchSpec; weights: ArchWeightMap } {
  const spec = preNormGptSpec({ ...w.dims, embeddingScale: w.embeddingScale })
  const m = new Map<string, Float32Array>([
    ['tok_emb', w.tokenEmbedding],
    ['pos_emb', w.positionEmbedding],
    ['lnf.gain', w.finalGain],
    ['lnf.bias', w.finalBias],
    ['unembed', w.unembedding]
  ])
  w.layers.forEach((lw, l) => {
    for (const [part, data] of Object.entries(lw) as [keyof LayerWeights, Float32Array][]) {
      m.set(layerWeightName(l, part), data)
    }
  })
  return { spec, weights: m }
}

/** An If node: `then` builds the branch from a subgraph builder; `else` passes `x` through. */
function ifLayer(
  g: GraphBuilder,
  cond: string,
  x: string,
  then: (b: GraphBuilder) => string
): string {
  return ifLayers(g, cond, [x], (b) => [then(b)])[0]!
}

/** `ifLayer` over several tensors: `then` returns one output per input, `else` passes them all through. */
function ifLayers(
  g: GraphBuilder,
  cond: string,
  xs: string[],
  then: (b: GraphBuilder) => string[]
): string[] {
  const tb = g.sub()
  for (const out of then(tb)) {
    const name = tb.fresh('then_out')
    tb.opTo('Identity', [out], [name])
    tb.output(name, 'float32')
  }
  const eb = g.sub()
  for (const x of xs) {
    const name = eb.fresh('else_out')
    eb.opTo('Identity', [x], [name])
    eb.output(name, 'float32')
  }
  return g.opN('If', [cond], xs.length, {
    then_branch: tb.toGraph('then'),
    else_branch: eb.toGraph('else')
  })
}

function dim(g: GraphBuilder, x: string, axis: number): string {
  return g.op('Shape', [x], { start: axis, end: axis + 1 })
}

function scalarDim(g: GraphBuilder, x: string, axis: number): string {
  return g.op('Squeeze', [dim(g, x, axis), g.constI64([0])])
}

/** Role acts: input_ids (1,S), layer L → residual after block L, (S, d). */
function roleActs(g: GraphBuilder, c: ArchCtx): [string, string] {
  const s = scalarDim(g, 'input_ids', 1)
  const { pass, rows } = beginPass(g, c, g.scalarI64(0), s)
  let x = addPositions(g, c, embedIds(g, c, 'input_ids'), rows)
  for (let l = 0; l < c.spec.layers; l++) {
    const cond = g.op('LessOrEqual', [g.scalarI64(l), 'layer'])
    const xIn = x
    x = ifLayer(g, cond, xIn, (b) => block(b, c, l, xIn, pass).x)
  }
  return [g.op('Squeeze', [x, g.constI64([0])]), g.constI64([], [0])]
}

/**
 * Role encode: rows [prefix_embeds | E[ids]·scale | suffix_embeds], last row += last_add, at
 * positions 0..n−1; output the residual after block `layer` at the last position, (B, d). The
 * prefix is the same for every row and causally before the rest, so its hidden states and keys and
 * values are the same in every row: the P prefix rows pass once for the batch as one (1, P)
 * sequence through blocks 0..layer, and the B rows' m = ids + suffix rows, at positions
 * P..P+m−1, attend in each block to that one prefix's keys and values (one product for the whole
 * batch, the rows in one run: `prefixedCache` with Bp = 1, never copied to the rows) and then to
 * their own causal keys. The prefix's and the rows' shares of each attention output are summed
 * separately, so the result rounds differently in the last place from running every row whole
 * (graph versions ≤ 9; docs/benchmarks.md "At real shapes"). With no prefix (P = 0) one zero row
 * stands in for it, its keys masked for every row, so it adds exactly nothing. m ≥ 1 (the host
 * checks it: BaseModel.encode).
 */
function roleEncode(g: GraphBuilder, c: ArchCtx): [string, string] {
  const d = c.spec.hiddenSize
  const p = scalarDim(g, 'prefix_embeds', 0)
  // max(P, 1) prefix rows: prefix_embeds, or one zero row in place of an empty prefix.
  const held = g.op('Max', [p, g.scalarI64(1)])
  const prefix = g.op('Slice', [
    g.op('Concat', ['prefix_embeds', g.constF32(new Array<number>(d).fill(0), [1, d])], {
      axis: 0
    }),
    g.constI64([0]),
    g.op('Unsqueeze', [held, g.constI64([0])]),
    g.constI64([0])
  ])
  const suffix = g.op('Expand', [
    g.op('Unsqueeze', ['suffix_embeds', g.constI64([0])]),
    g.op('Concat', [dim(g, 'ids', 0), dim(g, 'suffix_embeds', 0), g.constI64([d])], { axis: 0 })
  ])
  const rowsIn = g.op('Concat', [embedIds(g, c, 'ids'), suffix], { axis: 1 })
  const m = scalarDim(g, rowsIn, 1)
  const before = beginPass(g, c, g.scalarI64(0), held)
  let xp = addPositions(g, c, g.op('Unsqueeze', [prefix, g.constI64([0])]), before.rows)
  const after = beginPass(g, c, p, m, g.op('Sub', [p, held]))
  const lastAbs = g.op('Sub', [g.op('Add', [p, m]), g.scalarI64(1)])
  const isLast = g.op('Cast', [g.op('Equal', [after.rows, lastAbs])], { to: 1 })
  const addLast = g.op('Mul', [
    g.op('Unsqueeze', [isLast, g.constI64([1])]),
    g.op('Unsqueeze', ['last_add', g.constI64([0])])
  ])
  let x = addPositions(g, c, g.op('Add', [rowsIn, addLast]), after.rows)
  for (let l = 0; l < c.spec.layers; l++) {
    const cond = g.op('LessOrEqual', [g.scalarI64(l), 'layer'])
    const [xpIn, xIn] = [xp, x]
    ;[xp, x] = ifLayers(g, cond, [xpIn, xIn], (sb) => {
      const pre = block(sb, c, l, xpIn, before.pass)
      const cache = prefixedCache({ k: pre.k, v: pre.v }, null, null)
      return [pre.x, cachedBlock(sb, c, l, xIn, after.pass, cache).x]
    }) as [string, string]
  }
  const hidden = g.op('Gather', [x, g.op('Sub', [m, g.scalarI64(1)])], { axis: 1 })
  return [hidden, g.constI64([], [0])]
}

/** Role logit lens: vectors (R, d) → final norm → unembed → top `top_k` ids (R, k). */
function roleLogitLens(g: GraphBuilder, c: ArchCtx): [string, string] {
  const z = logits(g, c, 'vectors', SOFTCAP_ROLES.logitLens)
  const [values, indices] = g.opN('TopK', [z, g.op('Reshape', ['top_k', g.constI64([1])])], 2, {
    axis: -1,
    largest: 1,
    sorted: 1
  })
  return [values!, indices!]
}

/**
 * Role KL: input_ids (1,S), positions (R), vectors (R,d), layer L → KL(P‖Q) per row (R): P the
 * next-token distribution at positions[r] from the unmodified pass, Q the same with vectors[r]
 * replacing the residual after block L at that position.
 */
function roleKl(g: GraphBuilder, c: ArchCtx): [string, string] {
  const s = scalarDim(g, 'input_ids', 1)
  const { pass, rows } = beginPass(g, c, g.scalarI64(0), s)
  let x = addPositions(g, c, embedIds(g, c, 'input_ids'), rows)
  const kv: Kv[] = []
  for (let l = 0; l < c.spec.layers; l++) {
    const r = block(g, c, l, x, pass)
    x = r.x
    kv.push({ k: r.k, v: r.v })
  }
  // Only the R rows P needs go through the final norm and the unembedding: the full (S, V)
  // logits would be gigabytes for a large vocabulary, once per chunk of rows.
  const atPositions = g.op('Gather', [g.op('Squeeze', [x, g.constI64([0])]), 'positions'])

  const ctx = replacedCtx(g, c, 'positions', s)
  let y = g.op('Unsqueeze', ['vectors', g.constI64([1])])
  for (let l = 0; l < c.spec.layers; l++) {
    const cond = g.op('Greater', [g.scalarI64(l), 'layer'])
    const yIn = y
    y = ifLayer(g, cond, yIn, (b) => replacedBlock(b, c, l, yIn, { ...ctx, kv: kv[l]! }))
  }
  // P's and Q's rows in one unembedding (2R, V): one pass over the (V, d) matrix, not two.
  const rowsPQ = g.op('Concat', [atPositions, g.op('Squeeze', [y, g.constI64([1])])], { axis: 0 })
  const [lp, lq] = g.opN(
    'Split',
    [g.op('LogSoftmax', [logits(g, c, rowsPQ, SOFTCAP_ROLES.kl)], { axis: -1 })],
    2,
    { axis: 0 }
  )
  const kl = g.op(
    'ReduceSum',
    [g.op('Mul', [g.op('Exp', [lp!]), g.op('Sub', [lp!, lq!])]), g.constI64([1])],
    { keepdims: 0 }
  )
  return [kl, g.constI64([], [0])]
}

/**
 * The decode role's token at `step`: the row's forced id while step < forced_steps (the iterative
 * optimiser regenerates an explanation's tail after a kept prefix), else the sampled one. The
 * placeholder (forced_steps 0) selects the sample everywhere, so other callers get the same ids.
 */
function forcedOr(g: GraphBuilder, step: string, sampled: string): string {
  const last = g.op('Sub', [scalarDim(g, 'forced_ids', 1), g.scalarI64(1)])
  const forced = g.op('Gather', ['forced_ids', g.op('Min', [step, last])], { axis: 1 })
  return g.op('Where', [g.op('Less', [step, 'forced_steps']), forced, sampled])
}

/**
 * Floats of vocabulary-wide tensors one decode chunk may hold: what 64-row chunks of Gemma-3's
 * 262,144-entry vocabulary held with the whole-vocabulary draw (logits plus two of
 * probabilities, transpose and CDF alive at once: a scratch measurement of one chunk in an If
 * branch, 132 MiB at 64 rows; docs/benchmarks.md "Decode chunks from the two-level sampler").
 */
const DECODE_SAMPLE_FLOATS = 2 * 64 * 262_144

/**
 * Most decoder rows the decode role unembeds and samples at once, for a vocabulary of `vocab`.
 * The two-level draw (generation/sampler.ts) writes nothing vocabulary-wide but the logits, so a
 * chunk holds one B × V tensor: DECODE_SAMPLE_FLOATS ÷ V rows (Gemma-3 128, Qwen3 220, GPT-2
 * 667). A vocabulary the draw cannot split into blocks keeps the whole-vocabulary draw and its
 * 64 rows. Each chunk's unembedding prepares the whole tied (V, d) table again (a 64-row product
 * costs 0.4 of a 256-row one at Gemma-3, docs/benchmarks.md "At real shapes"), so fewer, larger
 * chunks are faster.
 */
export function decodeSampleRows(vocab: number): number {
  if (!vocabularyBlock(vocab)) return 64
  return Math.max(64, Math.floor(DECODE_SAMPLE_FLOATS / vocab))
}

/**
 * The decode role's (B,) ids for one step, sampled in ⌈B / per⌉ chunks of even size (per =
 * `decodeSampleRows`), chunk i holding rows ⌊i·B/n⌋ … ⌊(i+1)·B/n⌋ − 1 (`draw` appends the ids of
 * rows start..end, given as 1-D int64 bounds, to the chunk's graph). Every chunk has at least
 * ⌊B/n⌋ > 32 rows when n > 1, so none is a single row unless B is: one row takes ONNX Runtime's
 * matrix-vector kernel, which rounds differently from the multi-row GEMM, and the ids must not
 * depend on the chunking. Every other step of a draw is row by row, so the ids are bit for bit
 * those of one whole-batch draw.
 */
function sampleInChunks(
  g: GraphBuilder,
  perChunk: number,
  draw: (b: GraphBuilder, start: string, end: string) => string
): string {
  const rows = scalarDim(g, 'patch_index', 0)
  const per = g.scalarI64(perChunk)
  const chunks = g.op('Div', [g.op('Add', [rows, g.op('Sub', [per, g.scalarI64(1)])]), per])
  const body = g.sub()
  const iter = body.input(body.fresh('chunk'), 'int64', [])
  const condIn = body.input(body.fresh('cond_in'), 'bool', [])
  const idsIn = body.input(body.fresh('ids_in'), 'int64', null)
  const bound = (i: string): string =>
    body.op('Unsqueeze', [body.op('Div', [body.op('Mul', [i, rows]), chunks]), body.constI64([0])])
  const start = bound(iter)
  const end = bound(body.op('Add', [iter, body.scalarI64(1)]))
  const outputs: [string, 'bool' | 'int64', string][] = [
    [condIn, 'bool', 'cond_out'],
    [body.op('Concat', [idsIn, draw(body, start, end)], { axis: 0 }), 'int64', 'ids_out']
  ]
  for (const [value, type, hint] of outputs) {
    const name = body.fresh(hint)
    body.opTo('Identity', [value], [name])
    body.output(name, type)
  }
  return g.op('Loop', [chunks, '', g.constI64([], [0])], {
    body: body.toGraph(g.fresh('decode_chunks'))
  })
}

/** An If branch whose one output is `build`'s (B,) int64 ids. */
function idsSubgraph(
  g: GraphBuilder,
  name: string,
  build: (b: GraphBuilder) => string
): ReturnType<GraphBuilder['toGraph']> {
  const b = g.sub()
  const ids = b.fresh(name)
  b.opTo('Identity', [build(b)], [ids])
  b.output(ids, 'int64')
  return b.toGraph(g.fresh(name))
}

/** Rows start..end (1-D int64 bounds) of `x` along axis 0. */
function rowSlice(g: GraphBuilder, x: string, start: string, end: string): string {
  return g.op('Slice', [x, start, end, g.constI64([0])])
}

/**
 * Role decode: the whole batch generation in one run. The prefix runs once per analysed position
 * (Bp rows: prefix_embeds with patch_vectors[p, l] overwriting the residual at embed_pos before
 * every block l < Np), since the K rows of a position (best-of-K) share it exactly; its KV cache
 * and its last logits are then handed to the B rows through `patch_index` (row r continues
 * position patch_index[r]), so the host never copies a projection K times and the prefix is never
 * recomputed K times. Step 0 samples from those logits; a Loop of T − 1 single-token steps follows,
 * each row carrying only its own tokens' keys and values and reading its position's prefix cache,
 * which stays one copy per position. Sampling is inverse-CDF from `uniforms` at `temperature`
 * (0 = argmax), `decodeSampleRows` rows at a time.
 */
function roleDecode(g: GraphBuilder, c: ArchCtx): [string, string] {
  const { layers, hiddenSize: d } = c.spec
  const bp = dim(g, 'patch_vectors', 0)
  const steps = scalarDim(g, 'uniforms', 1)
  const p = scalarDim(g, 'prefix_embeds', 0)
  const npatch = scalarDim(g, 'patch_vectors', 1)
  const lastPatch = g.op('Sub', [npatch, g.scalarI64(1)])

  // Prefill: one row per position.
  const prefix = g.op('Expand', [
    g.op('Unsqueeze', ['prefix_embeds', g.constI64([0])]),
    g.op('Concat', [bp, dim(g, 'prefix_embeds', 0), g.constI64([d])], { axis: 0 })
  ])
  const { pass, rows } = beginPass(g, c, g.scalarI64(0), p)
  let x = addPositions(g, c, prefix, rows)
  const atSlot = g.op('Unsqueeze', [g.op('Equal', [rows, 'embed_pos']), g.constI64([0, 2])])
  // Per position (Bp rows), never per rollout: the steps read it from the outer scope.
  const prefixKv: Kv[] = []
  for (let l = 0; l < layers; l++) {
    const use = g.op('And', [atSlot, g.op('Less', [g.scalarI64(l), npatch])])
    const idx = g.op('Min', [g.scalarI64(l), lastPatch])
    // (Bp, 1, d): this layer's vector of every position, a slice of the input (never B·Np·d).
    const vec = g.op('Unsqueeze', [
      g.op('Gather', ['patch_vectors', idx], { axis: 1 }),
      g.constI64([1])
    ])
    x = g.op('Where', [use, vec, x])
    const r = block(g, c, l, x, pass)
    x = r.x
    prefixKv.push({ k: r.k, v: r.v })
  }
  const hLast = g.op('Gather', [x, g.op('Sub', [p, g.scalarI64(1)])], { axis: 1 })
  // The prefix's last logits, one row per position (Bp, V). Step 0 draws every row from its
  // position's block masses, computed once per position, while the Bp positions' logits and
  // their division by T are no more than a chunk's; beyond that (few rollouts per position) each
  // chunk gathers its rows' copies. The ids are the same either way (buildSharedSampler).
  const vocab = c.spec.vocabSize
  const perChunk = decodeSampleRows(vocab)
  const zPrefix = logits(g, c, hLast, SOFTCAP_ROLES.decode)
  const u0 = g.op('Gather', ['uniforms', g.scalarI64(0)], { axis: 1 })
  const perPositionDraw = g.op('LessOrEqual', [
    scalarDim(g, 'patch_vectors', 0),
    g.scalarI64(Math.floor(perChunk / 2))
  ])
  const first = forcedOr(
    g,
    g.scalarI64(0),
    g.op('If', [perPositionDraw], {
      then_branch: idsSubgraph(g, 'first_by_position', (b) =>
        buildSharedSampler(b, {
          logits: zPrefix,
          index: 'patch_index',
          uniforms: u0,
          temperature: 'temperature',
          vocab
        })
      ),
      else_branch: idsSubgraph(g, 'first_by_row', (b) =>
        sampleInChunks(b, perChunk, (cb, start, end) =>
          buildSampler(cb, {
            logits: dividedLogits(
              cb.op('Gather', [zPrefix, rowSlice(cb, 'patch_index', start, end)], { axis: 0 })
            ),
            vocab,
            uniforms: rowSlice(cb, u0, start, end),
            temperature: 'temperature',
            topP: null
          })
        )
      )
    })
  )

  // Tokens 0..T−2 through the blocks (decodeSteps), each drawn as its iteration starts. When the
  // rows come in runs of K per position, as best-of-K lays them out (row r continues position
  // ⌊r / K⌋, B = Bp·K), they attend to the prefix per position; any other layout gathers the
  // prefix to the rows one layer at a time. The host makes the same test (decodeRowsInRuns,
  // graph/roleSubset.ts: the analysis roles' graph has the loop for rows in runs only).
  const more = g.op('Sub', [steps, g.scalarI64(1)])
  const b = scalarDim(g, 'patch_index', 0)
  // Both divisors at least 1: an integer division by zero would stop the process, not fail a run.
  const positions = g.op('Max', [scalarDim(g, 'patch_vectors', 0), g.scalarI64(1)])
  const perPosition = g.op('Max', [g.op('Div', [b, positions]), g.scalarI64(1)])
  const runs = g.op('Div', [g.op('Range', [g.scalarI64(0), b, g.scalarI64(1)]), perPosition])
  const offRun = g.op('Cast', [g.op('Not', [g.op('Equal', ['patch_index', runs])])], { to: 7 })
  const inRuns = g.op('And', [
    g.op('Equal', [g.op('Mul', [perPosition, scalarDim(g, 'patch_vectors', 0)]), b]),
    g.op('Equal', [g.op('ReduceSum', [offRun], { keepdims: 0 }), g.scalarI64(0)])
  ])
  const steps1 = (grouped: boolean): GraphBuilder =>
    decodeSteps(g, c, { prefixKv, first, more, p, grouped })
  const loopBranch = g.sub()
  const [drawn, hnLast] = [loopBranch.fresh('ids'), loopBranch.fresh('hn_last')]
  loopBranch.opTo('If', [inRuns], [drawn, hnLast], {
    then_branch: steps1(true).toGraph('decode_steps_by_position'),
    else_branch: steps1(false).toGraph('decode_steps_gathered')
  })
  // The last token, drawn after the loop from the last step's final-normed rows: the loop's caches
  // are gone by then.
  const lastId = forcedOr(loopBranch, more, sampleRows(loopBranch, c, hnLast, more))
  const all = loopBranch.fresh('ids_all')
  loopBranch.opTo(
    'Concat',
    [drawn, loopBranch.op('Unsqueeze', [lastId, loopBranch.constI64([0])])],
    [all],
    { axis: 0 }
  )
  loopBranch.output(all, 'int64')
  const onlyFirst = g.sub()
  const alone = onlyFirst.fresh('ids')
  onlyFirst.opTo('Unsqueeze', [first, onlyFirst.constI64([0])], [alone])
  onlyFirst.output(alone, 'int64')
  const ids = g.op('If', [g.op('Greater', [more, g.scalarI64(0)])], {
    then_branch: loopBranch.toGraph('decode_steps'),
    else_branch: onlyFirst.toGraph('decode_first_only')
  })
  return [g.constF32([], [0]), g.op('Transpose', [ids], { perm: [1, 0] })]
}

/** The (B,) ids at `step` (scalar int64 ≥ 1) drawn from the final-normed rows hn (B, d). */
function sampleRows(g: GraphBuilder, c: ArchCtx, hn: string, step: string): string {
  const u = g.op('Gather', ['uniforms', step], { axis: 1 })
  const vocab = c.spec.vocabSize
  return sampleInChunks(g, decodeSampleRows(vocab), (b, start, end) =>
    buildSampler(b, {
      // The logits are built in the sampler's branch, so the chunk's one vocabulary-wide tensor
      // is the unembedding's output. Without a softcap, logits / T = (rows / T) · tableᵀ: the
      // (rows, d) rows are divided instead, never a second (rows, V) tensor.
      logits: (lb, temperature) => {
        const rows = rowSlice(lb, hn, start, end)
        if (SOFTCAP_ROLES.decode && c.spec.finalLogitSoftcap !== null) {
          return dividedLogits(unembed(lb, c, rows, SOFTCAP_ROLES.decode))(lb, temperature)
        }
        const scaled = temperature ? lb.op('Div', [rows, temperature]) : rows
        return unembed(lb, c, scaled, SOFTCAP_ROLES.decode)
      },
      vocab,
      uniforms: rowSlice(b, u, start, end),
      temperature: 'temperature',
      topP: null
    })
  )
}

/**
 * The decode role's steps as a branch with two outputs: the (T − 1, B) ids of steps 0..T−2 and the
 * final-normed rows (B, d) the last token is drawn from. Iteration j first draws token j (step 0's
 * `first`, else from the rows iteration j − 1 left), then runs it through the blocks. Drawing at
 * the start of an iteration, not at the end of the previous one, means the sampler's
 * vocabulary-wide temporaries meet one copy of the rows' caches (the iteration's inputs) instead
 * of two (inputs and the step's new ones). Each row carries only its own tokens' keys and values,
 * one more each step, and attends to its position's prefix cache (`prefixKv`, Bp rows,
 * loop-invariant) before them: `grouped` through one product per position (the rows in runs of K,
 * see `prefixedCache`), else gathered to the rows for one layer at a time. No row holds a copy of
 * the prefix between layers. The gathered way attends to exactly the growing cache [prefix ;
 * tokens] of graph versions 5–7, so its ids are bit for bit those; the grouped way sums the
 * prefix's and the tokens' shares of each attention output separately, which rounds differently in
 * the last place (docs/benchmarks.md "At real shapes").
 */
function decodeSteps(
  outer: GraphBuilder,
  c: ArchCtx,
  a: {
    prefixKv: Kv[]
    first: string
    more: string
    p: string
    grouped: boolean
  }
): GraphBuilder {
  const { layers } = c.spec
  const branch = outer.sub()
  const noTokens = branch.op('Expand', [
    branch.scalarF32(0),
    branch.op(
      'Concat',
      [dim(branch, 'patch_index', 0), branch.constI64([c.spec.kvHeads, 0, c.spec.headDim])],
      { axis: 0 }
    )
  ])
  const body = branch.sub()
  const iter = body.input(body.fresh('iter'), 'int64', [])
  const condIn = body.input(body.fresh('cond_in'), 'bool', [])
  const hnIn = body.input(body.fresh('hn_in'), 'float32', null)
  const offset = body.input(body.fresh('offset'), 'int64', [])
  const ownK = a.prefixKv.map((_, l) => body.input(body.fresh(`sk${l}`), 'float32', null))
  const ownV = a.prefixKv.map((_, l) => body.input(body.fresh(`sv${l}`), 'float32', null))
  const drawnHere = body.sub()
  const fromRows = drawnHere.fresh('id')
  drawnHere.opTo(
    'Identity',
    [forcedOr(drawnHere, iter, sampleRows(drawnHere, c, hnIn, iter))],
    [fromRows]
  )
  drawnHere.output(fromRows, 'int64')
  const drawnBefore = body.sub()
  const firstId = drawnBefore.fresh('id')
  drawnBefore.opTo('Identity', [a.first], [firstId])
  drawnBefore.output(firstId, 'int64')
  const id = body.op('If', [body.op('Equal', [iter, body.scalarI64(0)])], {
    then_branch: drawnBefore.toGraph(body.fresh('decode_first')),
    else_branch: drawnHere.toGraph(body.fresh('decode_draw'))
  })
  const step = beginPass(body, c, offset, body.scalarI64(1))
  let y = addPositions(
    body,
    c,
    embedIds(body, c, body.op('Unsqueeze', [id, body.constI64([1])])),
    step.rows
  )
  const newK: string[] = []
  const newV: string[] = []
  for (let l = 0; l < layers; l++) {
    const own = { k: ownK[l]!, v: ownV[l]! }
    const index = a.grouped ? null : 'patch_index'
    const r = cachedBlock(body, c, l, y, step.pass, prefixedCache(a.prefixKv[l]!, own, index))
    y = r.x
    newK.push(r.k)
    newV.push(r.v)
  }
  // The final norm over all rows at once (row by row, B × d); the next iteration unembeds.
  const hn = finalNorm(body, c, body.op('Squeeze', [y, body.constI64([1])]))
  const outputs: [string, 'bool' | 'int64' | 'float32', string][] = [
    [condIn, 'bool', 'cond_out'],
    [hn, 'float32', 'hn_out'],
    [body.op('Add', [offset, body.scalarI64(1)]), 'int64', 'offset_out']
  ]
  for (const [value, type, hint] of outputs) {
    const name = body.fresh(hint)
    body.opTo('Identity', [value], [name])
    body.output(name, type)
  }
  // ONNX Runtime copies a Loop's carried values out when it ends, while the last iteration's inputs
  // and outputs are still alive: three copies of the rows' caches at once, the decode's peak
  // (docs/benchmarks.md "Memory, the decode loop's last caches"). Nothing reads the last
  // iteration's caches, so it carries them with no tokens; the others carry all of theirs (a Slice
  // copies them, about 1 % of the decode's time).
  const lastIteration = body.op('Equal', [body.op('Add', [iter, body.scalarI64(1)]), a.more])
  const tokensKept = body.op('Where', [
    lastIteration,
    body.constI64([0]),
    body.constI64([Number.MAX_SAFE_INTEGER])
  ])
  const tokenAxis = body.constI64([2])
  const from = body.constI64([0])
  for (const kv of [...newK, ...newV])
    body.output(body.op('Slice', [kv, from, tokensKept, tokenAxis]), 'float32')
  const idOut = body.fresh('id_out')
  body.opTo('Identity', [id], [idOut])
  body.output(idOut, 'int64')
  const carried = 2 + 2 * layers
  const outs = branch.opN(
    'Loop',
    [
      a.more,
      '',
      // Not read: iteration 0 draws step 0's ids, not from these rows.
      branch.constF32([0], [1, 1]),
      a.p,
      ...a.prefixKv.map(() => noTokens),
      ...a.prefixKv.map(() => noTokens)
    ],
    carried + 1,
    { body: body.toGraph('decode_step') }
  )
  const [ids, hnLast] = [branch.fresh('ids'), branch.fresh('hn_last')]
  branch.opTo('Identity', [outs[carried]!], [ids])
  branch.opTo('Identity', [outs[0]!], [hnLast])
  branch.output(ids, 'int64')
  branch.output(hnLast, 'float32')
  return branch
}

/**
 * Role patch: input_ids (1, S), layer L, patch_at t, vectors (R, d) → (R, V) log-probabilities of
 * the next token after the last row S − 1 (≥ t) from R runs, run r with its residual after block L
 * at row t replaced by vectors[r]. Rows before t are unchanged by a replacement, so one unmodified
 * pass gives their K/V for every layer; only rows t..S−1 run again, from block L + 1, as R rows that
 * extend that cache (the decode steps' cached pass, at absolute positions t..S−1).
 */
function rolePatch(g: GraphBuilder, c: ArchCtx): [string, string] {
  const { layers } = c.spec
  const s = scalarDim(g, 'input_ids', 1)
  const { pass, rows } = beginPass(g, c, g.scalarI64(0), s)
  let x = addPositions(g, c, embedIds(g, c, 'input_ids'), rows)
  let atLayer = x
  const kv: Kv[] = []
  for (let l = 0; l < layers; l++) {
    const r = block(g, c, l, x, pass)
    x = r.x
    kv.push({ k: r.k, v: r.v })
    atLayer = g.op('Where', [g.op('Equal', [g.scalarI64(l), 'layer']), x, atLayer])
  }
  const at = g.op('Unsqueeze', ['patch_at', g.constI64([0])])
  const tail = g.op('Slice', [atLayer, at, dim(g, 'input_ids', 1), g.constI64([1])])
  const m = g.op('Sub', [s, 'patch_at'])
  const r = dim(g, 'vectors', 0)
  const runs = g.op('Expand', [tail, g.op('Concat', [r, g.constI64([1, 1])], { axis: 0 })])
  const first = g.op('Unsqueeze', [
    g.op('Equal', [g.op('Range', [g.scalarI64(0), m, g.scalarI64(1)]), g.scalarI64(0)]),
    g.constI64([0, 2])
  ])
  let y = g.op('Where', [first, g.op('Unsqueeze', ['vectors', g.constI64([1])]), runs])
  const suffix = beginPass(g, c, 'patch_at', m)
  for (let l = 0; l < layers; l++) {
    const yIn = y
    y = ifLayer(g, g.op('Greater', [g.scalarI64(l), 'layer']), yIn, (b) => {
      // The unmodified keys and values of rows < t, one copy per run.
      const batch = b.op('Concat', [r, b.constI64([1, 1, 1])], { axis: 0 })
      const cut = (t: string): string =>
        b.op('Expand', [b.op('Slice', [t, b.constI64([0]), at, b.constI64([2])]), batch])
      return block(b, c, l, yIn, suffix.pass, { k: cut(kv[l]!.k), v: cut(kv[l]!.v) }).x
    })
  }
  const last = g.op('Gather', [y, g.op('Sub', [m, g.scalarI64(1)])], { axis: 1 })
  const lp = g.op('LogSoftmax', [logits(g, c, last, SOFTCAP_ROLES.patch)], { axis: -1 })
  return [lp, g.constI64([], [0])]
}

/** This architecture's pieces, for the generate role built in src/main/engine/generation/role.ts. */
function decoderKit(c: ArchCtx): DecoderKit {
  return {
    layers: c.spec.layers,
    kvHeads: c.spec.kvHeads,
    headDim: c.spec.headDim,
    vocabSize: c.spec.vocabSize,
    embed: (g, ids) => embedIds(g, c, ids),
    beginPass: (g, offset, s) => beginPass(g, c, offset, s),
    addPositions: (g, x, rows) => addPositions(g, c, x, rows),
    block: (g, l, x, pass, past) => block(g, c, l, x, pass, past),
    logits: (g, h) => logits(g, c, h, SOFTCAP_ROLES.generate)
  }
}

/** The patchGenerate role's pieces: as `decoderKit`, with its own softcap choice. */
function patchedDecoderKit(c: ArchCtx): DecoderKit {
  return { ...decoderKit(c), logits: (g, h) => logits(g, c, h, SOFTCAP_ROLES.patchGenerate) }
}

function branch(
  g: GraphBuilder,
  build: (b: GraphBuilder) => [string, string]
): ReturnType<GraphBuilder['toGraph']> {
  const b = g.sub()
  const [f, i] = build(b)
  const fo = b.fresh('out_f')
  const io = b.fresh('out_i')
  b.opTo('Identity', [f], [fo])
  b.opTo('Identity', [i], [io])
  b.output(fo, 'float32')
  b.output(io, 'int64')
  return b.toGraph('role')
}

function zeros(dims: number[]): Float32Array {
  return new Float32Array(dims.reduce((a, b) => a * b, 1))
}

export function baseInputPlaceholders(
  d: number
): Record<string, Weight & { type: 'float32' | 'int64'; shape: (number | string)[] }> {
  const i64 = (v: number[], dims: number[]): { data: BigInt64Array; dims: number[] } => ({
    data: BigInt64Array.from(v.map(BigInt)),
    dims
  })
  return {
    role: { name: 'role', type: 'int64', shape: [], ...i64([0], []) },
    input_ids: { name: 'input_ids', type: 'int64', shape: [1, 'S'], ...i64([0], [1, 1]) },
    layer: { name: 'layer', type: 'int64', shape: [], ...i64([0], []) },
    prefix_embeds: {
      name: 'prefix_embeds',
      type: 'float32',
      shape: ['P', d],
      dims: [1, d],
      data: zeros([1, d])
    },
    patch_vectors: {
      name: 'patch_vectors',
      type: 'float32',
      shape: ['Bp', 'Np', d],
      dims: [1, 1, d],
      data: zeros([1, 1, d])
    },
    patch_index: { name: 'patch_index', type: 'int64', shape: ['B'], ...i64([0], [1]) },
    embed_pos: { name: 'embed_pos', type: 'int64', shape: [], ...i64([0], []) },
    uniforms: {
      name: 'uniforms',
      type: 'float32',
      shape: ['B', 'T'],
      dims: [1, 1],
      data: zeros([1, 1])
    },
    temperature: {
      name: 'temperature',
      type: 'float32',
      shape: [],
      dims: [],
      data: Float32Array.from([1])
    },
    ids: { name: 'ids', type: 'int64', shape: ['B', 'M'], ...i64([0], [1, 1]) },
    suffix_embeds: {
      name: 'suffix_embeds',
      type: 'float32',
      shape: ['Q', d],
      dims: [0, d],
      data: zeros([0])
    },
    last_add: { name: 'last_add', type: 'float32', shape: [d], dims: [d], data: zeros([d]) },
    positions: { name: 'positions', type: 'int64', shape: ['R'], ...i64([0], [1]) },
    vectors: {
      name: 'vectors',
      type: 'float32',
      shape: ['R', d],
      dims: [1, d],
      data: zeros([1, d])
    },
    top_k: { name: 'top_k', type: 'int64', shape: [], ...i64([1], []) },
    // Generate role (src/main/engine/generation/role.ts); logit_bias broadcasts, (1) is a no-op.
    top_p: { name: 'top_p', type: 'float32', shape: [], dims: [], data: Float32Array.from([1]) },
    logit_bias: { name: 'logit_bias', type: 'float32', shape: ['V'], dims: [1], data: zeros([1]) },
    stop_ids: { name: 'stop_ids', type: 'int64', shape: ['E'], ...i64([], [0]) },
    // Decode: rows' kept explanation prefixes (the iterative optimiser); 0 steps = none.
    forced_ids: { name: 'forced_ids', type: 'int64', shape: ['B', 'F'], ...i64([0], [1, 1]) },
    forced_steps: { name: 'forced_steps', type: 'int64', shape: [], ...i64([0], []) },
    // Patch and patchGenerate: the row whose residual after block `layer` is replaced.
    patch_at: { name: 'patch_at', type: 'int64', shape: [], ...i64([0], []) }
  }
}

/**
 * Declares the spec's weights in `g` (through `declare`, which returns each initializer's name),
 * its small constants inline (embedding scale, rotary inverse frequencies), and builds every role.
 */
function assemble(g: GraphBuilder, spec: ArchSpec, declare: (info: WeightInfo) => string): void {
  checkArchSpec(spec)
  // onnxruntime-node ignores feeds for overridable initializers, so every input is a plain input
  // and callers feed placeholders (baseInputPlaceholders) for the ones a role does not read.
  for (const def of Object.values(baseInputPlaceholders(spec.hiddenSize))) {
    g.input(def.name, def.type, def.shape)
  }
  const declared = new Map(archWeights(spec).map((info) => [info.name, declare(info)]))
  const rope = rotary(spec)
  const inv = (which: 'global' | 'local'): string | null => {
    const r = which === 'global' ? rope?.global : rope?.local
    if (!r) return null
    return g.weight(
      `rope.${which}.inv_freq`,
      [spec.headDim / 2],
      ropeInverseFrequencies(r, spec.headDim)
    )
  }
  const names: ArchNames = {
    emb: declared.get('tok_emb')!,
    pos: declared.get('pos_emb') ?? null,
    scale: g.weight('emb_scale', [], Float32Array.from([spec.embeddingScale])),
    lnfG: declared.get('lnf.gain')!,
    lnfB: declared.get('lnf.bias') ?? null,
    unembed: declared.get('unembed') ?? null,
    invFreq: { global: inv('global'), local: inv('local') }
  }
  const c: ArchCtx = { spec, n: names }

  const role = (r: number): string => g.op('Equal', ['role', g.scalarI64(r)])
  const order: [number, (b: GraphBuilder) => [string, string]][] = [
    [ROLE.acts, (b) => roleActs(b, c)],
    [ROLE.decode, (b) => roleDecode(b, c)],
    [ROLE.encode, (b) => roleEncode(b, c)],
    [ROLE.kl, (b) => roleKl(b, c)],
    [ROLE.generate, (b) => [b.constF32([], [0]), buildGenerateRole(b, decoderKit(c))]],
    [ROLE.patch, (b) => rolePatch(b, c)],
    [
      ROLE.patchGenerate,
      (b) => [
        b.constF32([], [0]),
        buildGenerateRole(b, patchedDecoderKit(c), {
          layer: 'layer',
          at: 'patch_at',
          vectors: 'vectors'
        })
      ]
    ]
  ]
  // Nested Ifs: role 0 ? acts : role 1 ? decode : ... : logit lens.
  let elseGraph = branch(g, (b) => roleLogitLens(b, c))
  for (let i = order.length - 1; i >= 0; i--) {
    const [r, build] = order[i]!
    const thenGraph = branch(g, build)
    if (i === 0) {
      g.opTo('If', [role(r)], ['out_f', 'out_i'], {
        then_branch: thenGraph,
        else_branch: elseGraph
      })
    } else {
      const wrap = g.sub()
      const cond = wrap.op('Equal', ['role', wrap.scalarI64(r)])
      const fo = wrap.fresh('out_f')
      const io = wrap.fresh('out_i')
      wrap.opTo('If', [cond], [fo, io], { then_branch: thenGraph, else_branch: elseGraph })
      wrap.output(fo, 'float32')
      wrap.output(io, 'int64')
      elseGraph = wrap.toGraph('dispatch')
    }
  }
  g.output('out_f', 'float32')
  g.output('out_i', 'int64')
}

const PRODUCER = 'talkative-workbench'
const GRAPH_NAME = 'talkative_base'

export interface BuiltModel {
  model: Uint8Array
  /** External-data bytes (weights), when written to a side file. */
  data?: Uint8Array[]
  dataSize: number
}

/**
 * Writes the base model of `spec` from weights in memory. With `externalData`, every weight over
 * 1 KiB goes to that side file (relative to the model file), which keeps the protobuf under 2 GB.
 */
export function buildBaseModel(
  spec: ArchSpec,
  weights: ArchWeightMap,
  externalData?: string
): BuiltModel {
  const g = new GraphBuilder()
  assemble(g, spec, (info) => {
    const data = weights.get(info.name)
    if (!data) throw new Error(`weight ${info.name}: missing`)
    return g.weight(info.name, info.dims, data)
  })
  const external = externalData ? new ExternalWriter(externalData) : undefined
  const model = encodeModel(g.toGraph(GRAPH_NAME, external), PRODUCER)
  return { model, data: external?.chunks, dataSize: external?.size ?? 0 }
}

/** The pre-norm GPT's base model (demo and synthetic bundles). */
export function buildTransformer(w: TransformerWeights, externalData?: string): BuiltModel {
  const { spec, weights } = preNormGpt(w)
  return buildBaseModel(spec, weights, externalData)
}

/** One weight's place in the external-data file. */
export interface LaidOutWeight extends WeightInfo {
  /** Byte offset in the data file (a multiple of 64, so ONNX Runtime can map it in place). */
  offset: number
  /** Bytes: elements × 4 (float32). */
  length: number
}

export interface BaseModelLayout {
  /** The model protobuf: the graph, small constants, and references into `dataFile`. */
  model: Uint8Array
  /** The external-data file's name, relative to the model file (`<model>.onnx.data`). */
  dataFile: string
  /** Size of the data file in bytes. */
  dataSize: number
  /** Every weight, in file order; a writer fills each with float32 little-endian values. */
  weights: LaidOutWeight[]
}

export const EXTERNAL_ALIGNMENT = 64

/**
 * The base model of `spec` with every weight in `dataFile`, without any weight values: the
 * returned layout says where each one goes, so the file can be written tensor by tensor
 * (bundle/write.ts `writeExternalData`) while no more than one tensor is in memory.
 */
export function planBaseModel(spec: ArchSpec, dataFile: string): BaseModelLayout {
  const weights: LaidOutWeight[] = []
  let offset = 0
  for (const info of archWeights(spec)) {
    offset = Math.ceil(offset / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT
    const length = elementCount(info.dims) * 4
    weights.push({ ...info, offset, length })
    offset += length
  }
  const byName = new Map(weights.map((w) => [w.name, w]))
  const g = new GraphBuilder()
  assemble(g, spec, (info) => {
    const w = byName.get(info.name)!
    const ref: ExternalRef = { location: dataFile, offset: w.offset, length: w.length }
    return g.externalWeight(info.name, info.dims, ref)
  })
  const model = encodeModel(g.toGraph(GRAPH_NAME), PRODUCER)
  return { model, dataFile, dataSize: offset, weights }
}
