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
 */
import type { GraphBuilder } from '../graph/builder'

export interface SamplerInputs {
  /** (B, V) float32 next-token logits (logit bias already added). */
  logits: string
  /** (B,) float32 uniforms in [0, 1]. */
  uniforms: string
  /** () float32; 0 = greedy. */
  temperature: string
  /** () float32 in (0, 1]; null: no nucleus filtering (the decode role). */
  topP: string | null
}

/** Smallest normal float32: the least target, so CDF entries of exactly 0 always count as below. */
const MIN_TARGET = 1.1754943508222875e-38

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
  const probs = g.op('Softmax', [scaled], { axis: -1 })
  const u = g.op('Unsqueeze', [x.uniforms, g.constI64([1])])
  if (x.topP === null) return sampleFull(g, probs, u)
  // Sorting the vocabulary is the expensive part: only do it when top_p actually filters.
  const topP = x.topP
  return g.op('If', [g.op('Less', [topP, g.scalarF32(1)])], {
    then_branch: idsBranch(g, 'nucleus', (b) => sampleNucleus(b, probs, u, topP)),
    else_branch: idsBranch(g, 'full', (b) => sampleFull(b, probs, u))
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
      then_branch: idsBranch(b, 'unscaled', (s) => sampleScaled(s, x.logits, x)),
      else_branch: idsBranch(b, 'scaled', (s) => sampleScaled(s, s.op('Div', [x.logits, safeT]), x))
    })
    return b.op('Squeeze', [ids, b.constI64([1])])
  }
  return g.op('If', [g.op('Equal', [x.temperature, g.scalarF32(0)])], {
    then_branch: idsBranch(g, 'greedy', (b) =>
      b.op('ArgMax', [x.logits], { axis: -1, keepdims: 0 })
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
}

/**
 * What `buildSampler` (no nucleus) draws for the B rows of `logits` gathered by `index`, with the
 * softmax and the CDF computed once per source instead of once per row: the K rollouts of a
 * position start from the same prefix logits. Row r's block search reads column index[r] of the
 * (V, S) CDF; every value it compares is the one the gathered rows' CDF holds (the softmax and
 * the column sums are row by row), so the ids are bit for bit `buildSampler`'s.
 */
export function buildSharedSampler(g: GraphBuilder, x: SharedSamplerInputs): string {
  const safeT = g.op('Max', [x.temperature, g.scalarF32(1e-6)])
  const draw = (b: GraphBuilder, scaled: string): string => {
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
