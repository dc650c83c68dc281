/**
 * Token sampling inside the graph, from host-supplied uniforms, so a whole generation runs in one
 * `session.run`. One builder serves both roles that sample: the decode role (lens explanations;
 * top_p fixed at 1) and the generate role (continuations). Temperature 0 → argmax; otherwise
 * softmax(logits / T), nucleus filtering when top_p < 1 (tokens sorted by probability, the
 * smallest prefix whose mass reaches top_p kept), then inverse CDF.
 *
 * The boundary rule: the drawn token is the first whose cumulative mass reaches u·total, where
 * total is the CDF's own last entry (not a separately rounded sum) and the target is never below
 * the smallest normal float. So a token with zero probability (suppressed by a logit bias, or
 * outside the nucleus) is never drawn, for any u in [0, 1]: at u → 1 the target is at most the
 * CDF's final value, first reached at a token with positive mass; at u → 0 the leading
 * zero-probability tokens (CDF 0) stay below the target. Drawing with "first entry above u·total"
 * instead (the other reading) picks the last token at u = 1 whatever its probability.
 *
 * Without nucleus filtering, a vocabulary with a divisor s ≥ √V leaving at least MIN_BLOCKS blocks
 * is drawn in two levels (`sampleTwoLevel`), so no vocabulary-wide tensor but the logits exists:
 * the probabilities, their transpose and the CDF of the whole-vocabulary draw are each as large
 * as the logits, and the decode role sizes its row chunks by how many such tensors are alive.
 */
import type { GraphBuilder } from '../graph/builder'

export interface SamplerInputs {
  /**
   * Appends the (B, V) float32 next-token logits (logit bias already added) to `b`, divided by
   * `temperature` when it is not null. Built inside the branch that reads them, so that no other
   * branch's input keeps a vocabulary-wide tensor alive; a caller may fold the division into a
   * smaller tensor before the unembedding (the decode role divides its rows, not their logits).
   */
  logits: (b: GraphBuilder, temperature: string | null) => string
  /** V, known when the graph is built: it selects the two-level draw's block size. */
  vocab: number
  /** (B,) float32 uniforms in [0, 1]. */
  uniforms: string
  /** () float32; 0 = greedy. */
  temperature: string
  /** () float32 in (0, 1]; null: no nucleus filtering (the decode role). */
  topP: string | null
}

/** Smallest normal float32: the least target, so CDF entries of exactly 0 always count as below. */
const MIN_TARGET = 1.1754943508222875e-38

/** Fewest blocks the two-level draw uses: below that its block search saves nothing. */
const MIN_BLOCKS = 16

/**
 * Entries per block of the two-level draw: the least divisor s of `vocab` with s ≥ √vocab that
 * leaves at least MIN_BLOCKS blocks (262,144 → 512, 151,936 → 1,187, 50,257 → 1,733), or null
 * when there is none (a prime vocabulary, a small one): then the whole-vocabulary CDF is drawn.
 */
export function vocabularyBlock(vocab: number): number | null {
  for (let s = Math.ceil(Math.sqrt(vocab)); s * MIN_BLOCKS <= vocab; s++) {
    if (vocab % s === 0) return s
  }
  return null
}

/** `logits` for SamplerInputs from a (B, V) tensor already in the graph: divided in the branch. */
export function dividedLogits(logits: string): SamplerInputs['logits'] {
  return (b, temperature) => (temperature ? b.op('Div', [logits, temperature]) : logits)
}

/**
 * Index of the first cumulative value ≥ max(target, MIN_TARGET), clamped to the last index: the
 * count of entries below that floor, which is what the rule above defines. A CDF of non-negative
 * probabilities summed in order never decreases (a float sum with a non-negative term is never
 * smaller), so the entries below the floor are exactly a leading run, and the count is found
 * without comparing the whole vocabulary: with blocks of s = ⌈√n⌉ entries, the block ends below
 * the floor say how many whole blocks the run covers (j), and one window of s entries starting at
 * min(j·s, n − s) holds the run's end, so the count is that start plus the window's entries below
 * the floor. Each comparison is the same float comparison the whole-vocabulary count makes, so the
 * index is identical to it (a NaN ends the run and stays false, as there), at 2√n entries a row
 * instead of n.
 */
