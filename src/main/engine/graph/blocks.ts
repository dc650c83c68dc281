/**
 * The pieces of a decoder block for any ArchSpec, as ONNX nodes: norms, attention (grouped-query,
 * rotary, sliding windows, logit softcap, q/k norms), MLPs, embeddings and the unembedding. The
 * roles in transformer.ts and generation/role.ts assemble them; numerics follow the Hugging Face
 * modeling code in float32 (docs/bundle-format.md, "Architectures").
 *
 * Shapes: x (B, s, d) new rows; q (B, H, s, dh); k, v (B, KV, t, dh) with t = cached + new rows.
 * Grouped-query attention never repeats K/V: q is viewed as (B, KV, G·s, dh), so each K/V head
 * serves its G query heads in one MatMul (HF's repeat_kv, without the copy).
 */
import type { ArchSpec, Activation } from '../arch/spec'
import { windowsOf } from '../arch/spec'
import { layerWeightName, type LayerPart } from '../arch/weights'
import type { GraphBuilder } from './builder'

/** Additive mask value: exp underflows to exactly 0, as HF's finfo.min does. */
export const NEG = -1e9

export interface ArchNames {
  emb: string
  /** Learned position table (absent for rotary models). */
  pos: string | null
  scale: string
  lnfG: string
  lnfB: string | null
  /** (d, V) unembedding; null when tied (the (V, d) token table is used with Gemm transB). */
  unembed: string | null
  /** (dh/2) float32 inverse frequencies per rope. */
  invFreq: { global: string | null; local: string | null }
}

export interface ArchCtx {
  spec: ArchSpec
  n: ArchNames
}

/** What every block of one pass needs: masks per sliding window and rotary tables per rope. */
export interface Pass {
  /** Additive mask per window (null = full causal), broadcastable against the scores. */
  masks: Map<number | null, string>
  /** cos and signed sin, broadcastable against q/k of this pass. */
  rope: { global: RopeTables | null; local: RopeTables | null }
}

export interface RopeTables {
  cos: string
  /** [−sin | sin] over the two halves, so rotate_half(x)·sin = swap(x)·sinSigned exactly. */
  sinSigned: string
}

export interface Kv {
  k: string
  v: string
}

function w(c: ArchCtx, l: number, part: LayerPart): string {
  return layerWeightName(l, part)
}

function groups(spec: ArchSpec): number {
  return spec.heads / spec.kvHeads
}

/** The model's norm over the last axis with `gain` (and `bias` for LayerNorm). */
export function norm(
  g: GraphBuilder,
  c: ArchCtx,
  x: string,
  gain: string,
  bias: string | null
): string {
  const { kind, eps } = c.spec.norm
  if (kind === 'layernorm') {
    return g.op('LayerNormalization', [x, gain, bias!], { axis: -1, epsilon: { float: eps } })
  }
  // x / √(mean(x²) + eps) · gain, written in the form ONNX Runtime fuses into one RMS-norm kernel
  // (which accumulates in float32, as HF's `.float()` does). Gemma gains are stored as 1 + w.
  const ms = g.op('ReduceMean', [g.op('Pow', [x, g.scalarF32(2)])], { axes: [-1], keepdims: 1 })
  const denom = g.op('Sqrt', [g.op('Add', [ms, g.scalarF32(eps)])])
  return g.op('Mul', [g.op('Div', [x, denom]), gain])
}

function linear(g: GraphBuilder, x: string, weight: string, bias: string | null): string {
  const y = g.op('MatMul', [x, weight])
  return bias ? g.op('Add', [y, bias]) : y
}

/** (B, s, n·dh) → (B, n, s, dh) */
function splitHeads(g: GraphBuilder, x: string, n: number, dh: number): string {
  const r = g.op('Reshape', [x, g.constI64([0, 0, n, dh])])
  return g.op('Transpose', [r], { perm: [0, 2, 1, 3] })
}

