/**
 * A replica's start in two versions of the engine, side by side in one process and alternating
 * load by load, so that both see the same machine (docs/benchmarks.md "Replicas"): `--old DIR` is
 * another checkout's root (e.g. `git -C /work/main archive HEAD | tar -x -C /tmp/old` with a
 * symlinked node_modules), the new one is this checkout. Each load is the bench's replica path:
 * the demo group opened from its stored analysis-roles graph (host cache off) with the validation
 * reused, then its first analysis at K = 16 and a later one. CPU time (user + system) of this
 * process and minor page faults, medians. Run it with the workers' malloc settings:
 *
 *   MALLOC_MMAP_THRESHOLD_=131072 GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
 *     npx tsx --tsconfig tsconfig.node.json bench/replica-start-ab.ts --old /tmp/old [--loads 30]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import * as engine from '../src/main/engine'
import * as cache from '../src/main/engine/cache'
import { arg, cpuMs, median } from './abCompare'

const TARGET = { provider: 'cpu' as const, threads: 1 }
const LENS = 'words-l3'
const OPTIONS = { bestOfK: 16 }

interface Version {
  loadGroup: typeof engine.loadGroup
  GroupCache: typeof cache.GroupCache
}

function faults(): number {
  return process.resourceUsage().minorPageFault
}

async function main(): Promise<void> {
  const oldRoot = arg('old')
  if (!oldRoot) throw new Error('--old DIR: the root of the checkout to compare with')
  const loads = Number(arg('loads') ?? 30)
  const old = {
    ...((await import(path.resolve(oldRoot, 'src/main/engine/index.ts'))) as Version),
    ...((await import(path.resolve(oldRoot, 'src/main/engine/cache/index.ts'))) as Version)
  }
  const versions: Record<'old' | 'new', Version> = {
    old,
    new: { loadGroup: engine.loadGroup, GroupCache: cache.GroupCache }
  }
  const dir = await engine.ensureDemoBundle()
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-replica-start-ab-'))
  const load0 = loadavg()[0]!
  const steps: Record<string, number[]> = {}
  const push = (key: string, value: number): number => {
    ;(steps[key] ??= []).push(value)
    return value
  }
  try {
    const sides = Object.entries(versions).map(([name, v]) => ({
      name,
      v,
      cache: new v.GroupCache({ hostBytes: 0, optimizedDir: path.join(scratch, name) })
    }))
    const open = (side: (typeof sides)[number]): Promise<engine.LoadedGroup> =>
      side.v.loadGroup(dir, TARGET, { cache: side.cache, analysisRolesFirst: true })
    // The first load of each validates the bundle and saves the stored graph, as the bench's
    // worker did when it loaded the group before.
    for (const side of sides) {
      const g = await open(side)
      await g.analyze({ lensId: LENS, text: 'The cat sat.', options: OPTIONS })
      await g.dispose()
    }
    for (let i = 0; i < loads; i++) {
      for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
        let t = cpuMs()
        let f = faults()
        const g = await open(side)
        const load = push(`${side.name} load_cpu_ms`, cpuMs() - t)
        push(`${side.name} load_faults`, faults() - f)
        t = cpuMs()
        f = faults()
        await g.analyze({ lensId: LENS, text: 'The cat sat on the red chair.', options: OPTIONS })
        const first = push(`${side.name} first_analysis_cpu_ms`, cpuMs() - t)
        push(`${side.name} first_analysis_faults`, faults() - f)
        push(`${side.name} load_and_first_cpu_ms`, load + first)
        t = cpuMs()
        await g.analyze({ lensId: LENS, text: 'A dog ran in the park.', options: OPTIONS })
        push(`${side.name} later_analysis_cpu_ms`, cpuMs() - t)
        await g.dispose()
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  const out: Record<string, Record<string, number>> = { old: {}, new: {} }
  for (const [key, values] of Object.entries(steps)) {
    const [side, step] = key.split(' ') as ['old' | 'new', string]
    out[side]![step] = median(values)
  }
  const result = { loads, load_avg: [load0, loadavg()[0]!], ...out }
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(result))
    return
  }
  console.log(`load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}, medians of ${loads}`)
  for (const step of Object.keys(out.new!)) {
    console.log(`${step.padEnd(26)} old ${out.old![step]}  new ${out.new![step]}`)
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err))
  process.exit(1)
})
