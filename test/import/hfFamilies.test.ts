/**
 * End to end, per family: a Hugging Face folder as `save_pretrained` (or the Hub cache) holds it,
 * with small random weights and a real byte-level BPE tokenizer, goes through `importHfBase`; the
 * group it writes is loaded as any group is, and its greedy continuation and — once a lens is added
 * — its greedy analysis rows are compared with the independent float64 reference
 * (test/reference/hf, docs/reference-hf.md) on the same numbers: tokens identical (up to the first
 * step whose reference margin is within float32 noise), metrics within float32 accumulation error.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadGroup, type LoadedGroup } from '../../src/main/engine'
import { addLensToGroup, type LensSpec } from '../../src/main/engine/bundle/write'
import type { TextTokenizer } from '../../src/main/engine/tokenizer'
import { importHfBase } from '../../src/main/import/hf'
import { byteTokenizer, type ByteTokenizer } from '../fixtures/hf/byteTokenizer'
import { writeHfFolder, type WriteHfFolderOptions } from '../fixtures/hf/writeHfFolder'
import { lensReference, patchLayerCount, type SeedLens } from '../reference/hf/lens'
import { randomSeedLens } from '../reference/hf/lensFixtures'
import { hfReference, type HfReferenceModel } from '../reference/hf/model'
import { randomHfModel, type HfDims, type RandomHfModelOptions } from '../reference/hf/random'
import type { HfFamily } from '../reference/hf/types'

/** Greedy steps compared only while the reference's top-2 margin is above float32 noise. */
const MARGIN = 1e-4
const NEW_TOKENS = 6
const TEXT = 'The cat sat.'

interface Case {
  name: string
  family: HfFamily
  model: RandomHfModelOptions
  folder: WriteHfFolderOptions
  /** The tokenizer's BOS (prepended by its post-processor), as Llama and Gemma tokenizers do. */
  bos?: string
}

const SPECIALS = ['<s>', '</s>', '<pad>']
const GEMMA_SPECIALS = ['<bos>', '<eos>', '<pad>', '<end_of_turn>']

const CASES: Case[] = [
  { name: 'gpt2, F32, single file', family: 'gpt2', model: { seed: 31 }, folder: {} },
  {
    name: 'gpt2, original Hub keys, F16, untied',
    family: 'gpt2',
    model: { seed: 32, gpt2Layout: 'original', tieWordEmbeddings: false, f16Exact: true },
    folder: { dtype: 'F16' }
  },
  {
    name: 'llama, BF16, 2 shards in the Hub cache, llama3 rope',
    family: 'llama',
    bos: '<s>',
    model: {
      seed: 33,
      bf16Exact: true,
      ropeScaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 32
      }
    },
    folder: { dtype: 'BF16', shards: 2, layout: 'hf-cache' }
  },
  {
    name: 'qwen2, q/k/v biases, 3 shards',
    family: 'qwen2',
    model: { seed: 34 },
    folder: { shards: 3 }
  },
  {
    name: 'qwen3, BF16, tied',
    family: 'qwen3',
    model: { seed: 35, bf16Exact: true, tieWordEmbeddings: true },
    folder: { dtype: 'BF16' }
  },
  {
    name: 'gemma2, softcaps, alternating windows',
    family: 'gemma2',
    bos: '<bos>',
    model: { seed: 36, slidingWindow: 4, attnLogitSoftcapping: 3, finalLogitSoftcapping: 4 },
    folder: {}
  },
  {
    name: 'gemma3_text, BF16, local and global rope',
    family: 'gemma3_text',
    bos: '<bos>',
    model: { seed: 37, bf16Exact: true, slidingWindow: 4, ropeLocalBaseFreq: 100 },
    folder: { dtype: 'BF16', layout: 'hf-cache' }
  },
  {
    name: 'gemma3 multimodal, model.language_model keys, 2 shards',
    family: 'gemma3',
    bos: '<bos>',
    model: { seed: 38, slidingWindow: 4, gemma3Layout: 'model.language_model' },
    folder: { shards: 2 }
  }
]

const roots: string[] = []
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true })
})

