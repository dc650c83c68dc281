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

/** Index of the first cumulative value ≥ max(target, MIN_TARGET), clamped to `lastIndex`. */
function inverseCdf(
  g: GraphBuilder,
  cumulative: string,
  target: string,
  lastIndex: string
): string {
  const floor = g.op('Max', [target, g.scalarF32(MIN_TARGET)])
  const below = g.op('Cast', [g.op('Less', [cumulative, floor])], { to: 7 })
  const count = g.op('ReduceSum', [below, g.constI64([1])], { keepdims: 1 })
  return g.op('Min', [count, lastIndex])
}

/** The CDF's last entry, (B, 1): what u scales, so u = 1 lands exactly on the final value. */
function lastOf(g: GraphBuilder, cumulative: string, vocab: string): string {
  const last = g.op('Sub', [vocab, g.constI64([1])])
  return g.op('Gather', [cumulative, last], { axis: 1 })
}

function sampleNucleus(g: GraphBuilder, probs: string, u: string, topP: string): string {
  const axis = g.scalarI64(1)
  const vocab = g.op('Slice', [g.op('Shape', [probs]), g.constI64([1]), g.constI64([2])])
  const [sorted, order] = g.opN('TopK', [probs, vocab], 2, { axis: 1, largest: 1, sorted: 1 })
  const cumulative = g.op('CumSum', [sorted!, axis])
  // Keep a token when the mass before it is still below top_p: the first token always stays.
  const keep = g.op('Less', [g.op('Sub', [cumulative, sorted!]), topP])
  const kept = g.op('Where', [keep, sorted!, g.scalarF32(0)])
  const keptCumulative = g.op('CumSum', [kept, axis])
  const total = lastOf(g, keptCumulative, vocab)
  const rank = inverseCdf(
    g,
    keptCumulative,
    g.op('Mul', [u, total]),
    g.op('Sub', [vocab, g.constI64([1])])
  )
  return g.op('GatherElements', [order!, rank], { axis: 1 })
}

function sampleFull(g: GraphBuilder, probs: string, u: string): string {
  const cumulative = g.op('CumSum', [probs, g.scalarI64(1)])
  const vocab = g.op('Slice', [g.op('Shape', [probs]), g.constI64([1]), g.constI64([2])])
  const total = lastOf(g, cumulative, vocab)
  return inverseCdf(g, cumulative, g.op('Mul', [u, total]), g.op('Sub', [vocab, g.constI64([1])]))
}

/** Appends the sampler to `g`; returns the (B,) int64 sampled ids. */
export function buildSampler(g: GraphBuilder, x: SamplerInputs): string {
  const greedy = g.op('ArgMax', [x.logits], { axis: -1, keepdims: 0 })
  // Divide by a floor so T = 0 stays finite; that branch's result is discarded below anyway.
  const safeT = g.op('Max', [x.temperature, g.scalarF32(1e-6)])
  const probs = g.op('Softmax', [g.op('Div', [x.logits, safeT])], { axis: -1 })
  const u = g.op('Unsqueeze', [x.uniforms, g.constI64([1])])

  let sampled: string
  if (x.topP === null) {
    sampled = sampleFull(g, probs, u)
  } else {
    // Sorting the vocabulary is the expensive part: only do it when top_p actually filters.
    const nucleus = g.sub()
    const nucleusIds = sampleNucleus(nucleus, probs, u, x.topP)
    nucleus.output(nucleusIds, 'int64', null)
    const full = g.sub()
    const fullIds = sampleFull(full, probs, u)
    full.output(fullIds, 'int64', null)
    const filters = g.op('Less', [x.topP, g.scalarF32(1)])
    sampled = g.op('If', [filters], {
      then_branch: nucleus.toGraph(g.fresh('nucleus')),
      else_branch: full.toGraph(g.fresh('full'))
    })
  }
  const sampledIds = g.op('Squeeze', [sampled, g.constI64([1])])
  const isGreedy = g.op('Equal', [x.temperature, g.scalarF32(0)])
  return g.op('Where', [isGreedy, greedy, sampledIds])
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