function inverseCdf(
  g: GraphBuilder,
  cumulative: string,
  target: string,
  axis: 0 | 1,
  columns: string | null = null
): string {
  const floor = g.op('Max', [target, g.scalarF32(MIN_TARGET)])
  const axes = g.constI64([axis])
  const below = (values: string): string =>
    g.op('ReduceSum', [g.op('Cast', [g.op('Less', [values, floor])], { to: 7 }), axes], {
      keepdims: 1
    })
  const n = g.op('Shape', [cumulative], { start: axis, end: axis + 1 })
  const size = g.op('Cast', [g.op('Ceil', [g.op('Sqrt', [g.op('Cast', [n], { to: 1 })])])], {
    to: 7
  })
  const one = g.constI64([1])
  let blockEnds = g.op('Slice', [cumulative, g.op('Sub', [size, one]), n, axes, size])
  // Each row's own column of a CDF laid out (V, S): a (√V, B) gather, never the whole CDF.
  if (columns) blockEnds = g.op('Gather', [blockEnds, columns], { axis: 1 })
  const start = g.op('Min', [g.op('Mul', [below(blockEnds), size]), g.op('Sub', [n, size])])
  const range = g.op('Range', [
    g.scalarI64(0),
    g.op('Squeeze', [size, g.constI64([0])]),
    g.scalarI64(1)
  ])
  // Along `axis`, broadcast over the other one.
  const offsets = axis === 1 ? range : g.op('Unsqueeze', [range, g.constI64([1])])
  const at = g.op('Add', [start, offsets])
  const window = columns
    ? g.op('Gather', [
        g.op('Reshape', [cumulative, g.constI64([-1])]),
        g.op('Add', [
          g.op('Mul', [at, g.op('Shape', [cumulative], { start: 1, end: 2 })]),
          g.op('Unsqueeze', [columns, g.constI64([0])])
        ])
      ])
    : g.op('GatherElements', [cumulative, at], { axis })
  return g.op('Min', [g.op('Add', [start, below(window)]), g.op('Sub', [n, one])])
}

/** The CDF's last entry along `axis`: what u scales, so u = 1 lands exactly on the final value. */
function lastOf(g: GraphBuilder, cumulative: string, axis: 0 | 1): string {
  const vocab = g.op('Shape', [cumulative], { start: axis, end: axis + 1 })
  return g.op('Gather', [cumulative, g.op('Sub', [vocab, g.constI64([1])])], { axis })
}

function sampleNucleus(g: GraphBuilder, probs: string, u: string, topP: string): string {
  const axis = g.scalarI64(1)
  const vocab = g.op('Shape', [probs], { start: 1, end: 2 })
  const [sorted, order] = g.opN('TopK', [probs, vocab], 2, { axis: 1, largest: 1, sorted: 1 })
  const cumulative = g.op('CumSum', [sorted!, axis])
  // Keep a token when the mass before it is still below top_p: the first token always stays.
  const keep = g.op('Less', [g.op('Sub', [cumulative, sorted!]), topP])
  const kept = g.op('Where', [keep, sorted!, g.scalarF32(0)])
  const keptCumulative = g.op('CumSum', [kept, axis])
  const rank = inverseCdf(g, keptCumulative, g.op('Mul', [u, lastOf(g, keptCumulative, 1)]), 1)
  return g.op('GatherElements', [order!, rank], { axis: 1 })
}

/**
 * Inverse CDF over the whole vocabulary, with the CDF laid out (V, B). ONNX Runtime's CumSum adds
 * one entry at a time along the axis; along a row each sum waits for the previous one, while down a
 * column of the transposed rows B independent sums advance together, so the same additions in the
 * same order (hence the same values) take a fraction of the time, for one transpose.
 */
function sampleFull(g: GraphBuilder, probs: string, u: string): string {
  const cumulative = g.op('CumSum', [g.op('Transpose', [probs], { perm: [1, 0] }), g.scalarI64(0)])
  const across = g.op('Transpose', [u], { perm: [1, 0] })
  const ids = inverseCdf(g, cumulative, g.op('Mul', [across, lastOf(g, cumulative, 0)]), 0)
  return g.op('Transpose', [ids], { perm: [1, 0] })
}

/** Floats of the two vocabulary-wide tensors `blockMasses` writes per group of rows. */
const MASS_GROUP_FLOATS = 16 * 262_144