/** (B, H, s, dh) → (B, s, H·dh) */
function mergeHeads(g: GraphBuilder, x: string, width: number): string {
  const t = g.op('Transpose', [x], { perm: [0, 2, 1, 3] })
  return g.op('Reshape', [t, g.constI64([0, 0, width])])
}

/** q·cos + rotate_half(q)·sin (HF apply_rotary_pos_emb), over the last axis. */
function rotate(g: GraphBuilder, x: string, t: RopeTables, dh: number): string {
  const [x1, x2] = g.opN('Split', [x, g.constI64([dh / 2, dh / 2])], 2, { axis: -1 })
  const swapped = g.op('Concat', [x2!, x1!], { axis: -1 })
  return g.op('Add', [g.op('Mul', [x, t.cos]), g.op('Mul', [swapped, t.sinSigned])])
}

function softcap(g: GraphBuilder, x: string, cap: number): string {
  const c = g.scalarF32(cap)
  return g.op('Mul', [g.op('Tanh', [g.op('Div', [x, c])]), c])
}

function activation(g: GraphBuilder, x: string, act: Activation): string {
  switch (act) {
    case 'gelu_erf': {
      // Exact GELU written so ONNX Runtime fuses it into its Gelu kernel.
      const erf = g.op('Erf', [g.op('Div', [x, g.scalarF32(Math.SQRT2)])])
      return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, g.scalarF32(1)])]), g.scalarF32(0.5)])
    }
    case 'gelu_tanh': {
      // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): HF gelu_new / gelu_pytorch_tanh. Written in
      // the form ONNX Runtime fuses into its FastGelu kernel (x³ as Pow, then (0.5·x)·(1 + tanh)):
      // one pass over the MLP's widest tensor instead of nine, the same function to float32
      // rounding (docs/benchmarks.md "At real shapes").
      const cube = g.op('Pow', [x, g.scalarF32(3)])
      const inner = g.op('Mul', [
        g.op('Add', [g.op('Mul', [cube, g.scalarF32(0.044715)]), x]),
        g.scalarF32(Math.sqrt(2 / Math.PI))
      ])
      const t = g.op('Add', [g.op('Tanh', [inner]), g.scalarF32(1)])
      return g.op('Mul', [g.op('Mul', [x, g.scalarF32(0.5)]), t])
    }
    case 'silu':
      return g.op('Mul', [x, g.op('Sigmoid', [x])])
    case 'relu':
      return g.op('Relu', [x])
  }
}

/** Token ids (any shape) → embedding rows × the model's embedding scale. */
export function embedIds(g: GraphBuilder, c: ArchCtx, ids: string): string {
  return g.op('Mul', [g.op('Gather', [c.n.emb, ids]), c.n.scale])
}

/** Adds learned absolute positions for `rows` (identity for rotary models). */
export function addPositions(g: GraphBuilder, c: ArchCtx, x: string, rows: string): string {
  return c.n.pos ? g.op('Add', [x, g.op('Gather', [c.n.pos, rows])]) : x
}

/**
 * Final norm and unembedding of 2-D rows h (N, d) → logits (N, V); with `softcap` the model's
 * final-logit softcap (if it has one) is applied, as for its own predictions.
 */
export function logits(g: GraphBuilder, c: ArchCtx, h: string, softcapped: boolean): string {
  return unembed(g, c, finalNorm(g, c, h), softcapped)
}

/** The final norm of 2-D rows h (N, d), row by row: what `unembed` reads. */
export function finalNorm(g: GraphBuilder, c: ArchCtx, h: string): string {
  return norm(g, c, h, c.n.lnfG, c.n.lnfB)
}

