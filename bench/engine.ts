/**
 * `npm run bench` — the engine on a GPT-2-small-sized synthetic bundle: a 64-token text at K = 16,
 * T = 16, with the analysis defaults (salience and KL on). Prints achieved GFLOP/s (FLOP count in
 * docs/benchmarks.md) next to a MatMul peak measured in the same run, same provider and threads.
 *
 *   npm run bench [-- --json] [--ep cpu|webgpu|cuda] [--threads N] [--d 512] [--layers 8]
 *                 [--prompt-rows 4] (decoder prefix rows; real lenses have ~20)
 *
 * With `--preset gpt2|qwen3-0.6b|gemma3-270m` it runs at a real model's shapes instead
 * (bench/enginePreset.ts).
 */
import { mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { ExecutionProviderSchema } from '@shared/domain/system'
import { generateSyntheticBundle, loadGroup, syntheticText } from '../src/main/engine'
import { isBundleDir } from '../src/main/engine/synthetic'
import type { SessionTarget } from '../src/main/engine/ort'
import { matmulPeak } from './matmulPeak'
import { runPresetBench } from './enginePreset'

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : fallback
}

const json = process.argv.includes('--json')
const provider = ExecutionProviderSchema.parse(arg('ep', 'cpu'))
const threads = Number(arg('threads', String(provider === 'cpu' ? os.availableParallelism() : 0)))
const spec = {
  hiddenSize: Number(arg('d', '512')),
  layers: Number(arg('layers', '8')),
  heads: 8,
  vocabSize: Number(arg('vocab', '8192')),
  explanationTokens: 16,
  patchLayers: 2,
  decoderPromptRows: Number(arg('prompt-rows', '4')),
  encoderPromptRows: 4,
  maxPositions: 256
}
const K = Number(arg('k', '16'))
const S = 64
const lensLayer = Math.floor(spec.layers / 2) - 1
const log = (s: string): void => {
  if (!json) process.stderr.write(s + '\n')
}

/** FLOPs of one pass of `tokens` new rows attending to `ctx` keys on average, over `layers`. */
function blockFlops(tokens: number, avgCtx: number, layers: number, d: number, f: number): number {
  const dense = 2 * tokens * d * (3 * d + d + 2 * f)
  const attention = 2 * 2 * tokens * avgCtx * d
  return layers * (dense + attention)
}

/** The MatMul/attention FLOPs the engine performs for this analysis (formula in the docs). */
function analysisFlops(): number {
  const { hiddenSize: d, layers: nL, vocabSize: V, explanationTokens: T } = spec
  const f = 4 * d
  const P = spec.decoderPromptRows
  const Pe = spec.encoderPromptRows
  const rows = S * K
  const acts = blockFlops(S, (S + 1) / 2, lensLayer + 1, d, f)
  // The decoder prefix runs once per position (its K rows share it), then T − 1 steps per row.
  const prefill = blockFlops(P, (P + 1) / 2, nL, d, f) + 2 * d * V
  const steps = (T - 1) * (blockFlops(1, P + T / 2, nL, d, f) + 2 * d * V)
  const decode = S * prefill + rows * steps
  // Encoder: per call of the encode role (a batch's rows, at most 256), the prefix once, then every
  // row's T rows after it, attending to the prefix and their own causal keys.
  const encodeCall = (n: number): number =>
    blockFlops(Pe, (Pe + 1) / 2, lensLayer + 1, d, f) +
    n * (blockFlops(T, Pe + (T + 1) / 2, lensLayer + 1, d, f) + 2 * d * d)
  const encodeRows = (n: number): number => {
    let total = 0
    for (let start = 0; start < n; start += 256) total += encodeCall(Math.min(256, n - start))
    return total
  }
  const projection = S * 2 * d * spec.patchLayers * d
  // KL: per batch an unmodified pass over the prefix up to the batch's last position (all
  // layers + unembedding of every row), then one replaced row per position.
  const perBatch = Math.max(1, Math.floor(256 / K))
  let kl = 0
  let encode = 0
  let salience = 0
  for (let start = 0; start < S; start += perBatch) {
    const len = Math.min(S, start + perBatch)
    encode += encodeRows((len - start) * K)
    salience += encodeRows((len - start) * T)
    kl += blockFlops(len, (len + 1) / 2, nL, d, f) + len * 2 * d * V
  }
  kl += blockFlops(S, S / 2, nL - lensLayer - 1, d, f) + S * 2 * d * V
  return acts + decode + encode + salience + projection + kl
}

async function main(): Promise<void> {
  const target: SessionTarget = { provider, threads }
  const dir = path.resolve(
    '.cache',
    'bench',
    `synthetic-d${spec.hiddenSize}-l${spec.layers}-v${spec.vocabSize}-p${spec.decoderPromptRows}`
  )
  if (!(await isBundleDir(dir))) {
    log(`generating ${dir} …`)
    await mkdir(path.dirname(dir), { recursive: true })
    await generateSyntheticBundle(dir, { ...spec, lensLayers: [lensLayer], seed: 3 })
  }
  const group = await loadGroup(dir, target)
  const lensId = group.summary.lenses[0]!.id
  const text = syntheticText(S - 1, spec.vocabSize, 5)
  if (group.tokenize(text).ids.length !== S) throw new Error('bench text is not 64 tokens')
  // Warm-up: first runs pay for kernel selection and weight prepacking.
  await group.analyze({ lensId, text, options: { bestOfK: K, positions: { start: 0, end: 2 } } })
  const t = performance.now()
  const result = await group.analyze({ lensId, text, options: { bestOfK: K } })
  const seconds = (performance.now() - t) / 1000
  await group.dispose()
  const peak = await matmulPeak(target)
  const flops = analysisFlops()
  const gflops = flops / seconds / 1e9
  const out = {
    explanations_per_s: S / seconds,
    tokens_per_s: (S * K * spec.explanationTokens) / seconds,
    gflops,
    peak_gflops: peak,
    peak_ratio: gflops / peak,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    seconds,
    provider,
    threads,
    model: `d${spec.hiddenSize} L${spec.layers} V${spec.vocabSize} T${spec.explanationTokens} K${K} S${S}`,
    timings_ms: result.metadata.timings
  }
  if (json) {
    process.stdout.write(JSON.stringify(out) + '\n')
  } else {
    process.stdout.write(
      [
        `model ${out.model}, ${provider}, ${threads} threads`,
        `analysis ${seconds.toFixed(2)} s: ${out.explanations_per_s.toFixed(2)} explanations/s, ${out.tokens_per_s.toFixed(0)} explanation tokens/s`,
        `achieved ${gflops.toFixed(1)} GFLOP/s of ${(flops / 1e9).toFixed(1)} GFLOP; MatMul peak ${peak.toFixed(1)} GFLOP/s → ratio ${out.peak_ratio.toFixed(2)}`,
        `peak RSS ${out.peak_rss_mb.toFixed(0)} MB; stage ms ${JSON.stringify(result.metadata.timings, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}`
      ].join('\n') + '\n'
    )
  }
}

const preset = arg('preset')
;(preset === undefined ? main() : runPresetBench(preset)).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`)
  process.exitCode = 1
})