/**
 * (S, nb) block masses of the (S, V) logits z: Σ exp(z − the row's max) over each block's s
 * entries, computed a group of rows at a time (16 rows of a 262,144-entry vocabulary), so the
 * exponentials (and the difference they are taken of) exist for one group, never for all S rows:
 * ONNX Runtime's elementwise ops write a new tensor, and ReduceLogSumExp, which writes none,
 * takes 4–5× as long (its exponential is not vectorised; docs/benchmarks.md "Decode chunks from
 * the two-level sampler"). Each row's masses are its own, whatever group it falls in.
 */
function blockMasses(g: GraphBuilder, z: string, vocab: number, s: number): string {
  const nb = vocab / s
  const group = Math.max(1, Math.floor(MASS_GROUP_FLOATS / vocab))
  const rows = g.op('Shape', [z], { start: 0, end: 1 })
  const groups = g.op('Div', [
    g.op('Add', [g.op('Squeeze', [rows, g.constI64([0])]), g.scalarI64(group - 1)]),
    g.scalarI64(group)
  ])
  const body = g.sub()
  const iter = body.input(body.fresh('group'), 'int64', [])
  const condIn = body.input(body.fresh('cond_in'), 'bool', [])
  const massIn = body.input(body.fresh('mass_in'), 'float32', null)
  const start = body.op('Unsqueeze', [
    body.op('Mul', [iter, body.scalarI64(group)]),
    body.constI64([0])
  ])
  const end = body.op('Min', [body.op('Add', [start, body.constI64([group])]), rows])
  const part = body.op('Slice', [z, start, end, body.constI64([0])])
  const rowMax = body.op('ReduceMax', [part], { axes: [1], keepdims: 1 })
  const weights = body.op('Exp', [body.op('Sub', [part, rowMax])])
  const mass = body.op(
    'ReduceSum',
    [body.op('Reshape', [weights, body.constI64([-1, nb, s])]), body.constI64([2])],
    { keepdims: 0 }
  )
  const outputs: [string, 'bool' | 'float32', string][] = [
    [condIn, 'bool', 'cond_out'],
    [body.op('Concat', [massIn, mass], { axis: 0 }), 'float32', 'mass_out']
  ]
  for (const [value, type, hint] of outputs) {
    const name = body.fresh(hint)
    body.opTo('Identity', [value], [name])
    body.output(name, type)
  }
  return g.op('Loop', [groups, '', g.constF32([], [0, nb])], {
    body: body.toGraph(g.fresh('block_masses'))
  })
}

/**
 * The two-level inverse CDF: (R, 1) ids drawn from the scaled logits z (S, V), row r reading row
 * index[r] of z (index null: row r). With nb = V / s blocks of s entries:
 *
 * 1. The block masses m (R, nb): Σ exp(z − the row's max) over each block (`blockMasses`, once
 *    per source row); a block of only −∞ logits, or of weights that underflow, has m = 0. Their
 *    CDF `cum` along the blocks, total = its last entry (≥ 1 on a finite row: the row's largest
 *    entry weighs exp(0) = 1), and target = max(u·total, MIN_TARGET).
 * 2. Block j = the first block with cum[j] ≥ target (clamped to nb − 1), counted as the entries
 *    below the target. Since u ≤ 1, fl(u·total) ≤ total, so some entry reaches the target and the
 *    clamp never acts on a finite row. cum never decreases (a float sum with a non-negative term),
 *    so cum[j − 1] < target ≤ cum[j] (cum[−1] = 0 < MIN_TARGET ≤ target): cum[j] ≠ cum[j − 1],
 *    and as fl(c + 0) = c, m[j] > 0. A block of zero mass is never selected; m[j] > 0 means some
 *    entry of block j is finite.
 * 3. Inside block j, the weights w = exp(z − the block's max) of its s entries, their CDF c, W = c's
 *    last entry (≥ 1: the block's largest entry, finite by step 2, weighs exp(0) = 1), and the
 *    in-block target t = min(max(x · W / m[j], MIN_TARGET), W), x = target − cum[j − 1], the share
 *    of block j's mass the target lies in, so 0 < t ≤ W. The id is j·s + i, i = the first entry
 *    with c[i] ≥ t: one exists as t ≤ W, and as t > 0 and c[i − 1] < t ≤ c[i] (c[−1] = 0), w[i] > 0.
 *    So, for any u in [0, 1], the drawn token has positive weight: a token of zero probability
 *    (weight exp(−∞) = 0, or underflowed to 0) is never drawn, and u = 1 (t then W at most) lands
 *    on a token with positive mass, as does u = 0 (t = MIN_TARGET: the first positive entry of the
 *    first block with mass). The in-block weights are taken against the block's own max, not the
 *    row's, so that W > 0 does not rest on the block's exponentials rounding as in step 1.
 *
 * Every step is row by row, so a row's id does not depend on the rows beside it. Besides one
 * group's exponentials (`blockMasses`) the tensors it writes are (R, nb) and (R, s): about 2√V
 * floats a row where the whole-vocabulary draw writes three V-long ones (probabilities,
 * transpose, CDF).
 */
