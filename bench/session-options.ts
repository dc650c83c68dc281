/**
 * What ONNX Runtime's session creation costs for a replica's base model, by session option, in one
 * process: the demo group's base graph with the analysis roles only (as a replica opens it,
 * graph/roleSubset.ts), created from the bundle's graph at three optimisation levels, and from
 * ORT-format graphs saved at each level and opened in place with optimisation off (the
 * optimized-graph store, engine/cache), then the engine's own options (engine/ort.ts
 * `sessionOptions`) with one option or config entry changed at a time. Variants alternate, in
 * reverse order every other round; CPU time (user + system) and wall medians.
 *
 *   npx tsx --tsconfig tsconfig.node.json bench/session-options.ts [--repeat 20] [--json]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { ensureDemoBundle } from '../src/main/engine'
import { validateBundle } from '../src/main/engine/bundle/open'
import { analysisRolesModel } from '../src/main/engine/graph/roleSubset'
import { sessionOptions } from '../src/main/engine/ort'

type Options = ort.InferenceSession.SessionOptions
const LEVELS = ['disabled', 'basic', 'extended', 'all'] as const

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(s[s.length >> 1]! * 10) / 10
}

async function main(): Promise<void> {
  const repeat = arg('repeat', 20)
  const dir = await ensureDemoBundle()
  const bundle = await validateBundle(dir)
  const graph = analysisRolesModel(new Uint8Array(await readFile(bundle.base.file)))
  if (!graph) throw new Error(`${bundle.base.file}: no analysis-roles graph`)
  const engine = sessionOptions({ provider: 'cpu', threads: 1 })
  const session = (extra: Record<string, string> = {}): Options['extra'] => ({
    session: { model_external_initializers_file_folder_path: dir, ...extra }
  })
  const scratch = await mkdtemp(path.join(tmpdir(), 'bench-session-options-'))
  const saved: Record<string, Uint8Array> = {}
  try {
    for (const level of LEVELS) {
      const file = path.join(scratch, `${level}.ort`)
      const s = await ort.InferenceSession.create(graph, {
        ...engine,
        graphOptimizationLevel: level,
        optimizedModelFilePath: file,
        extra: session()
      })
      await s.release()
      saved[level] = new Uint8Array(await readFile(file))
    }
    const inPlace = {
      use_ort_model_bytes_directly: '1',
      use_ort_model_bytes_for_initializers: '1'
    }
    const stored =
      (level: string, change: Options = {}, extra: Record<string, string> = {}) =>
      (): [Uint8Array, Options] => [
        saved[level]!,
        {
          ...engine,
          graphOptimizationLevel: 'disabled',
          ...change,
          extra: session({ ...inPlace, ...extra })
        }
      ]
    const variants: Record<string, () => [Uint8Array, Options]> = {
      'bundle graph, level all (a first load)': () => [graph, { ...engine, extra: session() }],
      'bundle graph, level basic': () => [
        graph,
        { ...engine, graphOptimizationLevel: 'basic', extra: session() }
      ],
      'bundle graph, level disabled': () => [
        graph,
        { ...engine, graphOptimizationLevel: 'disabled', extra: session() }
      ],
      ...Object.fromEntries(
        LEVELS.map((l) => [
          `stored at ${l}, in place${l === 'all' ? ' (a replica)' : ''}`,
          stored(l)
        ])
      ),
      'stored at all, copied (not in place)': () => [
        saved.all!,
        { ...engine, graphOptimizationLevel: 'disabled', extra: session() }
      ],
      'executionMode parallel': stored('all', { executionMode: 'parallel' }),
      'enableMemPattern on': stored('all', { enableMemPattern: true }),
      'enableCpuMemArena off': stored('all', { enableCpuMemArena: false }),
      'intraOpNumThreads 0 (a pool per core)': stored('all', {
        intraOpNumThreads: 0,
        interOpNumThreads: 0
      }),
      'intraOpNumThreads 2, no spinning': stored(
        'all',
        { intraOpNumThreads: 2 },
        { 'session.intra_op.allow_spinning': '0' }
      ),
      'session.disable_prepacking': stored('all', {}, { 'session.disable_prepacking': '1' }),
      'session.use_per_session_threads 0': stored(
        'all',
        {},
        { 'session.use_per_session_threads': '0' }
      ),
      'session.load_model_format ORT': stored('all', {}, { 'session.load_model_format': 'ORT' }),
      'logSeverityLevel 4': stored('all', { logSeverityLevel: 4 })
    }
    const load0 = loadavg()[0]!
    const cpu: Record<string, number[]> = {}
    const wall: Record<string, number[]> = {}
    for (let i = 0; i < repeat; i++) {
      const names = Object.keys(variants)
      for (const name of i % 2 ? names.reverse() : names) {
        const [bytes, options] = variants[name]!()
        const c = process.cpuUsage()
        const t = performance.now()
        const s = await ort.InferenceSession.create(bytes, options)
        const ms = performance.now() - t
        const used = process.cpuUsage(c)
        await s.release()
        ;(cpu[name] ??= []).push((used.user + used.system) / 1000)
        ;(wall[name] ??= []).push(ms)
      }
    }
    const rows = Object.keys(variants).map((name) => ({
      variant: name,
      cpu_ms: median(cpu[name]!),
      wall_ms: median(wall[name]!)
    }))
    const load = [load0, loadavg()[0]!]
    if (process.argv.includes('--json')) {
      console.log(JSON.stringify({ repeat, load_avg: load, rows }))
      return
    }
    console.log(
      `load average ${load[0]!.toFixed(1)} → ${load[1]!.toFixed(1)}, medians of ${repeat}`
    )
    for (const r of rows)
      console.log(`${r.variant.padEnd(42)} ${r.cpu_ms} ms CPU, ${r.wall_ms} ms wall`)
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

void main()
