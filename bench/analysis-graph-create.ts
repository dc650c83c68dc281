/**
 * What ONNX Runtime's creation of the demo's analysis-roles session costs in two versions of the
 * role subset (graph/roleSubset.ts), side by side in one process and alternating (old, new, new,
 * old): `--old DIR` is another checkout's root (e.g. `git -C /work/main archive HEAD | tar -x -C
 * /tmp/old` with a symlinked node_modules), the new one is this checkout. Each subset is optimized
 * once and saved in ORT format, as the optimized-graph store holds it; the sessions timed are
 * created from those bytes as a replica's load creates them (`preOptimized`, no optimisation). CPU
 * time (user + system) of this process per creation, medians; the node and graph counts of each
 * subset (every node of every subgraph, before optimisation). Run it with the workers' malloc
 * settings:
 *
 *   MALLOC_MMAP_THRESHOLD_=131072 GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
 *     npx tsx --tsconfig tsconfig.node.json bench/analysis-graph-create.ts --old /tmp/old [--n 12]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { onnx } from 'onnx-proto'
import { ensureDemoBundle } from '../src/main/engine'
import { analysisRolesModel } from '../src/main/engine/graph/roleSubset'
import { Session } from '../src/main/engine/ort'
import { arg, cpuMs, median } from './abCompare'

const TARGET = { provider: 'cpu' as const, threads: 1 }

/** Nodes and graphs of `g`, its subgraphs included. */
function counts(g: onnx.IGraphProto): { nodes: number; graphs: number } {
  let nodes = 0
  let graphs = 1
  for (const node of g.node ?? []) {
    nodes++
    for (const a of node.attribute ?? []) {
      if (!a.g) continue
      const sub = counts(a.g)
      nodes += sub.nodes
      graphs += sub.graphs
    }
  }
  return { nodes, graphs }
}

async function main(): Promise<void> {
  const oldRoot = arg('old')
  if (!oldRoot) throw new Error('--old DIR: the root of the checkout to compare with')
  const n = Number(arg('n') ?? 12)
  const oldSubset = (
    (await import(path.resolve(oldRoot, 'src/main/engine/graph/roleSubset.ts'))) as {
      analysisRolesModel: typeof analysisRolesModel
    }
  ).analysisRolesModel
  const dir = await ensureDemoBundle()
  const file = path.join(dir, 'demo-base.onnx')
  const bytes = new Uint8Array(await readFile(file))
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-analysis-graph-'))
  const load0 = loadavg()[0]!
  try {
    const graphs = { whole: bytes, old: oldSubset(bytes)!, new: analysisRolesModel(bytes)! }
    const shape = Object.fromEntries(
      Object.entries(graphs).map(([k, b]) => [k, counts(onnx.ModelProto.decode(b).graph!)])
    )
    // Each subset optimized and saved once, as the store keeps it.
    const stored: Record<'old' | 'new', Uint8Array> = {} as Record<'old' | 'new', Uint8Array>
    for (const side of ['old', 'new'] as const) {
      const to = path.join(scratch, `${side}.ort`)
      const s = await Session.create(graphs[side], TARGET, {
        externalDataFolder: dir,
        saveOptimizedTo: to
      })
      await s.release()
      stored[side] = new Uint8Array(await readFile(to))
    }
    const create = async (side: 'old' | 'new'): Promise<number> => {
      const t = cpuMs()
      const s = await Session.create(stored[side], TARGET, { preOptimized: true })
      const used = cpuMs() - t
      await s.release()
      return used
    }
    // One creation each first: the first in a process pays ONNX Runtime's own start.
    await create('old')
    await create('new')
    const ms: Record<'old' | 'new', number[]> = { old: [], new: [] }
    for (let i = 0; i < n; i++) {
      for (const side of i % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const)) {
        ms[side].push(await create(side))
      }
    }
    console.log(
      JSON.stringify({
        load_avg: [load0, loadavg()[0]!].map((x) => Math.round(x * 10) / 10),
        creations: n,
        nodes: shape,
        stored_bytes: { old: stored.old.byteLength, new: stored.new.byteLength },
        create_cpu_ms_median: { old: median(ms.old), new: median(ms.new) },
        // Creation i of each side ran next to the other's (old, new, new, old, …).
        old_minus_new_ms_median: median(ms.old.map((x, i) => x - ms.new[i]!)),
        create_cpu_ms: ms
      })
    )
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

void main()