/** Unembedding of final-normed rows hn (N, d) → logits (N, V), softcapped as in `logits`. */
export function unembed(g: GraphBuilder, c: ArchCtx, hn: string, softcapped: boolean): string {
  const z = c.n.unembed
    ? g.op('MatMul', [hn, c.n.unembed])
    : g.op('Gemm', [hn, c.n.emb], { transB: 1 })
  const cap = c.spec.finalLogitSoftcap
  return softcapped && cap !== null ? softcap(g, z, cap) : z
}

/** Rotary tables for absolute positions `rows` (int64, any shape P): cos, sinSigned (…P, dh). */
function ropeTables(g: GraphBuilder, invFreq: string, rows: string): RopeTables {
  const pos = g.op('Unsqueeze', [g.op('Cast', [rows], { to: 1 }), g.constI64([-1])])
  const freqs = g.op('Mul', [pos, invFreq])
  const cos = g.op('Cos', [freqs])
  const sin = g.op('Sin', [freqs])
  return {
    cos: g.op('Concat', [cos, cos], { axis: -1 }),
    sinSigned: g.op('Concat', [g.op('Neg', [sin]), sin], { axis: -1 })
  }
}

function ropeFor(
  g: GraphBuilder,
  c: ArchCtx,
  rows: string,
  shape: (t: string) => string
): Pass['rope'] {
  const make = (inv: string | null): RopeTables | null => {
    if (!inv) return null
    const t = ropeTables(g, inv, rows)
    return { cos: shape(t.cos), sinSigned: shape(t.sinSigned) }
  }
  return { global: make(c.n.invFreq.global), local: make(c.n.invFreq.local) }
}

/**
 * The pass over rows offset..offset+s−1 attending to columns 0..offset+s−1: one additive mask per
 * sliding window (masked: j > i, or j ≤ i − w) and the rotary tables; also returns the rows. With
 * `colsFrom` (an int64 scalar ≤ 0) the columns start there instead, and columns j < 0 (keys of
 * rows that stand in for an empty prefix) are masked for every row.
 */
export function beginPass(
  g: GraphBuilder,
  c: ArchCtx,
  offset: string,
  s: string,
  colsFrom?: string
): { pass: Pass; rows: string } {
  const one = g.scalarI64(1)
  const end = g.op('Add', [offset, s])
  const rows = g.op('Range', [offset, end, one])
  const cols = g.op('Range', [colsFrom ?? g.scalarI64(0), end, one])
  const colsRow = g.op('Unsqueeze', [cols, g.constI64([0])])
  const rowsCol = g.op('Unsqueeze', [rows, g.constI64([1])])
  let future = g.op('Greater', [colsRow, rowsCol])
  if (colsFrom) future = g.op('Or', [future, g.op('Less', [colsRow, g.scalarI64(0)])])
  const masks = new Map<number | null, string>()
  const gq = groups(c.spec)
  for (const window of windowsOf(c.spec)) {
    let masked = future
    if (window !== null) {
      const tooOld = g.op('LessOrEqual', [colsRow, g.op('Sub', [rowsCol, g.scalarI64(window)])])
      masked = g.op('Or', [future, tooOld])
    }
    let mask = g.op('Where', [masked, g.scalarF32(NEG), g.scalarF32(0)])
    // Grouped queries are laid out (G·s) per K/V head: the (s, t) mask repeats G times.
    if (gq > 1) mask = g.op('Tile', [mask, g.constI64([gq, 1])])
    masks.set(window, mask)
  }
  return { pass: { masks, rope: ropeFor(g, c, rows, (t) => t) }, rows }
}

/**
 * How a block's new keys/values (B, KV, s, dh) meet its cache: `attend` is what the new rows attend
 * to, its columns in the order of the pass's mask; `keep` is what the caller carries to the next
 * pass. With `shared`, the rows attend first to a prefix shared by consecutive runs of rows
 * (`shared` (Bp, KV, P, dh), rows r·K … r·K + K − 1 of the B = Bp·K rows reading prefix r), then
 * to `attend`: the prefix's columns come first in the mask.
 */
