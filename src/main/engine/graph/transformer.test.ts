/**
 * Structure of the base graph where it decides memory: the KL role must unembed only the rows it
 * reads (a (S, V) logits tensor is gigabytes for a 256k vocabulary), and the decode role must read
 * a position's prefix once and hand its cache to the position's rows through `patch_index`.
 */
import { onnx } from 'onnx-proto'
import { describe, expect, it } from 'vitest'
import { randomTransformer } from './random-weights'
import { baseInputPlaceholders, buildTransformer } from './transformer'

const dims = { hiddenSize: 16, layers: 2, heads: 2, vocabSize: 24, ffnSize: 32, maxPositions: 16 }

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
    // ...and the gathered rows are what the unembedding of P reads.
    const unembeds = nodes.filter((n) => n.opType === 'MatMul' && n.input?.[1] === 'unembed')
    const fromGather = unembeds.filter((m) => {
      const norm = producer.get(m.input![0]!)
      return norm?.opType === 'LayerNormalization' && norm.input![0] === gathers[0]!.output![0]
    })
    expect(fromGather).toHaveLength(1)
  })

  it('decode role: the prefix runs once per position; rows take its cache and logits by patch_index', () => {
    const { nodes, producer } = modelNodes()
    const byIndex = nodes.filter((n) => n.opType === 'Gather' && n.input?.[1] === 'patch_index')
    // Each layer's K and V, and the prefix's last logits: nothing B·Np·d wide.
    expect(byIndex.length).toBe(2 * dims.layers + 1)
    const sources = byIndex.map((n) => producer.get(n.input![0]!)?.opType)
    expect(sources.filter((t) => t === 'Concat' || t === 'Transpose').length).toBe(2 * dims.layers)
    expect(sources.filter((t) => t === 'MatMul').length).toBe(1)
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
})
