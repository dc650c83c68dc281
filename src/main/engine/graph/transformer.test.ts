/**
 * Structure of the base graph where it decides memory: the KL role must unembed only the rows it
 * reads (a (S, V) logits tensor is gigabytes for a 256k vocabulary), and the decode role must read
 * a position's prefix once and hand its cache to the position's rows through `patch_index`, one
 * layer at a time, while the rows carry only their own tokens' cache, and unembed and sample the
 * rows a chunk at a time. A tied head's token table must not be a constant right operand where
 * ONNX Runtime pre-packs it, which would hold the largest matrix twice.
 */
import { onnx } from 'onnx-proto'
import { describe, expect, it } from 'vitest'
import { preNormGptSpec } from '../arch/spec'
import { randomTransformer } from './random-weights'
import { baseInputPlaceholders, buildTransformer, planBaseModel } from './transformer'

const dims = { hiddenSize: 16, layers: 2, heads: 2, vocabSize: 24, ffnSize: 32, maxPositions: 16 }

/** Every node of the model with its subgraph depth (0: the main graph; 1: a branch or body of a
 * main-graph node; …). */
function nodesWithDepth(graph: onnx.IGraphProto, depth = 0): [onnx.INodeProto, number][] {
  const out: [onnx.INodeProto, number][] = []
  for (const node of graph.node ?? []) {
    out.push([node, depth])
    for (const attr of node.attribute ?? []) {
      if (attr.g) out.push(...nodesWithDepth(attr.g, depth + 1))
      for (const g of attr.graphs ?? []) out.push(...nodesWithDepth(g, depth + 1))
    }
  }
  return out
}

/** Every node of the model, subgraphs (If branches, Loop bodies) included. */
function allNodes(graph: onnx.IGraphProto): onnx.INodeProto[] {
  const out: onnx.INodeProto[] = []
  for (const node of graph.node ?? []) {
    out.push(node)
    for (const attr of node.attribute ?? []) {
      if (attr.g) out.push(...allNodes(attr.g))
      for (const g of attr.graphs ?? []) out.push(...allNodes(g))
    }
  }
  return out
}

function modelNodes(): { nodes: onnx.INodeProto[]; producer: Map<string, onnx.INodeProto> } {
  const model = onnx.ModelProto.decode(buildTransformer(randomTransformer(dims, 3)).model)
  const nodes = allNodes(model.graph!)
  const producer = new Map<string, onnx.INodeProto>()
  for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n)
  return { nodes, producer }
}

/** The values of the int64 Constant node that produces `name`. */
function int64Constant(name: string, producer: Map<string, onnx.INodeProto>): number[] {
  const t = producer.get(name)?.attribute?.[0]?.t
  const raw = t?.rawData ? Uint8Array.from(t.rawData) : new Uint8Array(0)
  return Array.from(new BigInt64Array(raw.buffer), Number)
}

/** The op types on the path back from `name` through each node's first input. */
function upstream(name: string, producer: Map<string, onnx.INodeProto>, depth = 6): string[] {
  const types: string[] = []
  let cur = producer.get(name)
  while (cur && types.length < depth) {
    types.push(cur.opType!)
    if (cur.opType === 'MatMul' && cur.input?.[1] === 'unembed') break
    cur = producer.get(cur.input?.[0] ?? '')
  }
  return types
}

