/**
 * The base-model graph: one ONNX model that serves every role the engine needs (activations,
 * whole-batch generation, encoder, KL, logit lens), selected by the `role` input, so one session
 * per device holds the weights once for every lens of a group. The architecture written here is
 * a pre-norm GPT (learned positions, LayerNorm, GELU MLP, untied unembedding); the engine only
 * relies on the input/output contract in docs/bundle-format.md, not on these internals.
 */
import { ExternalWriter, GraphBuilder, encodeModel, type Weight } from './builder'
import { buildGenerateRole, type DecoderKit } from '../generation/role'

/**
 * Bumped whenever the graph written here changes its contract or numerics (2: decode reads
 * patch_index, KL unembeds only the gathered rows). Generated bundles cached with another value
 * are regenerated (synthetic.ts; the demo has its own DEMO_VERSION).
 */
export const BASE_GRAPH_VERSION = 2

export const ROLE = { acts: 0, decode: 1, encode: 2, kl: 3, logitLens: 4, generate: 5 } as const
export type Role = keyof typeof ROLE

export interface TransformerDims {
  hiddenSize: number
  layers: number
  heads: number
  vocabSize: number
  ffnSize: number
  maxPositions: number
}

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

const NEG = -1e9
const LN_EPS = 1e-5

interface Names {
  emb: string
  pos: string
  scale: string
  layer: (l: number, part: keyof LayerWeights) => string
  lnfG: string
  lnfB: string
  unembed: string
}

interface Ctx {
  dims: TransformerDims
  n: Names
}

function layerNorm(g: GraphBuilder, x: string, gain: string, bias: string): string {
  return g.op('LayerNormalization', [x, gain, bias], { axis: -1, epsilon: { float: LN_EPS } })
}

function linear(g: GraphBuilder, x: string, w: string, b: string): string {
  return g.op('Add', [g.op('MatMul', [x, w]), b])
}

/** (B, s, d) → (B, H, s, dh) */
function splitHeads(g: GraphBuilder, c: Ctx, x: string): string {
  const { heads, hiddenSize } = c.dims
  const r = g.op('Reshape', [x, g.constI64([0, 0, heads, hiddenSize / heads])])
  return g.op('Transpose', [r], { perm: [0, 2, 1, 3] })
}

/** (B, H, s, dh) → (B, s, d) */
function mergeHeads(g: GraphBuilder, c: Ctx, x: string): string {
  const t = g.op('Transpose', [x], { perm: [0, 2, 1, 3] })
  return g.op('Reshape', [t, g.constI64([0, 0, c.dims.hiddenSize])])
}

function qkvHeads(
  g: GraphBuilder,
  c: Ctx,
  l: number,
  h: string
): { q: string; k: string; v: string } {
  const d = c.dims.hiddenSize
  const qkv = linear(g, h, c.n.layer(l, 'qkv'), c.n.layer(l, 'qkvBias'))
  const [q, k, v] = g.opN('Split', [qkv, g.constI64([d, d, d])], 3, { axis: -1 })
  const scale = g.scalarF32(1 / Math.sqrt(d / c.dims.heads))
  return {
    q: g.op('Mul', [splitHeads(g, c, q!), scale]),
    k: splitHeads(g, c, k!),
    v: splitHeads(g, c, v!)
  }
}

function mlp(g: GraphBuilder, c: Ctx, l: number, x: string): string {
  const h = layerNorm(g, x, c.n.layer(l, 'ln2Gain'), c.n.layer(l, 'ln2Bias'))
  const u = linear(g, h, c.n.layer(l, 'up'), c.n.layer(l, 'upBias'))
  // Exact GELU written so ONNX Runtime fuses it into its Gelu kernel.
  const erf = g.op('Erf', [g.op('Div', [u, g.scalarF32(Math.SQRT2)])])
  const gelu = g.op('Mul', [g.op('Mul', [u, g.op('Add', [erf, g.scalarF32(1)])]), g.scalarF32(0.5)])
  return g.op('Add', [x, linear(g, gelu, c.n.layer(l, 'down'), c.n.layer(l, 'downBias'))])
}