function sampleTwoLevel(
  g: GraphBuilder,
  z: string,
  u: string,
  vocab: number,
  s: number,
  index: string | null
): string {
  const nb = vocab / s
  const along = g.scalarI64(1)
  const sourceMass = blockMasses(g, z, vocab, s)
  const mass = index ? g.op('Gather', [sourceMass, index], { axis: 0 }) : sourceMass
  const cum = g.op('CumSum', [mass, along])
  const total = g.op('Gather', [cum, g.constI64([nb - 1])], { axis: 1 })
  const target = g.op('Max', [g.op('Mul', [u, total]), g.scalarF32(MIN_TARGET)])
  const countBelow = (values: string, floor: string, last: number): string =>
    g.op('Min', [
      g.op(
        'ReduceSum',
        [g.op('Cast', [g.op('Less', [values, floor])], { to: 7 }), g.constI64([1])],
        {
          keepdims: 1
        }
      ),
      g.constI64([last])
    ])
  const j = countBelow(cum, target, nb - 1)
  const before = g.op('Where', [
    g.op('Greater', [j, g.scalarI64(0)]),
    g.op('GatherElements', [cum, g.op('Max', [g.op('Sub', [j, g.scalarI64(1)]), g.scalarI64(0)])], {
      axis: 1
    }),
    g.scalarF32(0)
  ])
  const massJ = g.op('GatherElements', [mass, j], { axis: 1 })
  // Block j of row r's source: row source·nb + j of the logits laid out (S·nb, s).
  const source = index
    ? g.op('Unsqueeze', [index, g.constI64([1])])
    : g.op('Unsqueeze', [
        g.op('Range', [
          g.scalarI64(0),
          g.op('Squeeze', [g.op('Shape', [z], { start: 0, end: 1 })]),
          g.scalarI64(1)
        ]),
        g.constI64([1])
      ])
  const row = g.op('Squeeze', [
    g.op('Add', [g.op('Mul', [source, g.scalarI64(nb)]), j]),
    g.constI64([1])
  ])
  const inBlock = g.op('Gather', [g.op('Reshape', [z, g.constI64([-1, s])]), row], { axis: 0 })
  const blockMax = g.op('ReduceMax', [inBlock], { axes: [1], keepdims: 1 })
  const c = g.op('CumSum', [g.op('Exp', [g.op('Sub', [inBlock, blockMax])]), along])
  const blockTotal = g.op('Gather', [c, g.constI64([s - 1])], { axis: 1 })
  const share = g.op('Div', [g.op('Mul', [g.op('Sub', [target, before]), blockTotal]), massJ])
  const within = g.op('Min', [g.op('Max', [share, g.scalarF32(MIN_TARGET)]), blockTotal])
  return g.op('Add', [g.op('Mul', [j, g.scalarI64(s)]), countBelow(c, within, s - 1)])
}

type Subgraph = ReturnType<GraphBuilder['toGraph']>

/** A subgraph (If branch) whose one output is `build`'s int64 ids. */
function idsBranch(g: GraphBuilder, name: string, build: (b: GraphBuilder) => string): Subgraph {
  const b = g.sub()
  const ids = b.fresh(name)
  b.opTo('Identity', [build(b)], [ids])
  b.output(ids, 'int64', null)
  return b.toGraph(g.fresh(name))
}

/** Ids (B, 1) drawn from softmax(scaled). */
function sampleScaled(g: GraphBuilder, scaled: string, x: SamplerInputs): string {
  const u = g.op('Unsqueeze', [x.uniforms, g.constI64([1])])
  const block = vocabularyBlock(x.vocab)
  const full = (b: GraphBuilder): string =>
    block
      ? sampleTwoLevel(b, scaled, u, x.vocab, block, null)
      : sampleFull(b, b.op('Softmax', [scaled], { axis: -1 }), u)
  if (x.topP === null) return full(g)
  // Sorting the vocabulary is the expensive part: only do it when top_p actually filters.
  const topP = x.topP
  return g.op('If', [g.op('Less', [topP, g.scalarF32(1)])], {
    then_branch: idsBranch(g, 'nucleus', (b) =>
      sampleNucleus(b, b.op('Softmax', [scaled], { axis: -1 }), u, topP)
    ),
    else_branch: idsBranch(g, 'full', full)
  })
}

