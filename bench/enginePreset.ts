/**
 * `npm run bench -- --preset gpt2|qwen3-0.6b|gemma3-270m`: the engine at a real model's shapes.
 * The preset's random-weight checkpoint imported as a group with a random-weight lens read through
 * the real lens importer (bench/presetLens.ts, cached), then, in a fresh process so its peak RSS is
 * its own, the standard analysis (K = 16 of a 64-token text, salience and KL on) after a 2-position
 * warm-up: explanations/s, tokens/s, achieved GFLOP/s (FLOP count in docs/benchmarks.md "At real
 * shapes") against a 1024³ MatMul in the same process, peak RSS against 1.5 × the float32 weights
 * + 0.5 GB, and the group's CPU placement estimate against the memory the analysis measured.
 *
 * Then (unless `--no-ab`) explanations/s with the decoder prefix run once per position (the
 * engine) against once per rollout (how the decode role ran before: every row its own prefix),
 * same weights, inputs and seed, in one process, runs interleaved, on the first `--ab-positions`
 * positions (default 16: one engine batch). The old way is made by handing the decode role each
 * row's own copy of its position's patch vectors with an identity `patch_index` (its prefix pass
 * then has one row per rollout, as the old graph's did), in this bench only.
 *
 *   npm run bench -- --preset NAME [--json] [--threads N] [--positions 64] [--no-ab | --ab-only]
 *                    [--ab-runs 2] [--ab-positions 16]
 */
import os from 'node:os'
import type { AnalysisResult } from '@shared/domain/analysis'
import { loadGroup, type LoadedGroup } from '../src/main/engine'
import { BaseModel } from '../src/main/engine/baseModel'
import { WORKER_EXEC_ARGV, workerEnv } from '../src/main/devices/transport'
import { runBenchChild } from './childProcess'
import { isPresetName, PRESETS, type PresetName } from './hfPresets'
import { matmulPeak } from './matmulPeak'
import { ensurePresetGroup, PRESET_LENS, type LensFamily } from './presetLens'

const GB = 1e9
const K = 16
const S = 64
/** The CPU rows budget (DEFAULT_ROWS_PER_BATCH.cpu): positions per engine batch = 256 / K. */
const ROWS_PER_BATCH = 256
const KL_CHUNK_ROWS = 64

const argv = process.argv.slice(2)
function arg(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}
const json = argv.includes('--json')
// Progress and figures go to stderr also with --json (a run takes minutes); the JSON to stdout.
const log = (line: string): void => {
  process.stderr.write(line + '\n')
}
const threads = Number(arg('threads') ?? String(os.availableParallelism()))
/** Positions analysed (the first N of the 64-token text); all 64 unless `--positions`. */
const positions = Number(arg('positions') ?? String(S))

// ── FLOP count ───────────────────────────────────────────────────────────────────────────────────

/** The base's shapes the FLOP count needs (from the preset's published config). */
export interface ArchShape {
  d: number
  layers: number
  heads: number
  kvHeads: number
  headDim: number
  /** FFN width. */
  ffn: number
  /** Gated MLP (SwiGLU / GeGLU: gate, up and down matrices) or GPT-2's two. */
  gated: boolean
  vocab: number
}

export function archShape(name: PresetName): ArchShape {
  const c = PRESETS[name].config
  if (c.model_type === 'gpt2') {
    const d = Number(c.n_embd)
    return {
      d,
      layers: Number(c.n_layer),
      heads: Number(c.n_head),
      kvHeads: Number(c.n_head),
      headDim: d / Number(c.n_head),
      ffn: 4 * d,
      gated: false,
      vocab: Number(c.vocab_size)
    }
  }
  return {
    d: Number(c.hidden_size),
    layers: Number(c.num_hidden_layers),
    heads: Number(c.num_attention_heads),
    kvHeads: Number(c.num_key_value_heads),
    headDim: Number(c.head_dim),
    ffn: Number(c.intermediate_size),
    gated: true,
    vocab: Number(c.vocab_size)
  }
}

/**
 * FLOPs of one block pass over `n` new rows attending to `ctx` keys on average: q/k/v/o
 * projections at the real head counts (GQA: k and v are kvHeads·headDim wide; headDim need not be
 * d / heads), the MLP's 2 or 3 matrices, scores and weighted sum over the query heads.
 */
