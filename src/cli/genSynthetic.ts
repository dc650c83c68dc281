/**
 * `npm run gen:synthetic -- OUT_DIR [--d 512 --layers 8 --heads 8 --vocab 8192 --t 16 --np 2
 * --lens-layers 3,5 --donor --seed 7]`: a random-weight bundle of any size (benchmarks, fuzzing).
 */
import { generateSyntheticBundle } from '../main/engine'

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return fallback
  const v = Number(process.argv[i + 1])
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer`)
  return v
}

async function main(): Promise<void> {
  const out = process.argv[2]
  if (!out || out.startsWith('--'))
    throw new Error('usage: gen:synthetic OUT_DIR [--d N --layers N …]')
  const layers = flag('layers', 8)
  const li = process.argv.indexOf('--lens-layers')
  const dir = await generateSyntheticBundle(out, {
    hiddenSize: flag('d', 512),
    layers,
    heads: flag('heads', 8),
    vocabSize: flag('vocab', 8192),
    explanationTokens: flag('t', 16),
    patchLayers: flag('np', 2),
    lensLayers: li >= 0 ? process.argv[li + 1]!.split(',').map(Number) : undefined,
    donor: process.argv.includes('--donor'),
    seed: flag('seed', 7)
  })
  process.stdout.write(`${dir}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`gen:synthetic: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