interface Pass {
  /** Additive causal mask (s, sTotal) shared by every layer of one pass. */
  mask: string
}

/** Causal self-attention over the new rows plus an optional cache; returns the full K/V. */
function attention(
  g: GraphBuilder,
  c: Ctx,
  l: number,
  x: string,
  pass: Pass,
  past?: { k: string; v: string }
): { x: string; k: string; v: string } {
  const h = layerNorm(g, x, c.n.layer(l, 'ln1Gain'), c.n.layer(l, 'ln1Bias'))
  const { q, k: kNew, v: vNew } = qkvHeads(g, c, l, h)
  const k = past ? g.op('Concat', [past.k, kNew], { axis: 2 }) : kNew
  const v = past ? g.op('Concat', [past.v, vNew], { axis: 2 }) : vNew
  const scores = g.op('Add', [
    g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]),
    pass.mask
  ])
  const probs = g.op('Softmax', [scores], { axis: -1 })
  const o = mergeHeads(g, c, g.op('MatMul', [probs, v]))
  const out = linear(g, o, c.n.layer(l, 'out'), c.n.layer(l, 'outBias'))
  return { x: g.op('Add', [x, out]), k, v }
}

function block(
  g: GraphBuilder,
  c: Ctx,
  l: number,
  x: string,
  pass: Pass,
  past?: { k: string; v: string }
): { x: string; k: string; v: string } {
  const a = attention(g, c, l, x, pass, past)
  return { x: mlp(g, c, l, a.x), k: a.k, v: a.v }
}

/**
 * One replaced row per query: a single token (the replacement vector, already the residual after
 * block L) at absolute position t attends to the unmodified keys/values of positions < t plus its
 * own. Positions before t are unchanged by the replacement, so their cached K/V are exact.
 */
function replacedBlock(
  g: GraphBuilder,
  c: Ctx,
  l: number,
  y: string,
  ctx: { k: string; v: string; mask: string }
): string {
  const h = layerNorm(g, y, c.n.layer(l, 'ln1Gain'), c.n.layer(l, 'ln1Bias'))
  const { q, k, v } = qkvHeads(g, c, l, h)
  const scCtx = g.op('Add', [
    g.op('MatMul', [q, g.op('Transpose', [ctx.k], { perm: [0, 1, 3, 2] })]),
    ctx.mask
  ])
  const scSelf = g.op('ReduceSum', [g.op('Mul', [q, k]), g.constI64([-1])], { keepdims: 1 })
  const probs = g.op('Softmax', [g.op('Concat', [scCtx, scSelf], { axis: -1 })], { axis: -1 })
  const ctxLen = g.op('Shape', [ctx.k], { start: 2, end: 3 })
  const [pCtx, pSelf] = g.opN(
    'Split',
    [probs, g.op('Concat', [ctxLen, g.constI64([1])], { axis: 0 })],
    2,
    {
      axis: -1
    }
  )
  const o = g.op('Add', [g.op('MatMul', [pCtx!, ctx.v]), g.op('Mul', [pSelf!, v])])
  const out = linear(g, mergeHeads(g, c, o), c.n.layer(l, 'out'), c.n.layer(l, 'outBias'))
  return mlp(g, c, l, g.op('Add', [y, out]))
}

/** An If node: `then` builds the branch from a subgraph builder; `else` passes `x` through. */
function ifLayer(
  g: GraphBuilder,
  cond: string,
  x: string,
  then: (b: GraphBuilder) => string
): string {
  const tb = g.sub()
  const tOut = then(tb)
  const tName = tb.fresh('then_out')
  tb.opTo('Identity', [tOut], [tName])
  tb.output(tName, 'float32')
  const eb = g.sub()
  const eName = eb.fresh('else_out')
  eb.opTo('Identity', [x], [eName])
  eb.output(eName, 'float32')
  return g.op('If', [cond], { then_branch: tb.toGraph('then'), else_branch: eb.toGraph('else') })
}

