/**
 * The base graph's `generate` role: a prompt's continuation, n completions at once, in one Loop
 * with the KV cache loop-carried (it never leaves the device) and sampling in the graph.
 *
 * Inputs (graph inputs with defaults, so other roles need not feed them):
 *   input_ids (1, S) int64 — the prompt, run once (prefill on one row, then the cache is broadcast)
 *   uniforms (n, M) float32 — one uniform per completion and step; n and M come from its shape
 *   temperature () float32 — 0 = greedy
 *   top_p () float32 — nucleus mass in (0, 1]
 *   logit_bias (V) float32 — added to every step's logits (-1e9 suppresses an id)
 *   stop_ids (E) int64 — a completion is finished after drawing one; the loop stops when all are
 * Output: ids (steps run, n) int64 — fewer than M rows when every completion finished early.
 */
import type { GraphBuilder } from '../graph/builder'
import type { Pass } from '../graph/blocks'
import { buildSampler, dividedLogits } from './sampler'

export const GENERATE_INPUTS = [
  'input_ids',
  'uniforms',
  'temperature',
  'top_p',
  'logit_bias',
  'stop_ids'
] as const

/** The pieces of a base architecture the generate role is built from (graph/blocks.ts). */
export interface DecoderKit {
  layers: number
  kvHeads: number
  headDim: number
  /** V: selects the sampler's two-level draw (generation/sampler.ts). */
  vocabSize: number
  /** ids (B, s) → input embeddings (B, s, d), scaled as the model expects. */
  embed(g: GraphBuilder, ids: string): string
  /** The pass over rows offset..offset+s−1 (masks per sliding window, rotary tables) and its rows. */
  beginPass(g: GraphBuilder, offset: string, s: string): { pass: Pass; rows: string }
  /** Adds absolute position information for `rows` (identity for rotary models). */
  addPositions(g: GraphBuilder, x: string, rows: string): string
  /** One block with its KV cache: past (B, KV, t, dh) in, the extended cache out. */
  block(
    g: GraphBuilder,
    layer: number,
    x: string,
    pass: Pass,
    past: { k: string; v: string }
  ): { x: string; k: string; v: string }
  /** Final norm and unembedding (with the model's own final softcap): (B, d) → (B, V). */
  logits(g: GraphBuilder, h: string): string
}

function axisDim(g: GraphBuilder, x: string, axis: number): string {
  return g.op('Shape', [x], { start: axis, end: axis + 1 })
}

function axisScalar(g: GraphBuilder, x: string, axis: number): string {
  return g.op('Squeeze', [axisDim(g, x, axis), g.constI64([0])])
}

/**
 * A residual replacement for the prompt's prefill (the `patchGenerate` role): after block `layer`,
 * the residual at prompt row `at` becomes completion i's `vectors[i]`. Graph value names.
 */
export interface PrefillPatch {
  /** int64 (): the block after which the residual is replaced. */
  layer: string
  /** int64 (): the prompt row replaced. */
  at: string
  /** float (n, d): one vector per completion. */
  vectors: string
}

/**
 * After block l: when l is the patch layer, x (1 or n, s, d) becomes (n, s, d) with row `at` of
 * completion i replaced by vectors[i]; any other layer passes x through unchanged (an If, so the
 * layers before the patch keep running on one row).
 */
function patchAfterBlock(
  g: GraphBuilder,
  l: number,
  x: string,
  atPatch: string,
  patch: PrefillPatch
): string {
  const then = g.sub()
  const replaced = then.op('Where', [
    atPatch,
    then.op('Unsqueeze', [patch.vectors, then.constI64([1])]),
    x
  ])
  const tOut = then.fresh('patched')
  then.opTo('Identity', [replaced], [tOut])
  then.output(tOut, 'float32')
  const other = g.sub()
  const eOut = other.fresh('unpatched')
  other.opTo('Identity', [x], [eOut])
  other.output(eOut, 'float32')
  return g.op('If', [g.op('Equal', [g.scalarI64(l), patch.layer])], {
    then_branch: then.toGraph('patch_then'),
    else_branch: other.toGraph('patch_else')
  })
}

/**
 * Builds the role inside `g` (an If branch); returns the (steps, n) ids. With `patch`, completion
 * i continues the prompt with its residual replaced (docs/bundle-format.md, role 7).
 */
