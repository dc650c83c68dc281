/**
 * `npm run bench:optimiser` — the iterative explanation optimiser against best-of-K at equal
 * decoder rollouts, on the demo group and on a small synthetic bundle. The optimiser runs first
 * with the predecessor's defaults; best-of-K then gets K = the optimiser's mean rollouts per
 * position (rounded up), so both spend about the same decoder work. Reports, per group, the mean
 * MSE of each and the MSE ratio (optimised / best-of-K; below 1 means the optimiser explains
 * better), and the time per position of each, from one run on one machine.
 *
 *   npm run bench:optimiser [-- --json] [--threads N] [--positions N] [--samples 16]
 */
import { mkdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { AnalysisRow } from '@shared/domain/analysis'
import {
  ensureDemoBundle,
  generateSyntheticBundle,
  loadGroup,
  syntheticText,
  type LoadedGroup
} from '../src/main/engine'
import { isBundleDir } from '../src/main/engine/synthetic'

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

const json = process.argv.includes('--json')
const threads = Number(arg('threads', String(Math.min(2, os.availableParallelism()))))
const positions = Number(arg('positions', '12'))
const samples = Number(arg('samples', '16'))
const log = (s: string): void => {
  if (!json) process.stderr.write(s + '\n')
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

interface Figures {
  group: string
  lensId: string
  positions: number
  optimiserRolloutsPerPosition: number
  bestOfK: number
  mseOptimised: number
  mseBestOfK: number
  mseStart: number
  mseRatio: number
  msPerPositionOptimised: number
  msPerPositionBestOfK: number
  timeRatio: number
}

async function compare(name: string, group: LoadedGroup, text: string): Promise<Figures> {
  const lensId = group.summary.lenses[0]!.id
  const common = {
    seed: 7,
    salience: false,
    kl: false,
    positions: { start: 1, end: 1 + positions }
  }
  const t0 = performance.now()
  const optimised = await group.analyze({
    lensId,
    text,
    options: { ...common, optimise: { samplesPerIteration: samples } }
  })
  const optimisedMs = performance.now() - t0
  const rows: AnalysisRow[] = optimised.rows
  const rollouts = mean(rows.map((r) => r.rollouts ?? 0))
  const bestOfK = Math.ceil(rollouts)
  const t1 = performance.now()
  const plain = await group.analyze({ lensId, text, options: { ...common, bestOfK } })
  const plainMs = performance.now() - t1
  const mseOptimised = mean(rows.map((r) => r.mse))
  const mseBestOfK = mean(plain.rows.map((r) => r.mse))
  const figures: Figures = {
    group: name,
    lensId,
    positions: rows.length,
    optimiserRolloutsPerPosition: rollouts,
    bestOfK,
    mseOptimised,
    mseBestOfK,
    mseStart: mean(rows.map((r) => r.mseBefore ?? r.mse)),
    mseRatio: mseOptimised / mseBestOfK,
    msPerPositionOptimised: optimisedMs / rows.length,
    msPerPositionBestOfK: plainMs / plain.rows.length,
    timeRatio: optimisedMs / rows.length / (plainMs / plain.rows.length)
  }
  log(
    `${name}: ${rows.length} positions, optimiser ${rollouts.toFixed(0)} rollouts/position vs best-of-${bestOfK}: ` +
      `MSE ${mseOptimised.toPrecision(3)} vs ${mseBestOfK.toPrecision(3)} (ratio ${figures.mseRatio.toFixed(2)}; ` +
      `start ${figures.mseStart.toPrecision(3)}), ${figures.msPerPositionOptimised.toFixed(0)} vs ` +
      `${figures.msPerPositionBestOfK.toFixed(0)} ms/position (ratio ${figures.timeRatio.toFixed(2)})`
  )
  return figures
}

async function main(): Promise<void> {
  const target = { provider: 'cpu' as const, threads }
  const results: Figures[] = []
  const demo = await loadGroup(await ensureDemoBundle(), target)
  try {
    results.push(
      await compare(
        'demo-words',
        demo,
        'The cat sat on the red chair. A dog ran to the river in the morning. The old farmer sold cheese.'
      )
    )
  } finally {
    await demo.dispose()
  }
  const cache =
    process.env.TALKATIVE_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'talkative-workbench')
  const dir = path.join(cache, 'bench', 'optimiser-synthetic')
  const spec = {
    hiddenSize: 64,
    layers: 4,
    heads: 4,
    vocabSize: 300,
    explanationTokens: 8,
    patchLayers: 2,
    lensLayers: [1]
  }
  if (!(await isBundleDir(dir))) {
    await mkdir(path.dirname(dir), { recursive: true })
    await generateSyntheticBundle(dir, spec)
  }
  const syn = await loadGroup(dir, target)
  try {
    results.push(await compare('synthetic', syn, syntheticText(positions + 4, spec.vocabSize)))
  } finally {
    await syn.dispose()
  }
  if (json) process.stdout.write(JSON.stringify({ threads, samples, results }, null, 2) + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:optimiser: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
