/**
 * Tests of the float64 lens-analysis reference: the seed's conventions per family, the metrics'
 * definitions, and the decoder's patched prefix against the PyTorch reference.
 */
import { describe, expect, it } from 'vitest'
import {
  decodeExplanation,
  encodeExplanation,
  klAfterReplacement,
  lensReference,
  meanSquaredError,
  toResidualLens,
  topIds,
  type SeedLens
} from './lens'
import { at, last } from './checked'
import { randomSeedLens } from './lensFixtures'
import {
  hfReference,
  logSoftmax,
  softmax,
  type ForwardResult,
  type HfReferenceModel,
  type Row
} from './model'
import { randomHfModel, type HfDims, type RandomHfModelOptions } from './random'
import { torchUnavailableReason, runTorchReferenceBatch } from './torch/torchReference'
import { HF_FAMILIES, type HfFamily } from './types'

const DIMS: HfDims = { hiddenSize: 16, layers: 3, heads: 4, kvHeads: 2, vocabSize: 40 }
const IDS = [2, 17, 5, 29, 11, 8, 36]

function model(
  family: HfFamily,
  opts: RandomHfModelOptions = {},
  dims: HfDims = DIMS
): HfReferenceModel {
  const { config, tensors } = randomHfModel(
    family,
    family === 'gpt2' ? { ...dims, kvHeads: undefined } : dims,
    {
      seed: 21,
      ...opts
    }
  )
  return hfReference(config, tensors)
}

/** The residual after block `layer` at row `s`, checked. */
function blockRow(out: ForwardResult, layer: number, s: number): Row {
  return at(at(out.blockOutputs, layer, 'block outputs'), s, `block ${layer} rows`)
}