function dimsFor(family: HfFamily, vocabSize: number): HfDims {
  return family === 'gpt2'
    ? { hiddenSize: 32, layers: 3, heads: 4, vocabSize }
    : family === 'qwen2'
      ? { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, vocabSize }
      : { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, headDim: 12, vocabSize }
}

function tokenizerFor(c: Case): ByteTokenizer {
  const gemma = c.family.startsWith('gemma')
  const specials = gemma ? GEMMA_SPECIALS : SPECIALS
  return byteTokenizer({
    specials,
    bos: c.bos,
    eos: specials[1],
    pad: specials[2],
    config: {
      chat_template: gemma
        ? "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
        : "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
    }
  })
}

/**
 * The seed lens (patching every layer, one projection per layer) as the bundle holds it
 * (docs/bundle-format.md "Exporting from a PyTorch checkpoint"): prompt rows in residual-input
 * space (× √d for Gemma), projections transposed to (in, out), the encoder head likewise.
 */
function bundleLens(ref: HfReferenceModel, lens: SeedLens): LensSpec {
  const d = ref.config.hiddenSize
  const scale = ref.config.embedScale
  const rows = (list: readonly ArrayLike<number>[]): Float32Array => {
    const out = new Float32Array(list.length * d)
    list.forEach((r, i) =>
      out.set(
        Array.from(r, (x) => x * scale),
        i * d
      )
    )
    return out
  }
  const transposed = (w: readonly ArrayLike<number>[]): Float32Array => {
    const out = new Float32Array(d * d)
    for (let o = 0; o < d; o++) for (let i = 0; i < d; i++) out[i * d + o] = w[o]![i]!
    return out
  }
  const np = patchLayerCount(lens.decoder.patchAllLayers, ref.config.layers)
  const weights = new Float32Array(np * d * d)
  const bias = new Float32Array(np * d)
  for (let l = 0; l < np; l++) {
    const p = lens.decoder.projections[l]!
    weights.set(transposed(p.weight), l * d * d)
    bias.set(Array.from(p.bias), l * d)
  }
  const slot = new Float32Array(d)
  const prefix = rows(lens.decoder.promptLeft)
  const right = rows(lens.decoder.promptRight)
  const decoderPrefix = new Float32Array(prefix.length + d + right.length)
  decoderPrefix.set(prefix)
  decoderPrefix.set(slot, prefix.length)
  decoderPrefix.set(right, prefix.length + d)
  const e = lens.encoder
  return {
    id: 'lens-l1',
    name: 'Random lens at layer 1',
    layer: lens.layer,
    explanationTokens: lens.explanationTokens,
    decoder: {
      prefix: decoderPrefix,
      embedPos: lens.decoder.promptLeft.length,
      patchLayers: np,
      weights,
      bias
    },
    encoder: {
      outputLayer: e.outputLayer,
      prefix: rows(e.softPrompt),
      suffix: e.softPromptPostfix ? rows(e.softPromptPostfix) : undefined,
      addCurrentToken: e.addCurrentToken,
      lastRowAdd: e.specialLastTokenVector ? rows([e.specialLastTokenVector]) : undefined,
      head: e.projection
        ? { weight: transposed(e.projection.weight), bias: Float32Array.from(e.projection.bias) }
        : undefined
    }
  }
}

/** |a − b| ≤ tol · (|b| + floor). */
function expectNear(actual: number, expected: number, tol: number, floor: number, what: string) {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(
    tol * (Math.abs(expected) + floor)
  )
}

