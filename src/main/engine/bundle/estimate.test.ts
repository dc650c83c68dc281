import { describe, expect, it } from 'vitest'
import { estimateGroupBytes, type EstimateLens, type EstimateModel } from './estimate'

/**
 * The estimate for a group without a lens against the memory measured by `npm run bench:import`
 * (peak RSS of a load plus a 16 × 512-token generation, minus the RSS before loading) at the three
 * presets, as docs/benchmarks.md "Import" records them. The target: within 25 %.
 */
const MEASURED: { preset: string; weightBytes: number; base: EstimateModel; measured: number }[] = [
  {
    preset: 'gpt2',
    weightBytes: 497_759_232,
    base: { layers: 12, hiddenSize: 768, kvHeads: 12, headDim: 64, vocabSize: 50_257 },
    measured: 2.68e9
  },
  {
    preset: 'qwen3-0.6b',
    weightBytes: 2_384_199_680,
    base: { layers: 28, hiddenSize: 1024, kvHeads: 8, headDim: 128, vocabSize: 151_936 },
    measured: 8.68e9
  },
  {
    preset: 'gemma3-270m',
    weightBytes: 1_072_392_704,
    base: { layers: 18, hiddenSize: 640, kvHeads: 1, headDim: 256, vocabSize: 262_144 },
    measured: 2.64e9
  }
]

/**
 * The estimate for the preset groups with their lens (`npm run bench -- --preset NAME --no-ab
 * --positions 16`: the standard analysis, K = 16, one 256-row batch) against the memory it
 * measured (peak RSS − RSS before loading), as docs/benchmarks.md "At real shapes" records them.
 */
const MEASURED_WITH_LENS: {
  preset: string
  weightBytes: number
  base: EstimateModel
  lens: EstimateLens
  measured: number
}[] = [
  {
    preset: 'gpt2',
    weightBytes: 512e6,
    base: MEASURED[0]!.base,
    lens: { prefixRows: 21, tokens: 8, encoderRows: 19 },
    measured: 1.09e9
  },
  {
    preset: 'qwen3-0.6b',
    weightBytes: 2508e6,
    base: MEASURED[1]!.base,
    lens: { prefixRows: 23, tokens: 8, encoderRows: 21 },
    measured: 4.11e9
  },
  {
    preset: 'gemma3-270m',
    weightBytes: 1084e6,
    base: MEASURED[2]!.base,
    lens: { prefixRows: 21, tokens: 8, encoderRows: 19 },
    measured: 1.73e9
  }
]

describe('estimateGroupBytes', () => {
  it.each(MEASURED_WITH_LENS)(
    '$preset with its lens: within 25 % of the analysis’s measured memory',
    (m) => {
      const { cpu } = estimateGroupBytes({
        weightBytes: m.weightBytes,
        base: m.base,
        lenses: [m.lens]
      })
      expect(Math.abs(cpu / m.measured - 1)).toBeLessThanOrEqual(0.25)
    }
  )

  it.each(MEASURED)('$preset without a lens: within 25 % of the measured memory', (m) => {
    const { cpu } = estimateGroupBytes({ weightBytes: m.weightBytes, base: m.base, lenses: [] })
    expect(Math.abs(cpu / m.measured - 1)).toBeLessThanOrEqual(0.25)
  })

  it('counts at least the weights and half an embedding table, more with a lens’s rows', () => {
    const base = { layers: 2, hiddenSize: 8, kvHeads: 1, headDim: 8, vocabSize: 100 }
    const bare = estimateGroupBytes({ weightBytes: 10_000, base, lenses: [] })
    expect(bare.cpu).toBeGreaterThanOrEqual(10_000 + (100 * 8 * 4) / 2)
    const lens = { prefixRows: 10, tokens: 8, encoderRows: 4 }
    const small = estimateGroupBytes({
      weightBytes: 10_000,
      base,
      lenses: [lens],
      rowsPerBatch: { cpu: 8 }
    })
    const large = estimateGroupBytes({
      weightBytes: 10_000,
      base,
      lenses: [lens],
      rowsPerBatch: { cpu: 64 }
    })
    expect(large.cpu).toBeGreaterThan(small.cpu)
  })
})