describe('lensReference', () => {
  for (const family of HF_FAMILIES) {
    it(`${family}: analyses every position with finite, self-consistent metrics`, () => {
      const base = model(family)
      const lens = randomSeedLens(base, { layer: 1, patchAllLayers: 2, explanationTokens: 3 })
      const rows = lensReference({ base, lens, inputIds: IDS, nullTokenId: 0 })
      expect(rows.map((r) => r.position)).toEqual(IDS.map((_, s) => s))
      const unmodified = base.forward({ inputIds: IDS })
      for (const row of rows) {
        expect(row.activation).toEqual(blockRow(unmodified, 1, row.position))
        expect(row.explanation).toHaveLength(3)
        expect(row.salience).toHaveLength(3)
        expect(row.logitLens).toHaveLength(3)
        expect(row.mse).toBeCloseTo(meanSquaredError(row.activation, row.reconstruction), 14)
        const rms = Math.sqrt(row.activation.reduce((a, x) => a + x * x, 0) / row.activation.length)
        expect(row.relativeRmse).toBeCloseTo(Math.sqrt(row.mse) / rms, 12)
        expect(row.kl).toBeGreaterThan(0)
        for (const x of [row.mse, row.relativeRmse, row.kl, ...row.salience])
          expect(Number.isFinite(x)).toBe(true)
      }
    })
  }

  it('KL is exactly 0 when the replacement is the unmodified activation, and matches Σ P (log P − log Q) otherwise', () => {
    const orig = model('gemma2', { finalLogitSoftcapping: 3 })
    const out = orig.forward({ inputIds: IDS })
    for (const t of [0, 3, 6])
      expect(klAfterReplacement(orig, IDS, 1, t, blockRow(out, 1, t))).toBe(0)
    const other = blockRow(out, 1, 2)
    const kl = klAfterReplacement(orig, IDS, 1, 5, other)
    const q = at(
      orig.forward({
        inputIds: IDS,
        replaceAfter: { layer: 1, position: 5, vector: other }
      }).logits,
      5,
      'replaced logits'
    )
    const p = at(out.logits, 5, 'logits')
    const lp = logSoftmax(p)
    const lq = logSoftmax(q)
    const want = softmax(p).reduce((sum, pv, v) => sum + pv * (lp[v]! - lq[v]!), 0)
    expect(kl).toBeCloseTo(want, 14)
    expect(kl).toBeGreaterThan(0)
    // P and Q are the orig model's own predictions: with its final softcap (here 3).
    expect(Math.max(...q.map(Math.abs))).toBeLessThan(3)
  })

  it('salience is 0 for a token replaced by itself and (mse_j − mse) / mse otherwise', () => {
    const base = model('qwen2')
    const lens = randomSeedLens(base, { layer: 2, explanationTokens: 4 })
    const probe = at(
      lensReference({ base, lens, inputIds: IDS, positions: [4], nullTokenId: 0 }),
      0,
      'probe rows'
    )
    const same = at(
      lensReference({
        base,
        lens,
        inputIds: IDS,
        positions: [4],
        nullTokenId: at(probe.explanation, 1, 'probe explanation')
      }),
      0,
      'same-token rows'
    )
    expect(same.salience[1]).toBe(0)
    const residual = toResidualLens(base, lens)
    const ablated = probe.explanation.map((id, i) => (i === 2 ? 0 : id))
    const mse2 = meanSquaredError(
      probe.activation,
      encodeExplanation(base, residual, ablated, IDS[4]!)
    )
    expect(probe.salience[2]).toBeCloseTo((mse2 - probe.mse) / probe.mse, 12)
  })

  it('the logit lens ranks lm_head(A) (seed) or lm_head(final_norm(A)) (Workbench), best first', () => {
    const base = model('llama')
    const lens = randomSeedLens(base, { layer: 1, explanationTokens: 12 })
    const seedRow = at(
      lensReference({ base, lens, inputIds: IDS, positions: [3], nullTokenId: 0 }),
      0,
      'seed rows'
    )
    const normed = at(
      lensReference({
        base,
        lens,
        inputIds: IDS,
        positions: [3],
        nullTokenId: 0,
        logitLensFinalNorm: true
      }),
      0,
      'final-norm rows'
    )
    expect(seedRow.logitLens).toHaveLength(10) // min(T, 10)
    expect(seedRow.logitLens).toEqual(topIds(base.unembed(seedRow.activation), 10))
    expect(normed.logitLens).toEqual(topIds(base.unembed(base.finalNorm(seedRow.activation)), 10))
    expect(topIds(Float64Array.from([1, 3, 3, 2]), 3)).toEqual([1, 2, 3])
  })

  it('a donor orig model supplies A, KL and the logit lens; the base decodes and encodes', () => {
    const base = model('gemma2', { seed: 30 })
    const donor = model('gemma2', { seed: 31 })
    const lens = randomSeedLens(base, { layer: 1 })
    const row = at(
      lensReference({
        base,
        orig: donor,
        lens,
        inputIds: IDS,
        positions: [5],
        nullTokenId: 0
      }),
      0,
      'donor rows'
    )
    expect(row.activation).toEqual(blockRow(donor.forward({ inputIds: IDS }), 1, 5))
    const residual = toResidualLens(base, lens)
    expect(row.explanation).toEqual(decodeExplanation(base, residual, row.activation).tokens)
    expect(row.kl).toBeCloseTo(klAfterReplacement(donor, IDS, 1, 5, row.reconstruction), 14)
  })
})