describe.each(CASES)('import and run: $name', (c) => {
  const tok = tokenizerFor(c)
  const model = randomHfModel(c.family, dimsFor(c.family, tok.size), c.model)
  const ref = hfReference(model.config, model.tensors)
  const eos = tok.idOf(c.family.startsWith('gemma') ? '<eos>' : '</s>')

  let imported: Promise<{ dir: string; nullTokenId: number }> | undefined
  const importOnce = (): NonNullable<typeof imported> => {
    imported ??= (async () => {
      const root = await mkdtemp(path.join(os.tmpdir(), 'tw-hf-e2e-'))
      roots.push(root)
      const folder = await writeHfFolder(path.join(root, 'hf'), model, {
        ...c.folder,
        generationConfig: { eos_token_id: eos },
        extraFiles: {
          'tokenizer.json': tok.tokenizerJson,
          'tokenizer_config.json': tok.tokenizerConfig
        }
      })
      const result = await importHfBase({ source: folder.dir, out: path.join(root, 'group') })
      expect(result.warnings).toEqual([])
      const manifest = JSON.parse(
        await readFile(path.join(result.dir, 'manifest.json'), 'utf8')
      ) as {
        conventions: { nullTokenId: number }
      }
      return { dir: result.dir, nullTokenId: manifest.conventions.nullTokenId }
    })()
    return imported
  }

  const withGroup = async <T>(dir: string, run: (g: LoadedGroup) => Promise<T>): Promise<T> => {
    const group = await loadGroup(dir, { provider: 'cpu', threads: 1 })
    try {
      return await run(group)
    } finally {
      await group.dispose()
    }
  }

  it('greedy continuation equals the reference', async () => {
    const { dir } = await importOnce()
    const result = await withGroup(dir, (g) =>
      g.generate({
        text: TEXT,
        options: { maxNewTokens: NEW_TOKENS, temperature: 0, stopAtEndOfTurn: true }
      })
    )
    const promptIds = result.promptIds
    expect(promptIds[0] === tok.idOf(c.bos ?? SPECIALS[0]!)).toBe(c.bos !== undefined)
    const want = ref.greedy(promptIds, NEW_TOKENS, [eos])
    const got = result.completions[0]!.tokenIds
    for (let i = 0; i < want.tokens.length; i++) {
      expect(got[i], `step ${i}`).toBe(want.tokens[i])
      if (want.margins[i]! < MARGIN) break
    }
  })

  it('greedy analysis rows equal the reference once a lens is added', async () => {
    const { dir, nullTokenId } = await importOnce()
    const lens = randomSeedLens(ref, { seed: 7, layer: 1, explanationTokens: 3 })
    await addLensToGroup(dir, bundleLens(ref, lens))
    const { result, ids, decode } = await withGroup(dir, async (g) => ({
      ids: g.tokenize(TEXT).ids,
      decode: (id: number) => (g.tokenizer as TextTokenizer).decodeOne(id),
      result: await g.analyze({
        lensId: 'lens-l1',
        text: TEXT,
        options: { bestOfK: 1, temperature: 0, kl: true, salience: true, logitLens: true }
      })
    }))
    const want = lensReference({
      base: ref,
      lens,
      inputIds: ids,
      nullTokenId,
      logitLensFinalNorm: true,
      currentTokenBeforeSuffix: true
    })
    expect(result.metadata.status).toBe('completed')
    expect(result.rows.map((r) => r.tokenId)).toEqual(ids)
    let compared = 0
    for (const [i, row] of result.rows.entries()) {
      const w = want[i]!
      const at = `position ${row.position}`
      // A near-tie in the decoder may pick another explanation in float32; then the row's
      // metrics describe a different explanation and are not comparable.
      if (w.decoderMargins.some((m) => m < MARGIN)) continue
      compared++
      expect(row.explanationStructured.slice(0, w.explanation.length), at).toEqual(
        w.explanation.map(decode)
      )
      expectNear(row.mse, w.mse, 1e-3, 1e-6, `${at} mse`)
      expectNear(row.relativeRmse, w.relativeRmse, 1e-3, 1e-6, `${at} relative RMSE`)
      expectNear(row.klDivergence!, w.kl, 1e-3, 1e-4, `${at} KL`)
      row.tokenSalience.forEach((s, j) =>
        expectNear(s, w.salience[j]!, 1e-3, 1e-2, `${at} salience ${j}`)
      )
      expect(row.logitLensTop, at).toBe(w.logitLens.map(decode).join(' '))
    }
    expect(compared, 'rows whose decoder margins allow a comparison').toBeGreaterThan(
      result.rows.length / 2
    )
  })
})