describe('base graph structure', () => {
  it('KL role: gathers the rows at `positions` before the final norm and unembedding', () => {
    const { nodes, producer } = modelNodes()
    const gathers = nodes.filter((n) => n.opType === 'Gather' && n.input?.[1] === 'positions')
    expect(gathers).toHaveLength(1)
    // What is gathered is the hidden state, not log-probabilities over the whole text.
    const gathered = upstream(gathers[0]!.input![0]!, producer)
    expect(gathered).not.toContain('LogSoftmax')
    expect(gathered).not.toContain('MatMul')
    // ...and the gathered rows are what the unembedding of P reads: P's rows first, then Q's,
    // joined so that one pass over the unembedding serves both.
    const unembeds = nodes.filter((n) => n.opType === 'MatMul' && n.input?.[1] === 'unembed')
    const fromGather = unembeds.filter((m) => {
      const norm = producer.get(m.input![0]!)
      const joined =
        norm?.opType === 'LayerNormalization' ? producer.get(norm.input![0]!) : undefined
      return joined?.opType === 'Concat' && joined.input![0] === gathers[0]!.output![0]
    })
    expect(fromGather).toHaveLength(1)
  })

  it('decode role: the prefix runs once per position; rows take its cache and logits by patch_index', () => {
    const { nodes, producer } = modelNodes()
    const bodyOf = (loop: onnx.INodeProto): onnx.IGraphProto =>
      loop.attribute!.find((a) => a.name === 'body')!.g!
    /** The Loops whose body (at any depth) produces `name`, outermost first. */
    const loopsAround = (name: string): onnx.INodeProto[] =>
      nodes.filter(
        (n) => n.opType === 'Loop' && allNodes(bodyOf(n)).some((b) => b.output![0] === name)
      )
    // Each layer's K and V by patch_index, joined with the rows' own tokens: nothing B·Np·d wide.
    const joined = new Set(nodes.filter((n) => n.opType === 'Concat').flatMap((n) => n.input!))
    const kvGathers = nodes.filter(
      (n) => n.opType === 'Gather' && n.input?.[1] === 'patch_index' && joined.has(n.output![0]!)
    )
    expect(kvGathers.length).toBe(2 * dims.layers)
    // Step 0 draws from one CDF per position: the rows read their position's column of a CDF
    // built from the prefix's (Bp, V) logits, outside every loop.
    const sampleGathers = nodes.filter(
      (n) => n.opType === 'Gather' && n.input?.[1] === 'patch_index' && !joined.has(n.output![0]!)
    )
    const fromCdf = sampleGathers.filter((n) => upstream(n.input![0]!, producer).includes('CumSum'))
    expect(fromCdf.length).toBeGreaterThan(0)
    for (const n of fromCdf) {
      expect(upstream(n.input![0]!, producer)).toContain('Softmax')
      expect(loopsAround(n.output![0]!)).toHaveLength(0)
    }
    // Beyond a chunk's worth of positions the prefix's last logits are gathered to the rows one
    // chunk of patch_index at a time, inside the chunk loop of step 0 (not in the steps' loop).
    const logitGathers = nodes.filter(
      (n) =>
        n.opType === 'Gather' &&
        producer.get(n.input![1]!)?.opType === 'Slice' &&
        producer.get(n.input![1]!)?.input?.[0] === 'patch_index'
    )
    expect(logitGathers).toHaveLength(1)
    expect(producer.get(logitGathers[0]!.input![0]!)?.opType).toBe('MatMul')
    const aroundFirst = loopsAround(logitGathers[0]!.output![0]!)
    expect(aroundFirst).toHaveLength(1)
    // Every later token is drawn at the start of the step loop's next iteration, from the rows the
    // iteration before left (a loop-carried input, sliced into chunks inside a chunk loop), so the
    // sampler meets one copy of the rows' caches; the steps come twice, attending to the prefix
    // per position (rows in runs of K) or gathered. The last token is drawn after the loop. Each
    // draw unembeds its chunk inside the sampler's temperature branches (argmax, T = 1, the rows
    // divided by T), so the chunk's logits are the one vocabulary-wide tensor a branch holds.
    const chunkRows = (n: onnx.INodeProto): onnx.INodeProto | undefined => {
      const from = producer.get(n.input![0]!)
      if (from?.opType === 'Div') return producer.get(from.input![0]!)
      return from
    }
    const stepUnembeds = nodes.filter(
      (n) => n.opType === 'MatMul' && n.input?.[1] === 'unembed' && chunkRows(n)?.opType === 'Slice'
    )
    expect(stepUnembeds).toHaveLength(9)
    const aroundUnembeds = stepUnembeds.map((u) => loopsAround(u.output![0]!))
    expect(aroundUnembeds.map((a) => a.length).sort()).toEqual([1, 1, 1, 2, 2, 2, 2, 2, 2])
    const stepLoops = stepUnembeds.flatMap((u, i) => {
      const around = aroundUnembeds[i]!
      if (around.length === 1) return []
      expect(around).not.toContain(aroundFirst[0])
      const sliced = chunkRows(u)!.input![0]
      expect(sliced).toBe(bodyOf(around[0]!).input![2]!.name)
      return [around[0]!]
    })
    expect(new Set(stepLoops).size).toBe(2)
    // Gathered: the prefix's K/V are gathered per layer inside the step, straight into that step's
    // attention (a transient), never into the loop-carried cache.
    const loops = loopsAround(kvGathers[0]!.output![0]!)
    expect(loops).toHaveLength(1)
    const gathered = loops[0]!
    expect(stepLoops).toContain(gathered)
    const inBody = new Set(allNodes(bodyOf(gathered)).map((n) => n.output![0]))
    for (const n of kvGathers) {
      expect(inBody.has(n.output![0])).toBe(true)
      const users = nodes.filter((u) => u.input?.includes(n.output![0]!))
      expect(users.map((u) => u.opType)).toEqual(['Concat'])
    }
    // By position: nothing reads patch_index but for its length, and the prefix's keys and values (the names the
    // gathered steps gather) meet the rows' queries and weights only in products, never copied.
    const byPosition = stepLoops.find((l) => l !== gathered)!
    const positionNodes = allNodes(bodyOf(byPosition))
    const readers = positionNodes.filter((n) => n.input?.includes('patch_index'))
    expect(readers.map((n) => n.opType).filter((t) => t !== 'Shape')).toEqual([])
    for (const prefixKv of kvGathers.map((n) => n.input![0]!)) {
      const users = positionNodes.filter((u) => u.input?.includes(prefixKv) && u.opType !== 'Shape')
      expect(users.length).toBeGreaterThan(0)
      for (const u of users) {
        const through =
          u.opType === 'Transpose'
            ? positionNodes.filter((m) => m.input?.includes(u.output![0]!))
            : [u]
        expect(through.map((m) => m.opType)).toEqual(['MatMul'])
      }
    }
    // Both carry only the rows' own tokens: empty at the start, one more each step (Concat), and
    // the body hands those tensors back whole (Slice to the end, on axis 2), but for the last
    // iteration's, which nothing reads: ONNX Runtime copies a Loop's carried values out at its
    // end, and there they hold no tokens (sliced to 0 when iter + 1 = the trip count).
    for (const loop of stepLoops) {
      const carriedIn = loop.input!.slice(4)
      expect(carriedIn).toHaveLength(2 * dims.layers)
      expect(new Set(carriedIn).size).toBe(1)
      expect(producer.get(carriedIn[0]!)?.opType).toBe('Expand')
      const body = bodyOf(loop)
      const carriedOut = body.output!.slice(3, 3 + 2 * dims.layers)
      carriedOut.forEach((o, i) => {
        const kept = producer.get(o.name!)!
        expect(kept.opType).toBe('Slice')
        const grow = producer.get(kept.input![0]!)!
        expect(grow.opType).toBe('Concat')
        expect(grow.input![0]).toBe(body.input![4 + i]!.name)
        const [, starts, ends, axes] = kept.input!
        expect([starts, axes].map((n) => int64Constant(n!, producer))).toEqual([[0], [2]])
        const choice = producer.get(ends!)!
        expect(choice.opType).toBe('Where')
        const last = producer.get(choice.input![0]!)!
        expect(last.opType).toBe('Equal')
        // iter + 1 against the trip count (the Loop's first input).
        const next = producer.get(last.input![0]!)!
        expect(next.opType).toBe('Add')
        expect(next.input![0]).toBe(body.input![0]!.name)
        expect(last.input![1]).toBe(loop.input![0])
        expect(int64Constant(choice.input![1]!, producer)).toEqual([0])
      })
    }
    // Patch vectors are sliced per layer (axis 1), never expanded to the B rows.
    const patchGathers = nodes.filter(
      (n) => n.opType === 'Gather' && n.input?.[0] === 'patch_vectors'
    )
    expect(patchGathers.length).toBe(dims.layers)
    expect(baseInputPlaceholders(dims.hiddenSize).patch_index!.shape).toEqual(['B'])
    expect(baseInputPlaceholders(dims.hiddenSize).patch_vectors!.shape).toEqual([
      'Bp',
      'Np',
      dims.hiddenSize
    ])
  })

  it('tied head: the token table is a right operand only in nested subgraphs, where ONNX Runtime does not pre-pack it', () => {
    // ONNX Runtime 1.30's CPU MatMul/Gemm pre-pack a constant right operand that is an initializer
    // of their own graph or of the graph directly around it, and keep that packed copy beside the
    // original, which the input Gather still reads: measured on a (262,144 × 640) table, a Gemm
    // (transB) in the main graph or in a main-graph If branch held 1.37 GB after load, the same
    // Gemm one If deeper 0.03 GB (docs/benchmarks.md "At real shapes", memory). Every unembedding
    // here is at least two levels down (the role dispatch, then a layer or loop).
    const spec = { ...preNormGptSpec({ ...dims, embeddingScale: 1 }), tiedEmbeddings: true }
    const model = onnx.ModelProto.decode(planBaseModel(spec, 'base.onnx.data').model)
    expect(model.graph!.initializer!.map((t) => t.name)).not.toContain('unembed')
    const users = nodesWithDepth(model.graph!).filter(([n]) => n.input?.includes('tok_emb'))
    const rightOperand = users.filter(([n]) => n.input!.indexOf('tok_emb') > 0)
    // Every role that unembeds does it with the table: KL, the logit lens, the decode role's
    // prefix and steps, generation and patched generation.
    expect(rightOperand.length).toBeGreaterThanOrEqual(5)
    for (const [n, depth] of rightOperand) {
      expect(['Gemm', 'MatMul']).toContain(n.opType)
      expect(depth).toBeGreaterThanOrEqual(2)
    }
  })
})