describe('the seed conventions per family', () => {
  it('Gemma rows are × √d (float32) in residual space, Qwen/GPT-2/Llama rows as stored; patch vectors never scaled', () => {
    for (const family of HF_FAMILIES) {
      const base = model(family)
      const lens = randomSeedLens(base, { layer: 1 })
      const residual = toResidualLens(base, lens)
      const s = family.startsWith('gemma') ? Math.fround(Math.sqrt(16)) : 1
      const a = blockRow(base.forward({ inputIds: IDS }), 1, 2)
      expect(residual.encoder.prefix[0], family).toEqual(
        Float64Array.from(at(lens.encoder.softPrompt, 0, 'softPrompt'), (x) => x * s)
      )
      expect(residual.decoder.prefix(a)[0], family).toEqual(
        Float64Array.from(at(lens.decoder.promptLeft, 0, 'promptLeft'), (x) => x * s)
      )
      expect(residual.decoder.embedPos).toBe(3)
      expect(residual.decoder.tokenScale).toBe(s)
      expect(residual.encoder.tokenScale).toBe(s)
      const w = at(lens.decoder.projections, 1, 'projections')
      const manual = w.weight.map(
        (row, o) => w.bias[o]! + Array.from(row).reduce((sum, x, i) => sum + x * a[i]!, 0)
      )
      at(residual.decoder.patchVectors(a), 1, 'patch vectors').forEach((x, i) =>
        expect(x).toBeCloseTo(at(manual, i, 'manual projection'), 13)
      )
    }
  })

  it('patch_all_layers false: Gemma-3 prefix rows unscaled (inputs_embeds bypass its scaled embedding), Gemma-2 scaled; 0 takes the patched path (scaled); generated tokens × √d for both', () => {
    const g3 = model('gemma3_text')
    const g2 = model('gemma2')
    const scaleOf = (base: HfReferenceModel, patchAllLayers: boolean | number): number[] => {
      const lens = randomSeedLens(base, { layer: 1, patchAllLayers, perLayerProjections: false })
      const r = toResidualLens(base, lens)
      const a = new Float64Array(base.config.hiddenSize).fill(0.5)
      const row = r.decoder.prefix(a)[0]!
      return [row[0]! / lens.decoder.promptLeft[0]![0]!, r.decoder.tokenScale]
    }
    expect(scaleOf(g3, false)[0]).toBeCloseTo(1, 12)
    expect(scaleOf(g3, false)[1]).toBe(4)
    expect(scaleOf(g3, 0)[0]).toBeCloseTo(4, 12)
    expect(scaleOf(g2, false)[0]).toBeCloseTo(4, 12)
    expect(scaleOf(g2, false)[1]).toBe(4)
    expect(scaleOf(g3, 1)[1]).toBe(4)
  })

  it('with patching the slot row is overwritten before block 0, so its stored value is irrelevant; patch count and new_decoder pick the projections', () => {
    for (const family of ['gpt2', 'gemma2', 'qwen3'] as const) {
      const base = model(family)
      const lens = randomSeedLens(base, { layer: 1, patchAllLayers: 2, explanationTokens: 5 })
      const residual = toResidualLens(base, lens)
      const a = blockRow(base.forward({ inputIds: IDS }), 1, 4)
      const want = decodeExplanation(base, residual, a)
      const otherSlot = {
        ...residual,
        decoder: {
          ...residual.decoder,
          prefix: (x: Float64Array) =>
            residual.decoder.prefix(x).map((row, i) => (i === 3 ? row.map(() => 7) : row))
        }
      }
      expect(decodeExplanation(base, otherSlot, a), family).toEqual(want)
      // new_decoder: projection l + 1 patches layer l.
      const shifted: SeedLens = {
        ...lens,
        decoder: {
          ...lens.decoder,
          newDecoder: true,
          projections: [at(lens.decoder.projections, 1, 'projections'), ...lens.decoder.projections]
        }
      }
      expect(decodeExplanation(base, toResidualLens(base, shifted), a), family).toEqual(want)
      // Patching only block 0 is a different decoder.
      const one = toResidualLens(base, { ...lens, decoder: { ...lens.decoder, patchAllLayers: 1 } })
      expect(one.decoder.patchVectors(a)).toHaveLength(1)
    }
  })

  it('the encoder reads the residual after output_layer at the last row (−1 = last block, −2 = block 0 input) and applies its head', () => {
    for (const family of ['gpt2', 'gemma2', 'gemma3_text', 'qwen2'] as const) {
      const base = model(family)
      const lens = randomSeedLens(base, { layer: 1, explanationTokens: 3, postfixIds: [9] })
      const ids = [4, 12, 30]
      const rowsOf = (r: ReturnType<typeof toResidualLens>): Float64Array[] => {
        const tok = (id: number): Float64Array =>
          base.tableRow(id).map((x) => x * r.encoder.tokenScale)
        const rows = [...r.encoder.prefix, ...ids.map(tok), ...r.encoder.suffix, tok(IDS[2]!)]
        const add = r.encoder.lastRowAdd as Float64Array
        rows[rows.length - 1] = last(rows, 'encoder rows').map((x, i) => x + add[i]!)
        return rows
      }
      const lastBlock = toResidualLens(base, {
        ...lens,
        encoder: { ...lens.encoder, outputLayer: -1 }
      })
      const explicit = toResidualLens(base, {
        ...lens,
        encoder: { ...lens.encoder, outputLayer: 2 }
      })
      const got = encodeExplanation(base, lastBlock, ids, IDS[2]!)
      expect(encodeExplanation(base, explicit, ids, IDS[2]!), family).toEqual(got)
      const out = base.forward({ inputsEmbeds: rowsOf(lastBlock) })
      expect(got, family).toEqual(
        lastBlock.encoder.head(last(at(out.blockOutputs, 2, 'block outputs'), 'block 2 rows'))
      )
      const input = toResidualLens(base, { ...lens, encoder: { ...lens.encoder, outputLayer: -2 } })
      const atInput = encodeExplanation(base, input, ids, IDS[2]!)
      expect(atInput, family).toEqual(input.encoder.head(last(out.inputs, 'inputs')))
      // The Workbench's order puts the current token before the suffix: a different input.
      expect(encodeExplanation(base, lastBlock, ids, IDS[2]!, true), family).not.toEqual(got)
    }
  })

  it('refuses lenses that do not fit the model', () => {
    const base = model('llama')
    const lens = randomSeedLens(base, { layer: 1 })
    expect(() =>
      lensReference({ base, lens: { ...lens, layer: 3 }, inputIds: IDS, nullTokenId: 0 })
    ).toThrow(/layer 3/)
    expect(() =>
      lensReference({
        base,
        lens: {
          ...lens,
          decoder: { ...lens.decoder, projections: lens.decoder.projections.slice(0, 2) }
        },
        inputIds: IDS,
        nullTokenId: 0
      })
    ).toThrow(/3 decoder projections needed/)
    expect(() =>
      toResidualLens(base, { ...lens, decoder: { ...lens.decoder, patchAllLayers: 4 } })
    ).toThrow(/patch_all_layers 4/)
    expect(() =>
      toResidualLens(base, { ...lens, encoder: { ...lens.encoder, outputLayer: -3 } })
    ).toThrow(/outputLayer -3/)
  })
})