/** Additive causal mask for rows offset..offset+s-1 over columns 0..offset+s-1, plus the rows. */
function causalMask(g: GraphBuilder, offset: string, s: string): { mask: string; rows: string } {
  const one = g.scalarI64(1)
  const end = g.op('Add', [offset, s])
  const rows = g.op('Range', [offset, end, one])
  const cols = g.op('Range', [g.scalarI64(0), end, one])
  const future = g.op('Greater', [
    g.op('Unsqueeze', [cols, g.constI64([0])]),
    g.op('Unsqueeze', [rows, g.constI64([1])])
  ])
  const mask = g.op('Where', [future, g.scalarF32(NEG), g.scalarF32(0)])
  return { mask, rows }
}

function embedIds(g: GraphBuilder, c: Ctx, ids: string): string {
  return g.op('Mul', [g.op('Gather', [c.n.emb, ids]), c.n.scale])
}

function dim(g: GraphBuilder, x: string, axis: number): string {
  return g.op('Shape', [x], { start: axis, end: axis + 1 })
}

function scalarDim(g: GraphBuilder, x: string, axis: number): string {
  return g.op('Squeeze', [dim(g, x, axis), g.constI64([0])])
}

function logits(g: GraphBuilder, c: Ctx, h: string): string {
  return g.op('MatMul', [layerNorm(g, h, c.n.lnfG, c.n.lnfB), c.n.unembed])
}

/** Role acts: input_ids (1,S), layer L → residual after block L, (S, d). */
function roleActs(g: GraphBuilder, c: Ctx): [string, string] {
  const s = scalarDim(g, 'input_ids', 1)
  const { mask, rows } = causalMask(g, g.scalarI64(0), s)
  let x = g.op('Add', [embedIds(g, c, 'input_ids'), g.op('Gather', [c.n.pos, rows])])
  for (let l = 0; l < c.dims.layers; l++) {
    const cond = g.op('LessOrEqual', [g.scalarI64(l), 'layer'])
    x = ifLayer(g, cond, x, (b) => block(b, c, l, x, { mask }).x)
  }
  return [g.op('Squeeze', [x, g.constI64([0])]), g.constI64([], [0])]
}

/**
 * Role encode: rows [prefix_embeds | E[ids]·scale | suffix_embeds], last row += last_add;
 * output the residual after block `layer` at the last position, (B, d).
 */
function roleEncode(g: GraphBuilder, c: Ctx): [string, string] {
  const d = c.dims.hiddenSize
  const b = dim(g, 'ids', 0)
  const dConst = g.constI64([d])
  const pre = g.op('Expand', [
    g.op('Unsqueeze', ['prefix_embeds', g.constI64([0])]),
    g.op('Concat', [b, dim(g, 'prefix_embeds', 0), dConst], { axis: 0 })
  ])
  const suf = g.op('Expand', [
    g.op('Unsqueeze', ['suffix_embeds', g.constI64([0])]),
    g.op('Concat', [b, dim(g, 'suffix_embeds', 0), dConst], { axis: 0 })
  ])
  const rowsIn = g.op('Concat', [pre, embedIds(g, c, 'ids'), suf], { axis: 1 })
  const n = scalarDim(g, rowsIn, 1)
  const { mask, rows } = causalMask(g, g.scalarI64(0), n)
  const last = g.op('Sub', [n, g.scalarI64(1)])
  const isLast = g.op('Cast', [g.op('Equal', [rows, last])], { to: 1 })
  const addLast = g.op('Mul', [
    g.op('Unsqueeze', [isLast, g.constI64([1])]),
    g.op('Unsqueeze', ['last_add', g.constI64([0])])
  ])
  let x = g.op('Add', [g.op('Add', [rowsIn, addLast]), g.op('Gather', [c.n.pos, rows])])
  for (let l = 0; l < c.dims.layers; l++) {
    const cond = g.op('LessOrEqual', [g.scalarI64(l), 'layer'])
    x = ifLayer(g, cond, x, (sb) => block(sb, c, l, x, { mask }).x)
  }
  return [g.op('Gather', [x, last], { axis: 1 }), g.constI64([], [0])]
}