export function blockFlops(a: ArchShape, n: number, ctx: number): number {
  const q = a.heads * a.headDim
  const kv = a.kvHeads * a.headDim
  const projections = 2 * n * a.d * (q + 2 * kv) + 2 * n * q * a.d
  const mlp = 2 * n * a.d * a.ffn * (a.gated ? 3 : 2)
  const attention = 2 * 2 * n * ctx * q
  return projections + mlp + attention
}

export interface LensShape {
  /** Decoder prefix rows P, patched layers Np, explanation tokens T. */
  prefixRows: number
  patchLayers: number
  tokens: number
  /** Encoder prefix rows (the soft prompt, the same for every row of a batch). */
  encoderPrefix: number
  /** Encoder rows after the explanation's T: the current token (when added) and the suffix. */
  encoderAfter: number
  /** The lens layer L (activations) and the encoder's output layer k. */
  layer: number
  outputLayer: number
}

export function lensShape(f: LensFamily): LensShape {
  return {
    prefixRows: f.n_left + 1 + f.n_right,
    patchLayers: Number(f.patch_all_layers === true ? f.layers : f.patch_all_layers),
    tokens: f.t_text,
    encoderPrefix: f.n_soft,
    encoderAfter: (f.add_current_token ? 1 : 0) + f.n_post,
    layer: f.layer_l,
    outputLayer: f.output_layer
  }
}

/**
 * MatMul and attention FLOPs of one analysis of the first `s` positions of a `text`-token text at
 * best-of-`k`, by stage.
 */
export function analysisFlops(
  a: ArchShape,
  l: LensShape,
  text: number,
  s: number,
  k: number
): Record<'acts' | 'decode' | 'encode' | 'salience' | 'kl', number> & { total: number } {
  const { d, layers, vocab: V } = a
  const { prefixRows: P, tokens: T } = l
  const unembed = 2 * d * V
  const layersTo = (n: number, ctx: number, count: number): number => count * blockFlops(a, n, ctx)
  const acts = layersTo(text, (text + 1) / 2, l.layer + 1)
  // The prefix once per position (its last row unembedded for step 0), then T − 1 one-token steps
  // per rollout; the projection to Np patch vectors once per position.
  const prefix = layersTo(P, (P + 1) / 2, layers) + unembed
  const step = layersTo(1, P + T / 2, layers) + unembed
  const projection = l.patchLayers * 2 * d * d
  const decode = s * (prefix + projection) + s * k * (T - 1) * step
  // Encoder: per call of the encode role (an engine batch's rows, in chunks of at most
  // ROWS_PER_BATCH), the prefix once through blocks 0..k; every row's m rows after it (the
  // explanation, the current token, the suffix) through the same blocks, attending to the prefix
  // and their own causal keys; then the projection head per row.
  const Pe = l.encoderPrefix
  const m = T + l.encoderAfter
  const encodeCall = (rows: number): number =>
    layersTo(Pe, (Pe + 1) / 2, l.outputLayer + 1) +
    rows * (layersTo(m, Pe + (m + 1) / 2, l.outputLayer + 1) + 2 * d * d)
  const encodeRows = (rows: number): number => {
    let f = 0
    for (let start = 0; start < rows; start += ROWS_PER_BATCH)
      f += encodeCall(Math.min(ROWS_PER_BATCH, rows - start))
    return f
  }
  // KL: per engine batch of b positions, an unmodified pass over the whole text (per run of up to
  // 64 rows), the b rows unembedded, and b replaced rows through the blocks after L and unembedded
  // (runs are not padded; a run of one row goes as two, which is not counted).
  const perBatch = Math.max(1, Math.floor(ROWS_PER_BATCH / k))
  let kl = 0
  let encode = 0
  let salience = 0
  for (let start = 0; start < s; start += perBatch) {
    const b = Math.min(perBatch, s - start)
    encode += encodeRows(b * k)
    salience += encodeRows(b * T)
    const chunks = Math.ceil(b / KL_CHUNK_ROWS)
    const replaced = layersTo(b, text / 2, layers - l.layer - 1)
    kl += chunks * layersTo(text, (text + 1) / 2, layers) + 2 * b * unembed + replaced
  }
  const parts = { acts, decode, encode, salience, kl }
  return { ...parts, total: acts + decode + encode + salience + kl }
}

// ── the analysis (child processes) ───────────────────────────────────────────────────────────────

