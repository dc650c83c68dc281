/**
 * The base graph with only the roles an analysis uses, derived from a bundle's own graph at load.
 *
 * ONNX Runtime builds a session state (kernels and an execution plan) for every `If` branch and
 * `Loop` body when it creates a session, whether or not a run ever takes that branch; on the demo
 * that is about half of a session's creation (docs/benchmarks.md "What bounds the replica's
 * start"). The generate, patch and patchGenerate roles are about two fifths of the demo graph's
 * nodes and no analysis runs them, so a group loaded for analyses (`analysisRolesFirst`,
 * loading.ts) opens its base models with those branches replaced by a constant and switches to the
 * whole graph on the first run that needs one of them (baseModel.ts). The branches an analysis
 * does run are untouched, node for node, so their results are identical.
 *
 * Only the role dispatch that transformer.ts writes is recognised (nested `If`s on
 * `Equal(role, Constant r)`); any other graph is left whole (`null`).
 */
import { onnx } from 'onnx-proto'
import { ROLE, type Role } from './transformer'

/** The roles an analysis, a sweep and a score run; the others need the whole graph. */
export const ANALYSIS_ROLES: ReadonlySet<number> = new Set([
  ROLE.acts,
  ROLE.decode,
  ROLE.encode,
  ROLE.kl,
  ROLE.logitLens
])

const LEFT_OUT: readonly Role[] = ['generate', 'patch', 'patchGenerate']

const INT64 = onnx.TensorProto.DataType.INT64
const FLOAT = onnx.TensorProto.DataType.FLOAT

/** The int64 scalar a `Constant` node of `graph` writes to `name`, if it is one. */
function constantI64(graph: onnx.IGraphProto, name: string): number | null {
  const node = graph.node?.find((n) => n.opType === 'Constant' && n.output?.[0] === name)
  const t = node?.attribute?.find((a) => a.name === 'value')?.t
  if (!t || t.dataType !== INT64 || (t.dims?.length ?? 0) !== 0) return null
  if (t.rawData && t.rawData.byteLength === 8) {
    const raw = t.rawData
    return Number(new DataView(raw.buffer, raw.byteOffset, 8).getBigInt64(0, true))
  }
  const v = t.int64Data?.[0]
  return v === undefined ? null : Number(v)
}

/** The `If` of `graph` that tests `role == r`, with r. */
function roleIf(graph: onnx.IGraphProto): { node: onnx.INodeProto; role: number } | null {
  for (const node of graph.node ?? []) {
    if (node.opType !== 'If') continue
    const cond = graph.node?.find((n) => n.output?.[0] === node.input?.[0])
    if (cond?.opType !== 'Equal' || cond.input?.[0] !== 'role') continue
    const role = constantI64(graph, cond.input[1] ?? '')
    if (role !== null) return { node, role }
  }
  return null
}

function branch(node: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name)
}

/** A branch that only writes an empty tensor of each of `outputs`' types. */
function emptyBranch(outputs: onnx.IValueInfoProto[]): onnx.IGraphProto {
  return {
    name: 'role_not_loaded',
    output: outputs,
    node: outputs.map((o) => {
      const type = o.type?.tensorType?.elemType
      return {
        opType: 'Constant',
        input: [],
        output: [o.name ?? ''],
        attribute: [
          {
            name: 'value',
            type: onnx.AttributeProto.AttributeType.TENSOR,
            t: { dims: [0], dataType: type === INT64 ? INT64 : FLOAT, rawData: new Uint8Array(0) }
          }
        ]
      }
    })
  }
}

/**
 * The model in `bytes` with the generate, patch and patchGenerate branches of its role dispatch
 * replaced by empty constants, encoded; `null` when the graph's dispatch is not recognised or a
 * role is missing from it (the caller then uses the whole graph). Initializers, external-data
 * references and every other branch are kept as they are.
 */
export function analysisRolesModel(bytes: Uint8Array): Uint8Array | null {
  let model: onnx.ModelProto
  try {
    model = onnx.ModelProto.decode(bytes)
  } catch {
    return null
  }
  const dropped = new Set<number>()
  let graph: onnx.IGraphProto | null | undefined = model.graph
  while (graph) {
    const found = roleIf(graph)
    if (!found) break
    const then = branch(found.node, 'then_branch')
    const otherwise = branch(found.node, 'else_branch')
    if (!then?.g || !otherwise?.g) return null
    if (LEFT_OUT.some((r) => ROLE[r] === found.role)) {
      then.g = emptyBranch(then.g.output ?? [])
      dropped.add(found.role)
    }
    graph = otherwise.g
  }
  if (dropped.size !== LEFT_OUT.length) return null
  return onnx.ModelProto.encode(model).finish()
}