/** Role logit lens: vectors (R, d) → final norm → unembed → top `top_k` ids (R, k). */
function roleLogitLens(g: GraphBuilder, c: Ctx): [string, string] {
  const z = logits(g, c, 'vectors')
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
function roleKl(g: GraphBuilder, c: Ctx): [string, string] {
  const s = scalarDim(g, 'input_ids', 1)
  const { mask, rows } = causalMask(g, g.scalarI64(0), s)
  let x = g.op('Add', [embedIds(g, c, 'input_ids'), g.op('Gather', [c.n.pos, rows])])
  const kv: { k: string; v: string }[] = []
  for (let l = 0; l < c.dims.layers; l++) {
    const r = block(g, c, l, x, { mask })
    x = r.x
    kv.push({ k: r.k, v: r.v })
  }
  // Only the R rows P needs go through the final norm and the unembedding: the full (S, V)
  // logits would be gigabytes for a large vocabulary, once per chunk of rows.
  const atPositions = g.op('Gather', [g.op('Squeeze', [x, g.constI64([0])]), 'positions'])
  const lp = g.op('LogSoftmax', [logits(g, c, atPositions)], { axis: -1 })

  const cols = g.op('Range', [g.scalarI64(0), s, g.scalarI64(1)])
  const notBefore = g.op('GreaterOrEqual', [
    g.op('Unsqueeze', [cols, g.constI64([0])]),
    g.op('Unsqueeze', ['positions', g.constI64([1])])
  ])
  const ctxMask = g.op('Unsqueeze', [
    g.op('Where', [notBefore, g.scalarF32(NEG), g.scalarF32(0)]),
    g.constI64([1, 2])
  ])
  let y = g.op('Unsqueeze', ['vectors', g.constI64([1])])
  for (let l = 0; l < c.dims.layers; l++) {
    const cond = g.op('Greater', [g.scalarI64(l), 'layer'])
    const yIn = y
    y = ifLayer(g, cond, yIn, (b) => replacedBlock(b, c, l, yIn, { ...kv[l]!, mask: ctxMask }))
  }
  const lq = g.op('LogSoftmax', [logits(g, c, g.op('Squeeze', [y, g.constI64([1])]))], { axis: -1 })
  const kl = g.op(
    'ReduceSum',
    [g.op('Mul', [g.op('Exp', [lp]), g.op('Sub', [lp, lq])]), g.constI64([1])],
    { keepdims: 0 }
  )
  return [kl, g.constI64([], [0])]
}

/**
 * Role decode: the whole batch generation in one Loop. Iteration 0 feeds the prefix
 * (prefix_embeds broadcast to B rows, with patch_vectors[patch_index[r], l] overwriting row r's
 * residual at embed_pos before every block l < Np), later iterations one sampled token each, with
 * the KV cache loop-carried. Sampling is inverse-CDF from `uniforms` at `temperature` (0 = argmax).
 * Rows share patch vectors through `patch_index` (best-of-K: K rows per position), so the host
 * never copies a position's projection K times.
 */
function roleDecode(g: GraphBuilder, c: Ctx): [string, string] {
  const { layers, heads, hiddenSize: d } = c.dims
  const dh = d / heads
  const b = dim(g, 'patch_index', 0)
  const steps = scalarDim(g, 'uniforms', 1)
  const prefix = g.op('Expand', [
    g.op('Unsqueeze', ['prefix_embeds', g.constI64([0])]),
    g.op('Concat', [b, dim(g, 'prefix_embeds', 0), g.constI64([d])], { axis: 0 })
  ])
  const emptyCache = g.op(
    'ConstantOfShape',
    [g.op('Concat', [b, g.constI64([heads, 0, dh])], { axis: 0 })],
    {}
  )
  const npatch = scalarDim(g, 'patch_vectors', 1)
  const lastPatch = g.op('Sub', [npatch, g.scalarI64(1)])
  const positive = g.op('Greater', ['temperature', g.scalarF32(0)])
  const invTemp = g.op('Reciprocal', [g.op('Max', ['temperature', g.scalarF32(1e-6)])])

  const body = g.sub()
  const iter = body.input(body.fresh('iter'), 'int64', [])
  const condIn = body.input(body.fresh('cond_in'), 'bool', [])
  const xIn = body.input(body.fresh('x_in'), 'float32', null)
  const offset = body.input(body.fresh('offset'), 'int64', [])
  const pastK: string[] = []
  const pastV: string[] = []
  for (let l = 0; l < layers; l++) pastK.push(body.input(body.fresh(`pk${l}`), 'float32', null))
  for (let l = 0; l < layers; l++) pastV.push(body.input(body.fresh(`pv${l}`), 'float32', null))

  const s = scalarDim(body, xIn, 1)
  const { mask, rows } = causalMask(body, offset, s)
  let x = body.op('Add', [xIn, body.op('Gather', [c.n.pos, rows])])
  const atSlot = body.op('Unsqueeze', [
    body.op('Equal', [rows, 'embed_pos']),
    body.constI64([0, 2])
  ])
  const newK: string[] = []
  const newV: string[] = []
  for (let l = 0; l < layers; l++) {
    const use = body.op('And', [atSlot, body.op('Less', [body.scalarI64(l), npatch])])
    const idx = body.op('Min', [body.scalarI64(l), lastPatch])
    // (Bp, d) for this layer, then one row per batch row: B·d floats, never B·Np·d.
    const perPosition = body.op('Gather', ['patch_vectors', idx], { axis: 1 })
    const vec = body.op('Unsqueeze', [
      body.op('Gather', [perPosition, 'patch_index'], { axis: 0 }),
      body.constI64([1])
    ])
    x = body.op('Where', [use, vec, x])
    const r = block(body, c, l, x, { mask }, { k: pastK[l]!, v: pastV[l]! })
    x = r.x
    newK.push(r.k)
    newV.push(r.v)
  }
  const hLast = body.op('Gather', [x, body.op('Sub', [s, body.scalarI64(1)])], { axis: 1 })
  const z = logits(body, c, hLast)
  const probs = body.op('Softmax', [body.op('Mul', [z, invTemp])], { axis: -1 })
  const cdf = body.op('CumSum', [probs, body.scalarI64(1)])
  const vocab = c.dims.vocabSize
  const total = body.op('Gather', [cdf, body.constI64([vocab - 1])], { axis: 1 })
  const u = body.op('Unsqueeze', [
    body.op('Gather', ['uniforms', iter], { axis: 1 }),
    body.constI64([1])
  ])
  const below = body.op('Cast', [body.op('Less', [cdf, body.op('Mul', [u, total])])], { to: 7 })
  const drawn = body.op('Min', [
    body.op('ReduceSum', [below, body.constI64([1])], { keepdims: 0 }),
    body.scalarI64(vocab - 1)
  ])
  const greedy = body.op('ArgMax', [z], { axis: 1, keepdims: 0 })
  const id = body.op('Where', [positive, drawn, greedy])

  const condOut = body.fresh('cond_out')
  body.opTo('Identity', [condIn], [condOut])
  const xOut = body.fresh('x_out')
  body.opTo('Identity', [embedIds(body, c, body.op('Unsqueeze', [id, body.constI64([1])]))], [xOut])
  const offOut = body.fresh('offset_out')
  body.opTo('Add', [offset, s], [offOut])
  const idOut = body.fresh('id_out')
  body.opTo('Identity', [id], [idOut])
  body.output(condOut, 'bool', [])
  body.output(xOut, 'float32')
  body.output(offOut, 'int64', [])
  const kOuts = newK.map((k) => {
    const n = body.fresh('k_out')
    body.opTo('Identity', [k], [n])
    body.output(n, 'float32')
    return n
  })
  const vOuts = newV.map((v) => {
    const n = body.fresh('v_out')
    body.opTo('Identity', [v], [n])
    body.output(n, 'float32')
    return n
  })
  void kOuts
  void vOuts
  body.output(idOut, 'int64')

  const carried = 2 + 2 * layers
  const outs = g.opN(
    'Loop',
    [steps, '', prefix, g.scalarI64(0), ...Array(2 * layers).fill(emptyCache)],
    carried + 1,
    { body: body.toGraph('decode_step') }
  )
  const ids = g.op('Transpose', [outs[carried]!], { perm: [1, 0] })
  return [g.constF32([], [0]), ids]
}

/** This architecture's pieces, for the generate role built in src/main/engine/generation/role.ts. */
function decoderKit(c: Ctx): DecoderKit {
  return {
    layers: c.dims.layers,
    heads: c.dims.heads,
    hiddenSize: c.dims.hiddenSize,
    embed: (g, ids) => embedIds(g, c, ids),
    causalMask,
    addPositions: (g, x, rows) => g.op('Add', [x, g.op('Gather', [c.n.pos, rows])]),
    block: (g, l, x, mask, past) => block(g, c, l, x, { mask }, past),
    logits: (g, h) => logits(g, c, h)
  }
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
    stop_ids: { name: 'stop_ids', type: 'int64', shape: ['E'], ...i64([], [0]) }
  }
}