/**
 * Appends the sampler to `g`; returns the (B,) int64 sampled ids. Only the branch the temperature
 * selects runs, each pass over the vocabulary once: argmax at T = 0; softmax(logits) at T = 1
 * (x / 1 is x exactly, so the division is skipped); softmax(logits / T) otherwise, with T floored
 * so T < 0 stays finite. Every branch writes only ids, so no vocabulary-wide tensor is copied out.
 */
export function buildSampler(g: GraphBuilder, x: SamplerInputs): string {
  const safeT = g.op('Max', [x.temperature, g.scalarF32(1e-6)])
  const sampled = (b: GraphBuilder): string => {
    const ids = b.op('If', [b.op('Equal', [safeT, b.scalarF32(1)])], {
      then_branch: idsBranch(b, 'unscaled', (s) => sampleScaled(s, x.logits(s, null), x)),
      else_branch: idsBranch(b, 'scaled', (s) => sampleScaled(s, x.logits(s, safeT), x))
    })
    return b.op('Squeeze', [ids, b.constI64([1])])
  }
  return g.op('If', [g.op('Equal', [x.temperature, g.scalarF32(0)])], {
    then_branch: idsBranch(g, 'greedy', (b) =>
      b.op('ArgMax', [x.logits(b, null)], { axis: -1, keepdims: 0 })
    ),
    else_branch: idsBranch(g, 'sampled', sampled)
  })
}

/** The decode role's first draw: rows sharing the logits of their source, no nucleus filtering. */
export interface SharedSamplerInputs {
  /** (S, V) float32 next-token logits, one row per source. */
  logits: string
  /** (B,) int64: row r draws from source index[r]. */
  index: string
  /** (B,) float32 uniforms in [0, 1]. */
  uniforms: string
  /** () float32; 0 = greedy. */
  temperature: string
  /** V, known when the graph is built (as for `buildSampler`). */
  vocab: number
}

/**
 * What `buildSampler` (no nucleus) draws for the B rows of `logits` gathered by `index`, with the
 * softmax and the CDF computed once per source instead of once per row: the K rollouts of a
 * position start from the same prefix logits. Row r's block search reads column index[r] of the
 * (V, S) CDF; every value it compares is the one the gathered rows' CDF holds (the softmax and
 * the column sums are row by row), so the ids are bit for bit `buildSampler`'s. The two-level
 * draw likewise computes the block log-masses once per source and reads each row's block from its
 * source's logits, the same values the gathered rows would hold.
 */
export function buildSharedSampler(g: GraphBuilder, x: SharedSamplerInputs): string {
  const safeT = g.op('Max', [x.temperature, g.scalarF32(1e-6)])
  const block = vocabularyBlock(x.vocab)
  const draw = (b: GraphBuilder, scaled: string): string => {
    if (block) {
      // The block log-masses once per source, each row's block read from its source's logits.
      const u = b.op('Unsqueeze', [x.uniforms, b.constI64([1])])
      const ids = sampleTwoLevel(b, scaled, u, x.vocab, block, x.index)
      return b.op('Squeeze', [ids, b.constI64([1])])
    }
    const probs = b.op('Softmax', [scaled], { axis: -1 })
    const cumulative = b.op('CumSum', [
      b.op('Transpose', [probs], { perm: [1, 0] }),
      b.scalarI64(0)
    ])
    const total = b.op('Gather', [lastOf(b, cumulative, 0), x.index], { axis: 1 })
    const u = b.op('Unsqueeze', [x.uniforms, b.constI64([0])])
    const ids = inverseCdf(b, cumulative, b.op('Mul', [u, total]), 0, x.index)
    return b.op('Squeeze', [ids, b.constI64([0])])
  }
  const sampled = (b: GraphBuilder): string =>
    b.op('If', [b.op('Equal', [safeT, b.scalarF32(1)])], {
      then_branch: idsBranch(b, 'unscaled', (s) => draw(s, x.logits)),
      else_branch: idsBranch(b, 'scaled', (s) => draw(s, s.op('Div', [x.logits, safeT])))
    })
  return g.op('If', [g.op('Equal', [x.temperature, g.scalarF32(0)])], {
    then_branch: idsBranch(g, 'greedy', (b) =>
      b.op('Gather', [b.op('ArgMax', [x.logits], { axis: -1, keepdims: 0 }), x.index])
    ),
    else_branch: idsBranch(g, 'sampled', sampled)
  })
}