export type CacheStep = (
  g: GraphBuilder,
  kNew: string,
  vNew: string
) => { attend: Kv; keep: Kv; shared?: Kv }

/** The growing cache: past ++ new, attended to and kept whole (prefill, generation). */
function appendTo(past?: Kv): CacheStep {
  return (g, kNew, vNew) => {
    const kv = past
      ? {
          k: g.op('Concat', [past.k, kNew], { axis: 2 }),
          v: g.op('Concat', [past.v, vNew], { axis: 2 })
        }
      : { k: kNew, v: vNew }
    return { attend: kv, keep: kv }
  }
}

/**
 * The lens decode's steps: each row's own tokens (`own`, (B, KV, i, dh), growing by one a step)
 * after a prefix held once per position (`prefix`, (Bp, KV, P, dh)); the encoder's rows, with no
 * tokens of their own before this pass (`own` null), after the one prefix of the whole batch
 * (Bp = 1, every row in one run). With `index` (int64 (B,): row
 * r continues position index[r]) the prefix is gathered to the rows for this layer only, a
 * transient, and joined with the row's tokens: exactly the growing cache [prefix ; tokens so far].
 * Without it the B = Bp·K rows come in runs of K per position and attend to the prefix through
 * one product per position (`shared`), never copying it to the rows.
 */
export function prefixedCache(prefix: Kv, own: Kv | null, index: string | null): CacheStep {
  return (g, kNew, vNew) => {
    const keep = own
      ? {
          k: g.op('Concat', [own.k, kNew], { axis: 2 }),
          v: g.op('Concat', [own.v, vNew], { axis: 2 })
        }
      : { k: kNew, v: vNew }
    if (index === null) return { attend: keep, keep, shared: prefix }
    const withPrefix = (p: string, o: string): string =>
      g.op('Concat', [g.op('Gather', [p, index], { axis: 0 }), o], { axis: 2 })
    return { attend: { k: withPrefix(prefix.k, keep.k), v: withPrefix(prefix.v, keep.v) }, keep }
  }
}

/** Dimension `axis` of x as a (1,) int64 tensor. */
function dimOf(g: GraphBuilder, x: string, axis: number): string {
  return g.op('Shape', [x], { start: axis, end: axis + 1 })
}

/**
 * Rows ↔ positions for a prefix shared by runs of K rows (B = Bp·K, `bp` (1,) int64): `byPosition`
 * takes (B, KV, m, n) to (Bp, KV, K·m, n), the K rows of a position side by side, so one product
 * per position and head serves them all; `byRow` takes it back. Only small tensors pass through
 * here (queries, scores, attention outputs), never the prefix's keys or values.
 */
function byPosition(g: GraphBuilder, x: string, bp: string): string {
  const [m, n] = [dimOf(g, x, 2), dimOf(g, x, 3)]
  const kv = dimOf(g, x, 1)
  const split = g.op('Reshape', [x, g.op('Concat', [bp, g.constI64([-1]), kv, m, n], { axis: 0 })])
  const t = g.op('Transpose', [split], { perm: [0, 2, 1, 3, 4] })
  return g.op('Reshape', [t, g.op('Concat', [bp, kv, g.constI64([-1]), n], { axis: 0 })])
}

function byRow(g: GraphBuilder, x: string, bp: string, m: string): string {
  const [kv, n] = [dimOf(g, x, 1), dimOf(g, x, 3)]
  const split = g.op('Reshape', [x, g.op('Concat', [bp, kv, g.constI64([-1]), m, n], { axis: 0 })])
  const t = g.op('Transpose', [split], { perm: [0, 2, 1, 3, 4] })
  return g.op('Reshape', [t, g.op('Concat', [g.constI64([-1]), kv, m, n], { axis: 0 })])
}

