/**
 * Reload benchmark: a group load with no cache (cold) against a reload from the worker's host
 * cache, on the demo group and a d=512, 8-layer, 8192-word synthetic bundle (generated once under
 * .cache/bench). Also the first load that writes the optimized graphs, a load that reads them from
 * disk (a fresh worker), and the unload with and without the cache. Bundle files are in the OS page
 * cache for every variant, so "cold" means no app cache, not a cold disk. `--json`: one line.
 *
 *   npm run bench:reload [-- --json] [--repeat 5] [--threads 1]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ensureDemoBundle, GroupCache, loadGroup, type LoadedGroup } from '../src/main/engine'
import type { SessionTarget } from '../src/main/engine/ort'
import { syntheticBenchBundle } from './load-stages'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

const json = process.argv.includes('--json')
const log = (line: string): void => {
  if (!json) console.log(line)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now()
  const v = await fn()
  return [v, performance.now() - t]
}

async function rowsOf(g: LoadedGroup, text: string): Promise<string> {
  const r = await g.analyze({
    lensId: g.summary.lenses[0]!.id,
    text,
    options: { bestOfK: 2, salience: false, kl: false }
  })
  return JSON.stringify(r.rows)
}

interface GroupFigures {
  cold_ms: number
  first_save_ms: number
  disk_hit_ms: number
  host_hit_ms: number
  speedup: number
  unload_ms: number
  unload_cached_ms: number
  cached_mb: number
  identical: boolean
}

async function measure(dir: string, target: SessionTarget, repeat: number): Promise<GroupFigures> {
  const text = dir.includes('synthetic') ? 'w1 w2 w3 w4 w5 w6' : 'The cat sat on the red chair.'
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'bench-reload-'))
  const cold: number[] = []
  const firstSave: number[] = []
  const disk: number[] = []
  const host: number[] = []
  const unload: number[] = []
  const unloadCached: number[] = []
  let identical = true
  let cachedBytes = 0
  try {
    for (let r = 0; r < repeat; r++) {
      const [plain, coldMs] = await timed(() => loadGroup(dir, target))
      cold.push(coldMs)
      const want = await rowsOf(plain, text)
      unload.push((await timed(() => plain.dispose()))[1])

      // A new optimized-graph folder each round: this load optimizes and writes the graphs.
      const cache = new GroupCache({
        hostBytes: 4 * 1024 ** 3,
        optimizedDir: path.join(scratch, `opt-${r}`)
      })
      const [first, firstMs] = await timed(() => loadGroup(dir, target, { cache }))
      firstSave.push(firstMs)
      identical &&= (await rowsOf(first, text)) === want
      unloadCached.push((await timed(() => first.dispose()))[1])
      cachedBytes = cache.host.bytes

      const [again, hostMs] = await timed(() => loadGroup(dir, target, { cache }))
      host.push(hostMs)
      identical &&= (await rowsOf(again, text)) === want
      await again.dispose()

      const fresh = new GroupCache({ hostBytes: 0, optimizedDir: path.join(scratch, `opt-${r}`) })
      const [fromDisk, diskMs] = await timed(() => loadGroup(dir, target, { cache: fresh }))
      disk.push(diskMs)
      identical &&= (await rowsOf(fromDisk, text)) === want
      await fromDisk.dispose()
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  const round = (x: number): number => Math.round(x * 10) / 10
  return {
    cold_ms: round(median(cold)),
    first_save_ms: round(median(firstSave)),
    disk_hit_ms: round(median(disk)),
    host_hit_ms: round(median(host)),
    speedup: round(median(cold) / median(host)),
    unload_ms: round(median(unload)),
    unload_cached_ms: round(median(unloadCached)),
    cached_mb: round(cachedBytes / 1e6),
    identical
  }
}

async function main(): Promise<void> {
  const repeat = arg('repeat', 5)
  const target: SessionTarget = { provider: 'cpu', threads: arg('threads', 1) }
  const out: Record<string, unknown> = {}
  for (const [name, dir] of [
    ['demo', await ensureDemoBundle()],
    ['synthetic_d512_l8_v8192', await syntheticBenchBundle()]
  ] as const) {
    const f = await measure(dir, target, repeat)
    out[name] = f
    log(
      `${name}: cold load ${f.cold_ms} ms, reload from host cache ${f.host_hit_ms} ms → ${f.speedup}×; ` +
        `first load writing optimized graphs ${f.first_save_ms} ms, fresh worker reading them ${f.disk_hit_ms} ms; ` +
        `unload ${f.unload_ms} ms (${f.unload_cached_ms} ms keeping ${f.cached_mb} MB); identical rows: ${f.identical}`
    )
  }
  const load = os.loadavg()[0]!
  log(
    `median of ${repeat}, cpu provider, ${target.threads} thread(s); load average ${load.toFixed(2)} on ${os.cpus().length} cores`
  )
  if (json) {
    console.log(
      JSON.stringify({
        ...out,
        repeat,
        threads: target.threads,
        cores: os.cpus().length,
        load_avg_1m: Number(load.toFixed(2))
      })
    )
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err))
  process.exit(1)
})