export function buildGenerateRole(g: GraphBuilder, kit: DecoderKit, patch?: PrefillPatch): string {
  const { layers, kvHeads, headDim } = kit
  const n = axisDim(g, 'uniforms', 0)
  const steps = axisScalar(g, 'uniforms', 1)
  const prompt = kit.embed(g, 'input_ids')
  // The prompt is the same for every completion: prefill one row, broadcast its cache after.
  const emptyCache = g.op('ConstantOfShape', [g.constI64([1, kvHeads, 0, headDim])])
  const notFinished = g.op('Cast', [g.op('ConstantOfShape', [n])], { to: 9 })

  const body = g.sub()
  const iter = body.input(body.fresh('iter'), 'int64', [])
  body.input(body.fresh('cond_in'), 'bool', [])
  const xIn = body.input(body.fresh('x_in'), 'float32', null)
  const offset = body.input(body.fresh('offset'), 'int64', [])
  const finishedIn = body.input(body.fresh('finished'), 'bool', null)
  const pastK = Array.from({ length: layers }, (_, l) =>
    body.input(body.fresh(`pk${l}`), 'float32', null)
  )
  const pastV = Array.from({ length: layers }, (_, l) =>
    body.input(body.fresh(`pv${l}`), 'float32', null)
  )

  const s = axisScalar(body, xIn, 1)
  const { pass, rows } = kit.beginPass(body, offset, s)
  let x = kit.addPositions(body, xIn, rows)
  const broadcastCache = body.op('Concat', [n, body.constI64([1, 1, 1])], { axis: 0 })
  const newK: string[] = []
  const newV: string[] = []
  // Rows of this pass at the patched row, (1, s, 1): only ever true in the prefill (later steps
  // sit at offsets past the prompt).
  const atPatch = patch
    ? body.op('Unsqueeze', [body.op('Equal', [rows, patch.at]), body.constI64([0, 2])])
    : null
  for (let l = 0; l < layers; l++) {
    let past = { k: pastK[l]!, v: pastV[l]! }
    if (patch) {
      // After the patch the prefill has n rows while the (empty) cache it extends has one.
      const batch = body.op('Concat', [axisDim(body, x, 0), body.constI64([1, 1, 1])], { axis: 0 })
      past = { k: body.op('Expand', [past.k, batch]), v: body.op('Expand', [past.v, batch]) }
    }
    const r = kit.block(body, l, x, pass, past)
    x = r.x
    if (patch && atPatch) x = patchAfterBlock(body, l, x, atPatch, patch)
    newK.push(body.op('Expand', [r.k, broadcastCache]))
    newV.push(body.op('Expand', [r.v, broadcastCache]))
  }
  const last = body.op('Gather', [x, body.op('Sub', [s, body.scalarI64(1)])], { axis: 1 })
  const logits = body.op('Add', [kit.logits(body, last), 'logit_bias'])
  const rowLogits = body.op('Expand', [
    logits,
    body.op('Concat', [n, body.constI64([1])], { axis: 0 })
  ])
  const u = body.op('Gather', ['uniforms', iter], { axis: 1 })
  const id = buildSampler(body, {
    logits: dividedLogits(rowLogits),
    vocab: kit.vocabSize,
    uniforms: u,
    temperature: 'temperature',
    topP: 'top_p'
  })

  const hits = body.op(
    'Cast',
    [body.op('Equal', [body.op('Unsqueeze', [id, body.constI64([1])]), 'stop_ids'])],
    {
      to: 7
    }
  )
  const stopped = body.op('Greater', [
    body.op('ReduceSum', [hits, body.constI64([1])], { keepdims: 0 }),
    body.scalarI64(0)
  ])
  const finishedOut = body.op('Or', [finishedIn, stopped])
  const open = body.op('ReduceSum', [body.op('Cast', [body.op('Not', [finishedOut])], { to: 7 })], {
    keepdims: 0
  })

  const outputs: [string, 'bool' | 'float32' | 'int64', string][] = [
    [body.op('Greater', [open, body.scalarI64(0)]), 'bool', 'cond_out'],
    [kit.embed(body, body.op('Unsqueeze', [id, body.constI64([1])])), 'float32', 'x_out'],
    [body.op('Add', [offset, s]), 'int64', 'offset_out'],
    [finishedOut, 'bool', 'finished_out'],
    ...newK.map((k): [string, 'float32', string] => [k, 'float32', 'k_out']),
    ...newV.map((v): [string, 'float32', string] => [v, 'float32', 'v_out']),
    [id, 'int64', 'id_out']
  ]
  for (const [value, type, hint] of outputs) {
    const name = body.fresh(hint)
    body.opTo('Identity', [value], [name])
    body.output(name, type)
  }

  const carried = 3 + 2 * layers
  const outs = g.opN(
    'Loop',
    [steps, '', prompt, g.scalarI64(0), notFinished, ...Array<string>(2 * layers).fill(emptyCache)],
    carried + 1,
    { body: body.toGraph('generate_step') }
  )
  return outs[carried]!
}