/**
 * The same computation on the host, in float32 steps, to check the graph against. Not used to
 * generate: sampling stays in the graph so the KV cache never leaves the device.
 */
export function referenceSample(
  logits: Float32Array,
  u: number,
  temperature: number,
  topP: number
): number {
  const f = Math.fround
  let best = 0
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i
  if (temperature === 0) return best
  const t = f(Math.max(temperature, 1e-6))
  const scaled = Array.from(logits, (v) => f(v / t))
  const block = vocabularyBlock(logits.length)
  if (topP >= 1 && block) return referenceTwoLevel(scaled, u, block).id
  const max = scaled[best]!
  const exps = scaled.map((v) => Math.exp(v - max))
  const sum = exps.reduce((a, b) => a + b, 0)
  const probs = exps.map((e) => e / sum)
  const order = probs.map((_, i) => i)
  if (topP < 1) order.sort((a, b) => probs[b]! - probs[a]! || a - b)
  const keptOrder: number[] = []
  let mass = 0
  for (const i of order) {
    if (topP < 1 && mass >= topP) break
    keptOrder.push(i)
    mass += probs[i]!
  }
  const target = Math.max(u * mass, MIN_TARGET)
  let cumulative = 0
  for (let r = 0; r < keptOrder.length; r++) {
    cumulative += probs[keptOrder[r]!]!
    if (cumulative >= target) return keptOrder[r]!
  }
  return keptOrder[keptOrder.length - 1]!
}

/**
 * `sampleTwoLevel` on the host for one row of scaled logits, in float32 steps, with how far the
 * draw was from a boundary: the least distance of the target from a block CDF entry (relative to
 * the total) and of the in-block target from an in-block CDF entry (relative to its total). The
 * graph's exponentials round differently from the host's, so a test compares ids only where that
 * margin is wider than the rounding.
 */
export function referenceTwoLevel(
  scaled: readonly number[],
  u: number,
  s: number
): { id: number; margin: number } {
  const f = Math.fround
  const nb = scaled.length / s
  const rowMax = scaled.reduce((a, b) => Math.max(a, b), -Infinity)
  const mass = Array.from({ length: nb }, (_, k) =>
    scaled.slice(k * s, (k + 1) * s).reduce((a, v) => f(a + f(Math.exp(f(v - rowMax)))), 0)
  )
  const cum: number[] = []
  mass.forEach((m, k) => cum.push(f((k > 0 ? cum[k - 1]! : 0) + m)))
  const total = cum[nb - 1]!
  const target = Math.max(f(f(u) * total), MIN_TARGET)
  const firstReaching = (c: readonly number[], floor: number): number =>
    Math.min(c.filter((v) => v < floor).length, c.length - 1)
  const j = firstReaching(cum, target)
  const before = j > 0 ? cum[j - 1]! : 0
  const part = scaled.slice(j * s, (j + 1) * s)
  const blockMax = part.reduce((a, b) => Math.max(a, b), -Infinity)
  const weights = part.map((v) => f(Math.exp(f(v - blockMax))))
  const c: number[] = []
  weights.forEach((w, i) => c.push(f((i > 0 ? c[i - 1]! : 0) + w)))
  const blockTotal = c[s - 1]!
  const share = f(f(f(target - before) * blockTotal) / mass[j]!)
  const within = Math.min(Math.max(share, MIN_TARGET), blockTotal)
  const id = j * s + firstReaching(c, within)
  // Distance of a target from the entries either side of its pick. A target clamped to the last
  // entry (u = 1, or the in-block clamp) lands on the last positive entry whatever the rounding,
  // and entries of exactly 0 (a leading run of zero weights) are 0 in any rounding.
  const gap = (c: readonly number[], floor: number, at: number, last: number): number =>
    Math.min(
      at > 0 && c[at - 1]! > 0 ? (floor - c[at - 1]!) / last : Infinity,
      floor === last ? Infinity : (c[at]! - floor) / last
    )
  const margin = Math.min(
    gap(cum, target, j, total),
    gap(c, within, firstReaching(c, within), blockTotal)
  )
  return { id, margin }
}