/** The block's own attention: q from `h`, keys/values from `cache`; returns what it keeps. */
function attention(
  g: GraphBuilder,
  c: ArchCtx,
  l: number,
  h: string,
  pass: Pass,
  cache: CacheStep
): { o: string; k: string; v: string } {
  const { spec } = c
  const dh = spec.headDim
  const H = spec.heads
  const KV = spec.kvHeads
  const layer = spec.attention.perLayer[l]!
  const qkv = linear(g, h, w(c, l, 'qkv'), spec.attention.qkvBias ? w(c, l, 'qkvBias') : null)
  const [qa, ka, va] = g.opN('Split', [qkv, g.constI64([H * dh, KV * dh, KV * dh])], 3, {
    axis: -1
  })
  let q = splitHeads(g, qa!, H, dh)
  let kNew = splitHeads(g, ka!, KV, dh)
  const vNew = splitHeads(g, va!, KV, dh)
  ;({ q, k: kNew } = positionQk(g, c, l, q, kNew, pass))
  q = g.op('Mul', [q, g.scalarF32(layer.scale)])
  const { attend, keep, shared } = cache(g, kNew, vNew)
  const { k, v } = attend
  const gq = groups(spec)
  // (B, KV, G·s, dh): query heads h = j·G + g share K/V head j (HF repeat_kv order).
  const qg = gq > 1 ? g.op('Reshape', [q, g.constI64([0, KV, -1, dh])]) : q
  const keysT = (x: string): string => g.op('Transpose', [x], { perm: [0, 1, 3, 2] })
  let scores = g.op('MatMul', [qg, keysT(k)])
  // A shared prefix: its scores per position (Bp products of K·G·s rows), back in row order and
  // before the rows' own columns, as the mask has them.
  const bp = shared ? dimOf(g, shared.k, 0) : ''
  const m = shared ? dimOf(g, qg, 2) : ''
  if (shared) {
    const sc = g.op('MatMul', [byPosition(g, qg, bp), keysT(shared.k)])
    scores = g.op('Concat', [byRow(g, sc, bp, m), scores], { axis: -1 })
  }
  if (spec.attention.logitSoftcap !== null) {
    scores = softcap(g, scores, spec.attention.logitSoftcap)
  }
  scores = g.op('Add', [scores, pass.masks.get(layer.window)!])
  const probs = g.op('Softmax', [scores], { axis: -1 })
  let o: string
  if (shared) {
    const sizes = g.op('Concat', [dimOf(g, shared.k, 2), dimOf(g, k, 2)], { axis: 0 })
    const [pShared, pOwn] = g.opN('Split', [probs, sizes], 2, { axis: -1 })
    const fromShared = g.op('MatMul', [byPosition(g, pShared!, bp), shared.v])
    o = g.op('Add', [byRow(g, fromShared, bp, m), g.op('MatMul', [pOwn!, v])])
  } else {
    o = g.op('MatMul', [probs, v])
  }
  if (gq > 1) o = g.op('Reshape', [o, g.constI64([0, H, -1, dh])])
  const out = linear(
    g,
    mergeHeads(g, o, H * dh),
    w(c, l, 'out'),
    spec.attention.outBias ? w(c, l, 'outBias') : null
  )
  return { o: out, k: keep.k, v: keep.v }
}

/** q/k norms (Qwen3, Gemma-3) then the rotation of this layer's rope, as HF orders them. */
function positionQk(
  g: GraphBuilder,
  c: ArchCtx,
  l: number,
  q: string,
  k: string,
  pass: Pass
): { q: string; k: string } {
  const { spec } = c
  if (spec.attention.qkNorm) {
    q = norm(g, c, q, w(c, l, 'qNorm'), null)
    k = norm(g, c, k, w(c, l, 'kNorm'), null)
  }
  const tables = spec.attention.perLayer[l]!.rope === 'local' ? pass.rope.local : pass.rope.global
  if (tables) {
    q = rotate(g, q, tables, spec.headDim)
    k = rotate(g, k, tables, spec.headDim)
  }
  return { q, k }
}