export interface BuiltModel {
  model: Uint8Array
  /** External-data bytes (weights), when written to a side file. */
  data?: Uint8Array[]
  dataSize: number
}

/**
 * Writes the base model. With `externalData`, every weight over 1 KiB goes to that side file
 * (relative to the model file), which keeps the protobuf under 2 GB for large bases.
 */
export function buildTransformer(w: TransformerWeights, externalData?: string): BuiltModel {
  const { dims } = w
  const d = dims.hiddenSize
  if (d % dims.heads !== 0) throw new Error('hiddenSize must be a multiple of heads')
  const g = new GraphBuilder()
  // onnxruntime-node ignores feeds for overridable initializers, so every input is a plain input
  // and callers feed placeholders (baseInputPlaceholders) for the ones a role does not read.
  for (const def of Object.values(baseInputPlaceholders(d))) g.input(def.name, def.type, def.shape)
  const names: Names = {
    emb: g.weight('tok_emb', [dims.vocabSize, d], w.tokenEmbedding),
    pos: g.weight('pos_emb', [dims.maxPositions, d], w.positionEmbedding),
    scale: g.weight('emb_scale', [], Float32Array.from([w.embeddingScale])),
    layer: (l, part) => `l${l}.${part}`,
    lnfG: g.weight('lnf.gain', [d], w.finalGain),
    lnfB: g.weight('lnf.bias', [d], w.finalBias),
    unembed: g.weight('unembed', [d, dims.vocabSize], w.unembedding)
  }
  const shapes: Record<keyof LayerWeights, number[]> = {
    ln1Gain: [d],
    ln1Bias: [d],
    qkv: [d, 3 * d],
    qkvBias: [3 * d],
    out: [d, d],
    outBias: [d],
    ln2Gain: [d],
    ln2Bias: [d],
    up: [d, dims.ffnSize],
    upBias: [dims.ffnSize],
    down: [dims.ffnSize, d],
    downBias: [d]
  }
  w.layers.forEach((lw, l) => {
    for (const part of Object.keys(shapes) as (keyof LayerWeights)[]) {
      g.weight(names.layer(l, part), shapes[part], lw[part])
    }
  })
  const c: Ctx = { dims, n: names }

  const role = (r: number): string => g.op('Equal', ['role', g.scalarI64(r)])
  const order: [number, (b: GraphBuilder) => [string, string]][] = [
    [ROLE.acts, (b) => roleActs(b, c)],
    [ROLE.decode, (b) => roleDecode(b, c)],
    [ROLE.encode, (b) => roleEncode(b, c)],
    [ROLE.kl, (b) => roleKl(b, c)],
    [ROLE.generate, (b) => [b.constF32([], [0]), buildGenerateRole(b, decoderKit(c))]]
  ]
  // Nested Ifs: role 0 ? acts : role 1 ? decode : ... : logit lens.
  let elseGraph = branch(g, (b) => roleLogitLens(b, c))
  let outs: string[] = []
  for (let i = order.length - 1; i >= 0; i--) {
    const [r, build] = order[i]!
    const thenGraph = branch(g, build)
    if (i === 0) {
      outs = ['out_f', 'out_i']
      g.opTo('If', [role(r)], outs, { then_branch: thenGraph, else_branch: elseGraph })
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
  const external = externalData ? new ExternalWriter(externalData) : undefined
  const model = encodeModel(g.toGraph('talkative_base', external), 'talkative-workbench')
  return { model, data: external?.chunks, dataSize: external?.size ?? 0 }
}
