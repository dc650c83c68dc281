/**
 * What a replica's start costs in one process, the base models opened whole against the analysis
 * roles first (docs/bundle-format.md "The base graph contract"), alternating, on the demo group:
 * the load, the first analysis on the fresh sessions, a later one, and (loads from the store) the
 * first generate, which opens the whole graph when the load did not. CPU time (user + system) of
 * this process, medians; the load comes from the host cache (`host`, as for the bench's replica
 * worker, which loaded the group before) or from the optimized graphs on disk (`store`, a worker
 * that never held the group). Each variant has its own cache. Run it with the workers' malloc settings
 * (WORKER_ENV in devices/transport.ts) to match them; without the `GLIBC_TUNABLES` part it shows
 * the first analysis as it was with 4 KiB pages only.
 *
 *   MALLOC_MMAP_THRESHOLD_=131072 GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
 *     npx tsx --tsconfig tsconfig.node.json bench/replica-start.ts [--repeat 8] [--k 16]
 *     [--optimise 4] [--json]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { ensureDemoBundle, loadGroup, type LoadedGroup } from '../src/main/engine'
import { GroupCache } from '../src/main/engine/cache'

const TARGET = { provider: 'cpu' as const, threads: 1 }
const LENS = 'words-l3'
const TEXT = 'The cat sat on the red chair.'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

/** The page faults of the last `cpuMs` run (fresh memory touched for the first time). */
let lastFaults = 0

async function cpuMs<T>(run: () => Promise<T>): Promise<[number, T]> {
  const start = process.cpuUsage()
  const faults = process.resourceUsage().minorPageFault
  const value = await run()
  const used = process.cpuUsage(start)
  lastFaults = process.resourceUsage().minorPageFault - faults
  return [(used.user + used.system) / 1000, value]
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(s[s.length >> 1]! * 10) / 10
}

type Steps = Record<
  'load' | 'firstAnalysis' | 'firstAnalysisFaults' | 'laterAnalysis' | 'firstGenerate',
  number[]
>

async function main(): Promise<void> {
  const repeat = arg('repeat', 8)
  // The analyses' best-of-K (0: the lens default); the devices bench's burst uses 16.
  const bestOfK = arg('k', 0)
  // `--optimise N`: the iterative optimiser with N samples per iteration instead (its partial
  // regenerates switch a group opened with the analysis roles to the whole graph).
  const optimise = arg('optimise', 0)
  const options =
    optimise > 0
      ? { optimise: { samplesPerIteration: optimise } }
      : bestOfK > 0
        ? { bestOfK }
        : undefined
  const json = process.argv.includes('--json')
  const dir = await ensureDemoBundle()
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-replica-start-'))
  const load0 = loadavg()[0]!
  const out: Record<string, Record<string, number>> = {}
  try {
    for (const source of ['host', 'store'] as const) {
      const caches = [true, false].map(
        () =>
          new GroupCache({
            hostBytes: source === 'host' ? 1 << 30 : 0,
            optimizedDir: path.join(scratch, source)
          })
      )
      const open = (whole: boolean): Promise<LoadedGroup> =>
        loadGroup(dir, TARGET, { cache: caches[whole ? 0 : 1], analysisRolesFirst: !whole })
      // Both graphs saved once (the first load of a bundle optimises and writes them).
      for (const whole of [true, false]) {
        const g = await open(whole)
        await g.analyze({ lensId: LENS, text: TEXT, options })
        if (source === 'store') {
          await g.generate({ lensId: LENS, text: TEXT, options: { maxNewTokens: 2 } })
        }
        await g.dispose()
      }
      const steps: Record<'whole' | 'analysisFirst', Steps> = {
        whole: {
          load: [],
          firstAnalysis: [],
          firstAnalysisFaults: [],
          laterAnalysis: [],
          firstGenerate: []
        },
        analysisFirst: {
          load: [],
          firstAnalysis: [],
          firstAnalysisFaults: [],
          laterAnalysis: [],
          firstGenerate: []
        }
      }
      for (let i = 0; i < repeat; i++) {
        for (const whole of [true, false]) {
          const s = steps[whole ? 'whole' : 'analysisFirst']
          const [load, g] = await cpuMs(() => open(whole))
          s.load.push(load)
          s.firstAnalysis.push(
            (await cpuMs(() => g.analyze({ lensId: LENS, text: TEXT, options })))[0]
          )
          s.firstAnalysisFaults.push(lastFaults)
          s.laterAnalysis.push(
            (await cpuMs(() => g.analyze({ lensId: LENS, text: `${TEXT} A dog ran.`, options })))[0]
          )
          // Not with the host cache: its next reload would get the whole graph back.
          if (source === 'store') {
            const options = { maxNewTokens: 4 }
            s.firstGenerate.push(
              (await cpuMs(() => g.generate({ lensId: LENS, text: TEXT, options })))[0]
            )
          }
          await g.dispose()
        }
      }
      for (const [variant, s] of Object.entries(steps)) {
        out[`${source}_${variant}`] = Object.fromEntries(
          Object.entries(s)
            .filter(([, v]) => v.length > 0)
            .map(([k, v]) => [k.endsWith('Faults') ? k : `${k}_cpu_ms`, median(v)])
        )
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  const result = { repeat, best_of_k: bestOfK, optimise, load_avg: [load0, loadavg()[0]!], ...out }
  if (json) {
    console.log(JSON.stringify(result))
    return
  }
  console.log(
    `load average ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}, medians of ${repeat}`
  )
  for (const [k, v] of Object.entries(out)) {
    console.log(
      `${k.padEnd(20)} ${Object.entries(v)
        .map(([s, ms]) => `${s.replace('_cpu_ms', '')} ${ms}`)
        .join('  ')}  (CPU ms; faults: minor page faults)`
    )
  }
}

void main()
