/**
 * The base graph with only the roles an analysis uses, derived from a bundle's own graph at load.
 *
 * ONNX Runtime builds a session state (kernels and an execution plan) for every `If` branch and
 * `Loop` body when it creates a session, whether or not a run ever takes that branch; on the demo
 * that is about half of a session's creation (docs/benchmarks.md "What bounds the replica's
 * start"). The generate, patch and patchGenerate roles are about two fifths of the demo graph's
 * nodes and no analysis runs them, so a group loaded for analyses (`analysisRolesFirst`,
 * loading.ts) opens its base models with those branches replaced by a constant and switches to the
 * whole graph on the first run that needs one of them (baseModel.ts). The decode role's step loop
 * for rows not in runs of K per position (`decode_steps_gathered`, about 400 nodes on the demo) is
 * left out too: best-of-K and the optimiser's first draw lay their rows out in runs, and the host
 * switches to the whole graph before a decode in any other layout (`decodeRowsInRuns`). Every
 * other branch an analysis runs is untouched, node for node, so its results are identical.
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

/** A branch named `name` that only writes an empty tensor of each of `outputs`' types. */
function emptyBranch(outputs: onnx.IValueInfoProto[], name: string): onnx.IGraphProto {
  return {
    name,
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

const BY_POSITION_STEPS = 'decode_steps_by_position'
const GATHERED_STEPS = 'decode_steps_gathered'

/** The output element types of `g`, joined: two branches of one `If` must agree on them. */
function outputTypes(g: onnx.IGraphProto): string {
  return (g.output ?? []).map((o) => o.type?.tensorType?.elemType ?? -1).join(',')
}

/**
 * Replaces the decode role's step loop for rows in any layout (`decode_steps_gathered`) with an
 * empty constant, when `decodeRole` holds exactly one `If` whose branches are that loop and the
 * loop for rows in runs of K (`decode_steps_by_position`), whose condition an `And` writes (the
 * layout test, `decodeRowsInRuns`) and whose branches agree on their outputs' types; otherwise
 * the decode role is left whole. A model with the analysis roles only then runs decode only for
 * rows in runs, which every caller but the iterative optimiser's regeneration of some targets
 * asks for (baseModel.ts switches to the whole graph before any other layout).
 */
function dropGatheredSteps(decodeRole: onnx.IGraphProto): void {
  const found: onnx.IAttributeProto[] = []
  const visit = (graph: onnx.IGraphProto, outer: readonly onnx.IGraphProto[]): void => {
    const scopes = [graph, ...outer]
    for (const node of graph.node ?? []) {
      const then = branch(node, 'then_branch')?.g
      const otherwise = branch(node, 'else_branch')
      if (
        node.opType === 'If' &&
        then?.name === BY_POSITION_STEPS &&
        otherwise?.g?.name === GATHERED_STEPS &&
        (then.output?.length ?? 0) > 0 &&
        then.output!.length === otherwise.g.output?.length &&
        then.output!.length === node.output?.length &&
        outputTypes(then) === outputTypes(otherwise.g)
      ) {
        const cond = node.input?.[0]
        const producer = scopes
          .map((g) => g.node?.find((n) => n.output?.includes(cond ?? '')))
          .find((n) => n !== undefined)
        if (producer?.opType === 'And') found.push(otherwise)
      }
      for (const a of node.attribute ?? []) if (a.g) visit(a.g, scopes)
    }
  }
  visit(decodeRole, [])
  if (found.length !== 1) return
  const gathered = found[0]!
  gathered.g = emptyBranch(gathered.g!.output ?? [], `${GATHERED_STEPS}_not_loaded`)
}

/**
 * Whether a decode run's rows come in runs per position, the test the decode role's step loop
 * makes (graph/transformer.ts, `inRuns`): with Bp = `patchRows` positions and B = `rows` rows,
 * K = max(⌊B / max(Bp, 1)⌋, 1), B = Bp·K and row r continues position ⌊r / K⌋. A run of one step
 * never reaches the step loop (its only token is drawn before it), so it passes in any layout.
 */
export function decodeRowsInRuns(
  patchIndex: ArrayLike<number>,
  patchRows: number,
  rows: number,
  steps: number
): boolean {
  if (steps <= 1) return true
  const perPosition = Math.max(Math.floor(rows / Math.max(patchRows, 1)), 1)
  if (perPosition * patchRows !== rows) return false
  for (let r = 0; r < rows; r++) {
    if (patchIndex[r] !== Math.floor(r / perPosition)) return false
  }
  return true
}

/**
 * The model in `bytes` with the generate, patch and patchGenerate branches of its role dispatch
 * replaced by empty constants, and the decode role's step loop for rows not in runs of K too
 * (`dropGatheredSteps`), encoded; `null` when the graph's dispatch is not recognised or a
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
      then.g = emptyBranch(then.g.output ?? [], 'role_not_loaded')
      dropped.add(found.role)
    } else if (found.role === ROLE.decode) {
      dropGatheredSteps(then.g)
    }
    graph = otherwise.g
  }
  if (dropped.size !== LEFT_OUT.length) return null
  return onnx.ModelProto.encode(model).finish()
}