const WORDS = (
  'the river ran past the old mill where a quiet green light fell on stone and water while ' +
  'north of the town a model of the lens was read by every layer of the network'
).split(' ')

/** A text of exactly `n` tokens in this group's tokenizer (BOS included where it adds one). */
function textOfTokens(group: LoadedGroup, n: number): string {
  let text = ''
  for (let i = 0; group.tokenize(text).ids.length < n; i++)
    text += (i ? ' ' : '') + WORDS[i % WORDS.length]
  while (group.tokenize(text).ids.length > n) text = text.slice(0, -1)
  if (group.tokenize(text).ids.length !== n)
    throw new Error(`no ${n}-token text for this tokenizer`)
  return text
}

const maxRssBytes = (): number => process.resourceUsage().maxRSS * 1024

async function childAnalyze(dir: string): Promise<unknown> {
  const target = { provider: 'cpu' as const, threads }
  // The MatMul peak before and after the analysis: on a shared machine the load moves meanwhile.
  const peakBefore = await matmulPeak(target)
  const before = process.memoryUsage().rss
  const group = await loadGroup(dir, target)
  const lensId = group.summary.lenses[0]!.id
  const text = textOfTokens(group, S)
  await group.analyze({ lensId, text, options: { bestOfK: K, positions: { start: 0, end: 2 } } })
  const t = performance.now()
  const result = await group.analyze({
    lensId,
    text,
    options: { bestOfK: K, positions: { start: 0, end: positions } }
  })
  const seconds = (performance.now() - t) / 1000
  const peakRss = maxRssBytes()
  const summary = group.summary
  await group.dispose()
  const peakAfter = await matmulPeak(target)
  return {
    seconds,
    positions: result.rows.length,
    timings: result.metadata.timings,
    before,
    peakRss,
    peakGflops: Math.max(peakBefore, peakAfter),
    peakGflopsBeforeAfter: [peakBefore, peakAfter],
    estimatedCpu: summary.estimatedBytesByKind?.cpu ?? summary.estimatedBytes,
    weightBytes: summary.weightBytes
  }
}

/**
 * The decode role as it ran before the prefix-once change, for this bench only: each row gets its
 * own copy of its position's patch vectors and an identity `patch_index`, so the graph's prefix
 * pass runs once per rollout instead of once per position. Returns a switch and the ids decoded.
 */
function installOldDecodeSwitch(): { old: { on: boolean }; decoded: Int32Array[] } {
  const old = { on: false }
  const decoded: Int32Array[] = []
  const original = BaseModel.prototype.decode
  BaseModel.prototype.decode = async function (this: BaseModel, args) {
    let call = args
    if (old.on) {
      const per = args.patchLayers * this.hiddenSize
      const patch = new Float32Array(args.rows * per)
      for (let r = 0; r < args.rows; r++) {
        const p = args.patchIndex[r]!
        patch.set(args.patch.subarray(p * per, (p + 1) * per), r * per)
      }
      call = {
        ...args,
        patch,
        patchRows: args.rows,
        patchIndex: Array.from({ length: args.rows }, (_, r) => r)
      }
    }
    const ids = await original.call(this, call)
    decoded.push(ids)
    return ids
  }
  return { old, decoded }
}