function mlp(g: GraphBuilder, c: ArchCtx, l: number, h: string): string {
  const { mlp: m } = c.spec
  const f = c.spec.ffnSize
  let a: string
  if (m.kind === 'gated') {
    const gu = linear(g, h, w(c, l, 'gateUp'), m.bias ? w(c, l, 'gateUpBias') : null)
    const [gate, up] = g.opN('Split', [gu, g.constI64([f, f])], 2, { axis: -1 })
    a = g.op('Mul', [activation(g, gate!, m.activation), up!])
  } else {
    a = activation(g, linear(g, h, w(c, l, 'up'), m.bias ? w(c, l, 'upBias') : null), m.activation)
  }
  return linear(g, a, w(c, l, 'down'), m.bias ? w(c, l, 'downBias') : null)
}

function ln1(g: GraphBuilder, c: ArchCtx, l: number, x: string): string {
  const bias = c.spec.norm.kind === 'layernorm' ? w(c, l, 'ln1Bias') : null
  return norm(g, c, x, w(c, l, 'ln1Gain'), bias)
}

/** The residual update of the feed-forward half: x + mlp(norm2(x)) (sandwiched for Gemma). */
function feedForward(g: GraphBuilder, c: ArchCtx, l: number, x: string): string {
  const bias = c.spec.norm.kind === 'layernorm' ? w(c, l, 'ln2Bias') : null
  let m = mlp(g, c, l, norm(g, c, x, w(c, l, 'ln2Gain'), bias))
  if (c.spec.sandwichNorms) m = norm(g, c, m, w(c, l, 'postFfnNorm'), null)
  return g.op('Add', [x, m])
}

function attnResidual(g: GraphBuilder, c: ArchCtx, l: number, x: string, o: string): string {
  const a = c.spec.sandwichNorms ? norm(g, c, o, w(c, l, 'postAttnNorm'), null) : o
  return g.op('Add', [x, a])
}

/** One block over new rows x with an optional cache; returns the new residual and full K/V. */
export function block(
  g: GraphBuilder,
  c: ArchCtx,
  l: number,
  x: string,
  pass: Pass,
  past?: Kv
): { x: string; k: string; v: string } {
  return cachedBlock(g, c, l, x, pass, appendTo(past))
}

/** One block over new rows x with the cache `cache`; returns the new residual and the kept K/V. */
export function cachedBlock(
  g: GraphBuilder,
  c: ArchCtx,
  l: number,
  x: string,
  pass: Pass,
  cache: CacheStep
): { x: string; k: string; v: string } {
  const a = attention(g, c, l, ln1(g, c, l, x), pass, cache)
  return { x: feedForward(g, c, l, attnResidual(g, c, l, x, a.o)), k: a.k, v: a.v }
}

/** What the KL role's replaced rows attend to: the unmodified pass's cache and masks. */
export interface ReplacedCtx {
  /** The unmodified pass's K/V of this layer, (1, KV, S, dh). */
  kv: Kv
  /** Per window: (R, 1, 1, S) additive mask over the context columns. */
  masks: Map<number | null, string>
  /** Rotary tables at each row's own position, (R, 1, 1, dh). */
  rope: Pass['rope']
}

/**
 * The KL role's replaced-row context for `positions` (R): row r sits at t = positions[r] and sees
 * the unmodified keys of columns j < t (and j > t − w on sliding layers) plus its own.
 */