const reason = torchUnavailableReason()
if (reason !== null) console.log(`skipped: decoder cross-check against PyTorch: ${reason}`)

describe.skipIf(reason !== null)('the decoder against the PyTorch reference', () => {
  it("every greedy step's logits (patched prefix + fed-back tokens) match for gpt2, gemma2, gemma3_text, qwen2", () => {
    const families = ['gpt2', 'gemma2', 'gemma3_text', 'qwen2'] as const
    const setups = families.map((family) => {
      const { config, tensors } = randomHfModel(
        family,
        family === 'gpt2' ? { ...DIMS, kvHeads: undefined } : DIMS,
        { seed: 22, finalLogitSoftcapping: family === 'gemma2' ? 2 : undefined }
      )
      const base = hfReference(config, tensors)
      const lens = randomSeedLens(base, { layer: 1, patchAllLayers: 2, explanationTokens: 4 })
      const residual = toResidualLens(base, lens)
      const a = blockRow(base.forward({ inputIds: IDS }), 1, 5)
      const { tokens } = decodeExplanation(base, residual, a)
      const prefix = residual.decoder.prefix(a).map((row) => Array.from(row))
      const patches = residual.decoder
        .patchVectors(a)
        .map((v, layer) => ({ layer, row: residual.decoder.embedPos, vector: Array.from(v) }))
      const cases = tokens.map((_, step) => ({
        inputs_embeds: [
          ...prefix,
          ...tokens
            .slice(0, step)
            .map((id) => Array.from(base.tableRow(id).map((x) => x * residual.decoder.tokenScale)))
        ],
        patches
      }))
      return { family, config, tensors, cases, tokens }
    })
    const outputs = runTorchReferenceBatch(setups)
    setups.forEach(({ family, tokens }, f) => {
      expect(new Set(tokens).size, `${family}: a non-degenerate explanation`).toBeGreaterThan(1)
      at(outputs, f, 'torch outputs').forEach((result, step) => {
        const raw = last(result.logits_no_softcap, `${family} step ${step} raw logits`)
        expect(raw.indexOf(Math.max(...raw)), `${family} step ${step}`).toBe(tokens[step])
      })
    })
  }, 300_000)
})