async function childCompare(dir: string): Promise<unknown> {
  const runs = Number(arg('ab-runs') ?? '2')
  const abPositions = Number(arg('ab-positions') ?? '16')
  const { old, decoded } = installOldDecodeSwitch()
  const group = await loadGroup(dir, { provider: 'cpu', threads })
  const lensId = group.summary.lenses[0]!.id
  const text = textOfTokens(group, S)
  const run = async (
    useOld: boolean,
    end = abPositions
  ): Promise<{ seconds: number; result: AnalysisResult }> => {
    old.on = useOld
    decoded.length = 0
    const t = performance.now()
    const result = await group.analyze({
      lensId,
      text,
      options: { bestOfK: K, positions: { start: 0, end } }
    })
    return { seconds: (performance.now() - t) / 1000, result }
  }
  // Warm-up of both paths (kernel choice, weight prepacking), as the main run's.
  await run(true, 2)
  await run(false, 2)
  const seconds: { old: number[]; new: number[] } = { old: [], new: [] }
  const decodeMs: { old: number[]; new: number[] } = { old: [], new: [] }
  let idsOld: Int32Array[] | null = null
  let idsNew: Int32Array[] | null = null
  for (let i = 0; i < runs; i++) {
    // ABBA order: each path goes first in half the pairs.
    for (const useOld of i % 2 === 0 ? [true, false] : [false, true]) {
      const r = await run(useOld)
      const key = useOld ? 'old' : 'new'
      seconds[key].push(r.seconds)
      decodeMs[key].push(r.result.metadata.timings.decodeMs ?? NaN)
      if (useOld) idsOld ??= decoded.slice()
      else idsNew ??= decoded.slice()
    }
  }
  await group.dispose()
  let differing = 0
  let total = 0
  idsOld!.forEach((ids, c) => {
    const other = idsNew![c]!
    total += ids.length
    ids.forEach((id, j) => (differing += id === other[j] ? 0 : 1))
  })
  return { positions: abPositions, seconds, decodeMs, sampledIds: total, differingIds: differing }
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────────

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const loadAvg = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')

/** The standard analysis in a fresh process, its figures logged and added to `out`. */
async function analyse(name: PresetName, dir: string, out: Record<string, unknown>): Promise<void> {
  const arch = archShape(name)
  const lens = lensShape(PRESET_LENS[name])
  const flops = analysisFlops(arch, lens, S, positions, K)
  const a = (await runBenchChild(
    [
      '--preset',
      name,
      '--child',
      'analyze',
      '--group',
      dir,
      '--threads',
      String(threads),
      '--positions',
      String(positions)
    ],
    workerEnv(process.env),
    WORKER_EXEC_ARGV
  )) as {
    seconds: number
    positions: number
    timings: Record<string, number>
    before: number
    peakRss: number
    peakGflops: number
    peakGflopsBeforeAfter: [number, number]
    estimatedCpu: number
    weightBytes: number
  }
  const gflops = flops.total / a.seconds / 1e9
  const rssLimit = 1.5 * a.weightBytes + 0.5 * GB
  const measured = a.peakRss - a.before
  const estimateRatio = a.estimatedCpu / measured
  const stageGflops = Object.fromEntries(
    (['decode', 'encode', 'salience', 'kl'] as const).map((k) => [
      k,
      +(flops[k] / ((a.timings[`${k}Ms`] ?? NaN) / 1000) / 1e9).toFixed(1)
    ])
  )
  Object.assign(out, {
    explanations_per_s: a.positions / a.seconds,
    tokens_per_s: (a.positions * K * lens.tokens) / a.seconds,
    gflops,
    peak_gflops: a.peakGflops,
    peak_gflops_before_after: a.peakGflopsBeforeAfter.map((x) => +x.toFixed(1)),
    peak_ratio: gflops / a.peakGflops,
    tflop: flops.total / 1e12,
    flops_by_stage: Object.fromEntries(
      Object.entries(flops).map(([k, v]) => [k, +(v / 1e9).toFixed(1)])
    ),
    stage_gflops: stageGflops,
    seconds: a.seconds,
    timings_ms: a.timings,
    peak_rss_mb: Math.round(a.peakRss / 1e6),
    weights_f32_mb: Math.round(a.weightBytes / 1e6),
    rss_limit_mb: Math.round(rssLimit / 1e6),
    rss_within_limit: a.peakRss <= rssLimit,
    measured_mb: Math.round(measured / 1e6),
    estimate_mb: Math.round(a.estimatedCpu / 1e6),
    estimate_ratio: +estimateRatio.toFixed(3),
    load_avg_after: loadAvg()
  })
  log(
    `  analysis ${a.seconds.toFixed(1)} s (${a.positions} positions, K ${K}): ${(out.explanations_per_s as number).toFixed(2)} explanations/s, ` +
      `${(out.tokens_per_s as number).toFixed(0)} explanation tokens/s`
  )
  log(
    `  achieved ${gflops.toFixed(1)} GFLOP/s; MatMul peak ${a.peakGflops.toFixed(1)} GFLOP/s (best of before/after: ${a.peakGflopsBeforeAfter.map((x) => x.toFixed(1)).join(' / ')}) → peak_ratio ` +
      `${(gflops / a.peakGflops).toFixed(2)}; stage GFLOP/s ${JSON.stringify(stageGflops)}`
  )
  log(
    `  stage ms ${JSON.stringify(a.timings, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}`
  )
  log(
    `  peak RSS ${(a.peakRss / GB).toFixed(2)} GB; limit 1.5 × ${(a.weightBytes / GB).toFixed(2)} GB float32 ` +
      `weights + 0.5 GB = ${(rssLimit / GB).toFixed(2)} GB → ${a.peakRss <= rssLimit ? 'met' : 'MISSED'}`
  )
  log(
    `  measured ${(measured / GB).toFixed(2)} GB (peak RSS − RSS before loading), CPU estimate ` +
      `${(a.estimatedCpu / GB).toFixed(2)} GB = ${estimateRatio.toFixed(2)}× → ` +
      `${Math.abs(estimateRatio - 1) <= 0.25 ? 'within 25 %' : 'OFF BY MORE THAN 25 %'}`
  )
}

export async function runPresetBench(name: string): Promise<void> {
  if (!isPresetName(name)) {
    throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}; got ${name}`)
  }
  const child = arg('child')
  if (child !== undefined) {
    const dir = arg('group')!
    const out = child === 'analyze' ? await childAnalyze(dir) : await childCompare(dir)
    process.stdout.write(JSON.stringify(out) + '\n')
    return
  }
  const dir = await ensurePresetGroup(name, log)
  const arch = archShape(name)
  const lens = lensShape(PRESET_LENS[name])
  const flops = analysisFlops(arch, lens, S, positions, K)
  const load0 = loadAvg()
  log(
    `${name}: d ${arch.d}, ${arch.layers} layers, ${arch.heads}/${arch.kvHeads} heads × ${arch.headDim}, ` +
      `FFN ${arch.ffn}${arch.gated ? ' gated' : ''}, V ${arch.vocab}; lens L${lens.layer} T ${lens.tokens} ` +
      `P ${lens.prefixRows} Np ${lens.patchLayers}, encoder ${lens.encoderPrefix} prefix rows once + T + ${lens.encoderAfter} rows to layer ` +
      `${lens.outputLayer}; ${(flops.total / 1e12).toFixed(2)} TFLOP; load average ${load0}, ${threads} threads`
  )
  const out: Record<string, unknown> = { preset: name, threads, load_avg_before: load0 }
  if (!argv.includes('--ab-only')) await analyse(name, dir, out)
  if (!argv.includes('--no-ab')) {
    const c = (await runBenchChild(
      [
        '--preset',
        name,
        '--child',
        'compare',
        '--group',
        dir,
        '--threads',
        String(threads),
        ...(arg('ab-runs') ? ['--ab-runs', arg('ab-runs')!] : []),
        ...(arg('ab-positions') ? ['--ab-positions', arg('ab-positions')!] : [])
      ],
      workerEnv(process.env),
      WORKER_EXEC_ARGV
    )) as {
      positions: number
      seconds: { old: number[]; new: number[] }
      decodeMs: { old: number[]; new: number[] }
      sampledIds: number
      differingIds: number
    }
    const eps = (s: number[]): number => c.positions / median(s)
    out.prefix_once = {
      positions: c.positions,
      seconds_old: c.seconds.old,
      seconds_new: c.seconds.new,
      decode_ms_old: c.decodeMs.old,
      decode_ms_new: c.decodeMs.new,
      explanations_per_s_old: eps(c.seconds.old),
      explanations_per_s_new: eps(c.seconds.new),
      speedup: median(c.seconds.old) / median(c.seconds.new),
      decode_speedup: median(c.decodeMs.old) / median(c.decodeMs.new),
      sampled_ids: c.sampledIds,
      differing_ids: c.differingIds
    }
    log(
      `  prefix once per position (${c.positions} positions, runs interleaved): explanations/s ` +
        `${eps(c.seconds.old).toFixed(2)} (per rollout) → ${eps(c.seconds.new).toFixed(2)} (per position) = ` +
        `${(median(c.seconds.old) / median(c.seconds.new)).toFixed(2)}×; decode ` +
        `${(median(c.decodeMs.old) / median(c.decodeMs.new)).toFixed(2)}×; sampled ids ` +
        `${c.differingIds === 0 ? 'identical' : `${c.differingIds} of ${c.sampledIds} differ`}`
    )
    out.load_avg_after = loadAvg()
  }
  if (json) process.stdout.write(JSON.stringify(out) + '\n')
}