export function replacedCtx(
  g: GraphBuilder,
  c: ArchCtx,
  positions: string,
  s: string
): Omit<ReplacedCtx, 'kv'> {
  const cols = g.op('Unsqueeze', [
    g.op('Range', [g.scalarI64(0), s, g.scalarI64(1)]),
    g.constI64([0])
  ])
  const at = g.op('Unsqueeze', [positions, g.constI64([1])])
  const notBefore = g.op('GreaterOrEqual', [cols, at])
  const masks = new Map<number | null, string>()
  for (const window of windowsOf(c.spec)) {
    let masked = notBefore
    if (window !== null) {
      const tooOld = g.op('LessOrEqual', [cols, g.op('Sub', [at, g.scalarI64(window)])])
      masked = g.op('Or', [notBefore, tooOld])
    }
    masks.set(
      window,
      g.op('Unsqueeze', [
        g.op('Where', [masked, g.scalarF32(NEG), g.scalarF32(0)]),
        g.constI64([1, 2])
      ])
    )
  }
  const rope = ropeFor(g, c, positions, (t) => g.op('Unsqueeze', [t, g.constI64([1, 2])]))
  return { masks, rope }
}

/**
 * One replaced row per query: a single token (the replacement vector, already the residual after
 * block L) at absolute position t attends to the unmodified keys/values of positions < t plus its
 * own. Positions before t are unchanged by the replacement, so their cached K/V are exact.
 * y: (R, 1, d) → (R, 1, d).
 */
export function replacedBlock(
  g: GraphBuilder,
  c: ArchCtx,
  l: number,
  y: string,
  ctx: ReplacedCtx
): string {
  const { spec } = c
  const dh = spec.headDim
  const H = spec.heads
  const KV = spec.kvHeads
  const layer = spec.attention.perLayer[l]!
  const pass: Pass = { masks: ctx.masks, rope: ctx.rope }
  const h = ln1(g, c, l, y)
  const qkv = linear(g, h, w(c, l, 'qkv'), spec.attention.qkvBias ? w(c, l, 'qkvBias') : null)
  const [qa, ka, va] = g.opN('Split', [qkv, g.constI64([H * dh, KV * dh, KV * dh])], 3, {
    axis: -1
  })
  let q = splitHeads(g, qa!, H, dh)
  let k = splitHeads(g, ka!, KV, dh)
  const v = splitHeads(g, va!, KV, dh)
  ;({ q, k } = positionQk(g, c, l, q, k, pass))
  q = g.op('Mul', [q, g.scalarF32(layer.scale)])
  const gq = groups(spec)
  // (R, H, 1, dh) → (R, KV, G, dh): each K/V head with its G query heads.
  const qg = gq > 1 ? g.op('Reshape', [q, g.constI64([0, KV, gq, dh])]) : q
  let scCtx = g.op('MatMul', [qg, g.op('Transpose', [ctx.kv.k], { perm: [0, 1, 3, 2] })])
  let scSelf = g.op('ReduceSum', [g.op('Mul', [qg, k]), g.constI64([-1])], { keepdims: 1 })
  if (spec.attention.logitSoftcap !== null) {
    scCtx = softcap(g, scCtx, spec.attention.logitSoftcap)
    scSelf = softcap(g, scSelf, spec.attention.logitSoftcap)
  }
  scCtx = g.op('Add', [scCtx, ctx.masks.get(layer.window)!])
  const probs = g.op('Softmax', [g.op('Concat', [scCtx, scSelf], { axis: -1 })], { axis: -1 })
  const ctxLen = g.op('Shape', [ctx.kv.k], { start: 2, end: 3 })
  const [pCtx, pSelf] = g.opN(
    'Split',
    [probs, g.op('Concat', [ctxLen, g.constI64([1])], { axis: 0 })],
    2,
    { axis: -1 }
  )
  const o = g.op('Add', [g.op('MatMul', [pCtx!, ctx.kv.v]), g.op('Mul', [pSelf!, v])])
  const merged =
    gq > 1 ? g.op('Reshape', [o, g.constI64([0, 1, H * dh])]) : mergeHeads(g, o, H * dh)
  const out = linear(g, merged, w(c, l, 'out'), spec.attention.outBias ? w(c, l, 'outBias') : null)
  return feedForward(g, c, l, attnResidual(g, c, l, y, out))
}
