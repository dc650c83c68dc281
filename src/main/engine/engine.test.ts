/**
 * The engine on real bundles: the generated demo group (its documented property) and a small
 * synthetic group (numerics against the float64 reference, KL, donors). No stubbed inference.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ensureDemoBundle,
  generateSyntheticBundle,
  loadGroup,
  openBundle,
  syntheticText,
  type LoadedGroup
} from './index'
import { BaseModel, KL_CHUNK_ROWS } from './baseModel'
import { DEMO_CONTENT_WORDS } from './demo/vocabulary'
import { klFromLogits } from './metrics'
import { referenceLogits, referenceResiduals } from './graph/reference'
import { randomTransformer } from './graph/random-weights'
import { BASE_GRAPH_VERSION, buildTransformer } from './graph/transformer'
import { isBundleDir } from './synthetic'
import { Session } from './ort'

const CONTENT = new Set<string>(DEMO_CONTENT_WORDS)
/** Sentences the encoder head was fitted on, and sentences it never saw. */
const FITTED = ['The cat sat on the red chair.', 'The queen visited the castle on the island.']
const UNSEEN = [
  'A lion ate cheese in the dark castle.',
  'The brave farmer painted a golden boat.',
  'Some snow fell on the quiet village.'
]

let cache: string
let demoDir: string
let demo: LoadedGroup

beforeAll(async () => {
  cache = await mkdtemp(path.join(os.tmpdir(), 'talkative-engine-'))
  demoDir = await ensureDemoBundle(cache)
  demo = await loadGroup(demoDir, { provider: 'cpu', threads: 1 })
})

afterAll(async () => {
  await demo?.dispose()
  await rm(cache, { recursive: true, force: true })
})

describe('demo group', () => {
  // How fast a group loads is measured by the benchmarks (bench/load-stages.ts, bench/reload.ts),
  // not here: a wall-clock bound failed on a saturated machine and proves nothing on an idle one.
  it('summarises two lenses at different layers and loads with the default threads', async () => {
    const summary = await openBundle(demoDir)
    expect(summary.groupId).toBe('demo-words')
    expect(summary.lenses.map((l) => l.layer)).toEqual([1, 3])
    expect(summary.hasChatTemplate).toBe(true)
    const g = await loadGroup(demoDir, { provider: 'cpu' })
    await g.dispose()
  })

  it.each(['words-l1', 'words-l3'])(
    'lens %s: the explanation of every content word names it',
    async (lensId) => {
      for (const text of [...FITTED, ...UNSEEN]) {
        const r = await demo.analyze({
          lensId,
          text,
          options: { bestOfK: 8, kl: false, salience: false }
        })
        expect(r.metadata.status).toBe('completed')
        for (const row of r.rows) {
          if (!CONTENT.has(row.token)) continue
          expect(row.explanationStructured, `${lensId} "${text}" @${row.position}`).toContain(
            row.token
          )
          expect(row.mse).toBeLessThan(lensId === 'words-l1' ? 0.004 : 0.012)
        }
      }
    }
  )

  it.each(['words-l1', 'words-l3'])(
    'lens %s: MSE is low for the word and high for another word',
    async (lensId) => {
      const T = lensId === 'words-l1' ? 6 : 8
      for (const text of [...FITTED, ...UNSEEN]) {
        const { tokens } = demo.tokenize(text)
        for (const [p, w] of tokens.entries()) {
          if (!CONTENT.has(w)) continue
          const other = w === 'king' ? 'queen' : 'king'
          const [own, wrong] = await demo.scoreExplanations({
            lensId,
            text,
            position: p,
            explanations: [Array(T).fill(w).join(' '), Array(T).fill(other).join(' ')]
          })
          expect(own!.mse, `${w}`).toBeLessThan(0.5 * wrong!.mse)
          expect(wrong!.mse).toBeGreaterThan(lensId === 'words-l1' ? 0.008 : 0.015)
        }
      }
    }
  )

  it('is deterministic and independent of batch size and position splits', async () => {
    const text = UNSEEN[0]!
    const opts = { bestOfK: 4, seed: 7 }
    const a = await demo.analyze({
      lensId: 'words-l1',
      text,
      options: { ...opts, rowsPerBatch: 64 }
    })
    const b = await demo.analyze({
      lensId: 'words-l1',
      text,
      options: { ...opts, rowsPerBatch: 64 }
    })
    const c = await demo.analyze({
      lensId: 'words-l1',
      text,
      options: { ...opts, rowsPerBatch: 4 }
    })
    const evens = await demo.analyze({
      lensId: 'words-l1',
      text,
      options: opts,
      positionList: [0, 2, 4, 6, 8]
    })
    const odds = await demo.analyze({
      lensId: 'words-l1',
      text,
      options: opts,
      positionList: [9, 7, 5, 3, 1]
    })
    expect(b.rows).toEqual(a.rows)
    expect(c.metadata.options.positionsPerBatch).toBe(1)
    const merged = [...evens.rows, ...odds.rows].sort((x, y) => x.position - y.position)
    // Every column bit-identical whatever the batch size or split, except KL, which agrees to
    // float32 rounding (the CPU GEMM's result for a row can depend on where it sits in a block).
    const withoutKl = (rows: typeof a.rows): unknown[] =>
      rows.map((r) => ({ ...r, klDivergence: null }))
    for (const other of [c.rows, merged]) {
      expect(withoutKl(other)).toEqual(withoutKl(a.rows))
      other.forEach((r, i) => {
        const ref = a.rows[i]!.klDivergence!
        expect(Math.abs(r.klDivergence! - ref)).toBeLessThanOrEqual(1e-6 * Math.abs(ref) + 1e-9)
      })
    }
    const seed8 = await demo.analyze({ lensId: 'words-l1', text, options: { bestOfK: 4, seed: 8 } })
    expect(seed8.rows.map((r) => r.explanation)).not.toEqual(a.rows.map((r) => r.explanation))
  })

  it('best-of-K is never worse than best-of-1 on the same sample stream', async () => {
    const text = 'The tired horse slept in the warm house.'
    const one = await demo.analyze({
      lensId: 'words-l3',
      text,
      options: { bestOfK: 1, seed: 3, temperature: 1.5, salience: false, kl: false }
    })
    const many = await demo.analyze({
      lensId: 'words-l3',
      text,
      options: { bestOfK: 12, seed: 3, temperature: 1.5, salience: false, kl: false }
    })
    let strictlyBetter = 0
    many.rows.forEach((r, i) => {
      expect(r.mse).toBeLessThanOrEqual(one.rows[i]!.mse * (1 + 1e-5))
      if (r.mse < one.rows[i]!.mse * 0.999) strictlyBetter++
    })
    expect(strictlyBetter).toBeGreaterThan(0)
  })

  it('temperature 0 is greedy: every rollout is the same, whatever the seed', async () => {
    const text = 'A fox watched the duck.'
    const a = await demo.analyze({
      lensId: 'words-l1',
      text,
      options: { bestOfK: 3, temperature: 0, seed: 1 }
    })
    const b = await demo.analyze({
      lensId: 'words-l1',
      text,
      options: { bestOfK: 1, temperature: 0, seed: 99 }
    })
    expect(a.rows.map((r) => r.explanation)).toEqual(b.rows.map((r) => r.explanation))
  })

  it('fills every column: salience per token, KL ≥ 0, logit lens, metadata', async () => {
    const r = await demo.analyze({
      lensId: 'words-l3',
      text: 'The cat sat.',
      options: { bestOfK: 4, logitLens: true }
    })
    expect(r.rows).toHaveLength(5)
    const cat = r.rows[2]!
    expect(cat.token).toBe('cat')
    expect(cat.tokenSalience).toHaveLength(8)
    expect(cat.klDivergence).toBeGreaterThanOrEqual(0)
    // Logit lens of the orig activation: the base's unembedding reads only the copy channel, so it
    // is not the word here, but it is T' = min(T, 10) real tokens.
    expect(cat.logitLensTop!.split(' ')).toHaveLength(8)
    // relative RMSE = RMS(A − Â)/RMS(A), with A the orig model's activation read independently.
    const manifest = JSON.parse(await readFile(path.join(demoDir, 'manifest.json'), 'utf8')) as {
      base: { file: string; hiddenSize: number }
    }
    const d = manifest.base.hiddenSize
    const session = await Session.create(path.join(demoDir, manifest.base.file), {
      provider: 'cpu',
      threads: 1
    })
    try {
      const acts = await new BaseModel(session, d).activations(demo.tokenize('The cat sat.').ids, 3)
      const a = acts.subarray(2 * d, 3 * d)
      const rmsA = Math.sqrt(a.reduce((sum, v) => sum + v * v, 0) / d)
      expect(rmsA).toBeGreaterThan(0)
      expect(cat.relativeRmse).toBeGreaterThan(0)
      expect(cat.relativeRmse).toBeCloseTo(Math.sqrt(cat.mse) / rmsA, 5)
    } finally {
      await session.release()
    }
    const m = r.metadata
    expect(m).toMatchObject({
      groupId: 'demo-words',
      lensId: 'words-l3',
      layer: 3,
      executionProvider: 'cpu',
      status: 'completed',
      numTokens: 5,
      analysedPositions: 5
    })
    expect(m.bundleHash).toMatch(/^[0-9a-f]{64}$/)
    expect(m.timings.totalMs).toBeGreaterThan(0)
    const noExtras = await demo.analyze({
      lensId: 'words-l3',
      text: 'The cat sat.',
      options: { bestOfK: 4, salience: false, kl: false, positions: { start: 1, end: 3 } }
    })
    expect(noExtras.rows.map((x) => x.position)).toEqual([1, 2])
    expect(noExtras.rows[0]!.tokenSalience).toEqual([])
    expect(noExtras.rows[0]!.klDivergence).toBeNull()
    expect(noExtras.rows[0]!.logitLensTop).toBeNull()
  })

  it('cancellation stops at a batch boundary and returns the rows so far, marked cancelled', async () => {
    const text = 'The king lost his golden clock in the dark forest at night.'
    let batches = 0
    const progress: number[] = []
    const r = await demo.analyze(
      { lensId: 'words-l1', text, options: { bestOfK: 4, rowsPerBatch: 8 } },
      {
        onBatch: (_rows, p) => {
          batches++
          progress.push(p.rowsDone)
        },
        isCancelled: () => batches >= 2
      }
    )
    expect(r.metadata.status).toBe('cancelled')
    expect(r.rows).toHaveLength(4)
    expect(progress).toEqual([2, 4])
    expect(r.rows.map((x) => x.position)).toEqual([0, 1, 2, 3])
  })

  it('applies the double-BOS rule only to two leading BOS tokens, and takes 1-token inputs', async () => {
    expect(demo.tokenize('<bos>the cat').ids).toEqual(demo.tokenize('the cat').ids)
    const dup = demo.tokenize('the the cat')
    expect(dup.tokens).toEqual(['<bos>', 'the', 'the', 'cat'])
    const r = await demo.analyze({ lensId: 'words-l1', text: '', options: { bestOfK: 2 } })
    expect(r.rows).toHaveLength(1)
    expect(r.rows[0]!.token).toBe('<bos>')
    // Out-of-vocabulary words map to <unk> (the WordLevel model alone would return null): the
    // token is what the model received, the word read there is kept beside it.
    const oov = demo.tokenize('the Zebra')
    expect(oov.tokens).toEqual(['<bos>', 'the', '<unk>'])
    expect(oov.sources).toEqual([undefined, undefined, 'zebra'])
    const row = (
      await demo.analyze({ lensId: 'words-l1', text: 'the Zebra', options: { bestOfK: 2 } })
    ).rows[2]!
    expect(row).toMatchObject({ token: '<unk>', tokenId: oov.ids[2], sourceText: 'zebra' })
  })

  it('rejects bad requests with the field named', async () => {
    await expect(demo.analyze({ lensId: 'nope', text: 'cat' })).rejects.toMatchObject({
      code: 'not_found',
      field: 'lensId'
    })
    await expect(
      demo.analyze({ lensId: 'words-l1', text: 'cat', options: { bestOfK: 0 } })
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'options.bestOfK' })
    await expect(
      demo.analyze({ lensId: 'words-l1', text: 'cat', positionList: [5] })
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'positionList.0' })
  })

  it('ensureDemoBundle is idempotent and safe under concurrent callers', async () => {
    const fresh = await mkdtemp(path.join(os.tmpdir(), 'talkative-demo-race-'))
    try {
      const dirs = await Promise.all([
        ensureDemoBundle(fresh),
        ensureDemoBundle(fresh),
        ensureDemoBundle(fresh)
      ])
      expect(new Set(dirs).size).toBe(1)
      const s = await openBundle(dirs[0]!)
      expect(s.contentHash).toBe((await openBundle(demoDir)).contentHash)
    } finally {
      await rm(fresh, { recursive: true, force: true })
    }
  })
})

describe('base graph against the float64 reference', () => {
  it('activations match the reference forward and KL is 0 when Â = A', async () => {
    const dims = {
      hiddenSize: 32,
      layers: 3,
      heads: 4,
      vocabSize: 40,
      ffnSize: 48,
      maxPositions: 32
    }
    const w = randomTransformer(dims, 11)
    const session = await Session.create(buildTransformer(w).model, { provider: 'cpu', threads: 1 })
    try {
      const base = new BaseModel(session, 32)
      const ids = [1, 5, 9, 5, 30, 2, 17]
      const rows = new Float64Array(ids.length * 32)
      ids.forEach((id, t) => {
        for (let i = 0; i < 32; i++) rows[t * 32 + i] = w.tokenEmbedding[id * 32 + i]!
      })
      const ref = referenceResiduals(w, rows, 2)
      for (const L of [0, 1, 2]) {
        const acts = await base.activations(ids, L)
        let maxErr = 0
        acts.forEach((v, i) => (maxErr = Math.max(maxErr, Math.abs(v - ref[L]![i]!))))
        expect(maxErr).toBeLessThan(1e-5)
        const positions = [1, 3, 6]
        const vectors = new Float32Array(positions.length * 32)
        positions.forEach((p, i) => vectors.set(acts.subarray(p * 32, (p + 1) * 32), i * 32))
        const same = await base.kl(ids, positions, vectors, L)
        same.forEach((k) => expect(Math.abs(k)).toBeLessThan(1e-5))
        const moved = await base.kl(
          ids,
          positions,
          vectors.map((v) => v * 3 + 0.05),
          L
        )
        moved.forEach((k, i) => expect(k).toBeGreaterThan(Math.max(1e-6, 10 * Math.abs(same[i]!))))
      }
    } finally {
      await session.release()
    }
  })
})

describe('KL role against the float64 reference', () => {
  it('equals KL(P‖Q) from reference logits, over several row chunks and every layer', async () => {
    const dims = {
      hiddenSize: 32,
      layers: 4,
      heads: 4,
      vocabSize: 40,
      ffnSize: 48,
      maxPositions: 64
    }
    const w = randomTransformer(dims, 11)
    // The scale is applied by the graph (and by the reference rows below).
    w.embeddingScale = 1.7
    const d = dims.hiddenSize
    const session = await Session.create(buildTransformer(w).model, { provider: 'cpu', threads: 1 })
    try {
      const base = new BaseModel(session, d)
      const ids = [1, 5, 9, 5, 30, 2, 17, 3, 8, 12, 39]
      const rows = new Float64Array(ids.length * d)
      ids.forEach((id, t) => {
        for (let i = 0; i < d; i++)
          rows[t * d + i] = w.tokenEmbedding[id * d + i]! * w.embeddingScale
      })
      const unmodified = referenceResiduals(w, rows, dims.layers - 1)
      // More rows than one chunk (positions repeat), so a second, padded chunk is checked too.
      const positions = Array.from({ length: KL_CHUNK_ROWS + 6 }, (_, i) => i % ids.length)
      let checked = 0
      for (const L of [0, 1, 2, 3]) {
        const vectors = new Float32Array(positions.length * d)
        positions.forEach((p, r) => {
          for (let i = 0; i < d; i++) {
            vectors[r * d + i] = unmodified[L]![p * d + i]! * 1.3 + 0.1 * Math.sin(i + r)
          }
        })
        const got = await base.kl(ids, positions, vectors, L)
        positions.forEach((p, r) => {
          const vector = vectors.subarray(r * d, (r + 1) * d)
          const replaced = referenceResiduals(w, rows, dims.layers - 1, {
            layer: L,
            row: p,
            vector
          })
          const last = dims.layers - 1
          const pLogits = referenceLogits(w, unmodified[last]!.slice(p * d, (p + 1) * d))
          const qLogits = referenceLogits(w, replaced[last]!.slice(p * d, (p + 1) * d))
          const want = klFromLogits(pLogits, qLogits)
          expect(want, `L=${L} p=${p}`).toBeGreaterThan(1e-3)
          expect(Math.abs(got[r]! - want), `L=${L} p=${p}: ${got[r]} vs ${want}`).toBeLessThan(
            1e-4 * want + 1e-6
          )
          checked++
        })
      }
      expect(checked).toBe(4 * positions.length)
    } finally {
      await session.release()
    }
  })
})

describe('KL role: a row does not depend on the rows that share its run', () => {
  for (const [hiddenSize, vocabSize, threads] of [
    [32, 40, 1],
    [128, 600, 2]
  ] as const) {
    it(`d ${hiddenSize}, V ${vocabSize}, ${threads} thread(s): runs of 1, 2, 3 or 5 rows agree with one of 11`, async () => {
      const dims = {
        hiddenSize,
        layers: 3,
        heads: 4,
        vocabSize,
        ffnSize: 2 * hiddenSize,
        maxPositions: 64
      }
      const w = randomTransformer(dims, 5)
      const session = await Session.create(buildTransformer(w).model, { provider: 'cpu', threads })
      try {
        const base = new BaseModel(session, hiddenSize)
        const ids = Array.from({ length: 23 }, (_, i) => (i * 7 + 3) % vocabSize)
        const positions = [0, 4, 9, 22, 13, 4, 17, 1, 20, 11, 6]
        const acts = await base.activations(ids, 1)
        const vectors = new Float32Array(positions.length * hiddenSize)
        positions.forEach((p, r) => {
          for (let i = 0; i < hiddenSize; i++) {
            vectors[r * hiddenSize + i] = acts[p * hiddenSize + i]! * 1.2 + 0.05 * Math.cos(i + r)
          }
        })
        const all = await base.kl(ids, positions, vectors, 1)
        all.forEach((k) => expect(k).toBeGreaterThan(0))
        for (const size of [1, 2, 3, 5]) {
          for (let start = 0; start < positions.length; start += size) {
            const end = Math.min(start + size, positions.length)
            const part = await base.kl(
              ids,
              positions.slice(start, end),
              vectors.slice(start * hiddenSize, end * hiddenSize),
              1
            )
            part.forEach((k, i) => {
              const ref = all[start + i]!
              // Float32 rounding at most, as across batches (the analysis test above).
              expect(Math.abs(k - ref), `row ${start + i}`).toBeLessThanOrEqual(
                1e-6 * Math.abs(ref) + 1e-9
              )
            })
          }
        }
      } finally {
        await session.release()
      }
    })
  }
})

/**
 * Runs `run` on a random decoder whose unembedding is scaled by 3, so its next-token distributions
 * are peaked enough that different rows and steps draw different ids.
 */
async function withSharpDecoder(
  dims: Parameters<typeof randomTransformer>[0],
  seed: number,
  run: (base: BaseModel, d: number) => Promise<void>
): Promise<void> {
  const w = randomTransformer(dims, seed)
  for (let i = 0; i < w.unembedding.length; i++) w.unembedding[i]! *= 3
  const session = await Session.create(buildTransformer(w).model, { provider: 'cpu', threads: 1 })
  try {
    await run(new BaseModel(session, dims.hiddenSize), dims.hiddenSize)
  } finally {
    await session.release()
  }
}

describe('decode role: rows share patch vectors through patch_index', () => {
  it('gives exactly the ids of the same vectors copied once per row', async () => {
    const dims = {
      hiddenSize: 32,
      layers: 3,
      heads: 4,
      vocabSize: 40,
      ffnSize: 48,
      maxPositions: 32
    }
    await withSharpDecoder(dims, 5, async (base, d) => {
      const positions = 3
      const K = 4
      const np = 2
      const T = 6
      const patch = new Float32Array(positions * np * d).map((_, i) => Math.cos(i * 1.37) * 3)
      const prefix = new Float32Array(5 * d).map((_, i) => Math.sin(i * 0.11))
      const uniforms = new Float32Array(positions * K * T).map(
        (_, i) => ((i * 0.6180339) % 1) * 0.998 + 1e-3
      )
      // The slot is the last prefix row, so the first step reads the patched residual directly.
      const common = { prefix, prefixRows: 5, rows: positions * K, patchLayers: np, embedPos: 4 }
      const copied = new Float32Array(positions * K * np * d)
      for (let row = 0; row < positions * K; row++) {
        const p = Math.floor(row / K)
        copied.set(patch.subarray(p * np * d, (p + 1) * np * d), row * np * d)
      }
      for (const temperature of [1, 0]) {
        const args = { ...common, uniforms, steps: T, temperature }
        const shared = await base.decode({
          ...args,
          patch,
          patchRows: positions,
          patchIndex: Array.from({ length: positions * K }, (_, row) => Math.floor(row / K))
        })
        const each = await base.decode({
          ...args,
          patch: copied,
          patchRows: positions * K,
          patchIndex: Array.from({ length: positions * K }, (_, row) => row)
        })
        expect(Array.from(shared)).toEqual(Array.from(each))
        // The patch matters: another position's vectors give other ids.
        const swapped = await base.decode({
          ...args,
          patch,
          patchRows: positions,
          patchIndex: Array.from(
            { length: positions * K },
            (_, row) => (Math.floor(row / K) + 1) % 3
          )
        })
        expect(Array.from(swapped)).not.toEqual(Array.from(shared))
        // Rows in runs of K attend to the prefix per position; the same rows in reverse order
        // (no longer in runs) take the gathered prefix: each row gets the same ids either way.
        const reversed = (r: number): number => positions * K - 1 - r
        const backwards = await base.decode({
          ...args,
          uniforms: new Float32Array(positions * K * T).map(
            (_, i) => uniforms[reversed(Math.floor(i / T)) * T + (i % T)]!
          ),
          patch,
          patchRows: positions,
          patchIndex: Array.from({ length: positions * K }, (_, r) => Math.floor(reversed(r) / K))
        })
        const rowsOf = (ids: Int32Array): number[][] =>
          Array.from({ length: positions * K }, (_, r) =>
            Array.from(ids.subarray(r * T, (r + 1) * T))
          )
        expect(rowsOf(backwards).reverse()).toEqual(rowsOf(shared))
      }
    })
  })
})

describe('decode role: rows sampled in chunks', () => {
  // V = 40: the whole-vocabulary draw, 64 rows a chunk; V = 262,144: the two-level draw,
  // decodeSampleRows(V) = 128 rows a chunk.
  for (const vocabSize of [40, 262_144]) {
    it(`gives each row the ids it gets in a batch small enough for one chunk (V = ${vocabSize})`, async () => {
      const dims = {
        hiddenSize: 24,
        layers: 2,
        heads: 2,
        vocabSize,
        ffnSize: 32,
        maxPositions: 32
      }
      await withSharpDecoder(dims, 11, async (base, d) => {
        // 150 rows: three chunks of 50 (V = 40) or two of 75 (V = 262,144); sub-batches of 30
        // rows: one chunk each.
        const rows = 150
        const positions = 5
        const np = 2
        const T = 4
        const patch = new Float32Array(positions * np * d).map((_, i) => Math.cos(i * 0.73) * 3)
        const prefix = new Float32Array(4 * d).map((_, i) => Math.sin(i * 0.29))
        const uniforms = new Float32Array(rows * T).map(
          (_, i) => ((i * 0.6180339) % 1) * 0.998 + 1e-3
        )
        const patchIndex = Array.from({ length: rows }, (_, r) => r % positions)
        const common = { prefix, prefixRows: 4, patch, patchRows: positions, patchLayers: np }
        for (const temperature of [1, 0]) {
          const run = (start: number, end: number): Promise<Int32Array> =>
            base.decode({
              ...common,
              patchIndex: patchIndex.slice(start, end),
              rows: end - start,
              embedPos: 3,
              uniforms: uniforms.subarray(start * T, end * T),
              steps: T,
              temperature
            })
          const whole = await run(0, rows)
          const parts: number[] = []
          for (let start = 0; start < rows; start += 30)
            parts.push(...(await run(start, start + 30)))
          expect(Array.from(whole)).toEqual(parts)
          // Not one id everywhere: the comparison sees which row each id went to.
          expect(new Set(whole).size).toBeGreaterThan(3)
        }
      })
    })
  }
})

describe('decode role: the step loop carries no caches out of its last iteration', () => {
  it('gives, for every step count, the first ids of a longer decode', async () => {
    const dims = {
      hiddenSize: 24,
      layers: 2,
      heads: 2,
      vocabSize: 40,
      ffnSize: 32,
      maxPositions: 32
    }
    await withSharpDecoder(dims, 11, async (base, d) => {
      const positions = 3
      const K = 4
      const rows = positions * K
      const np = 2
      const longest = 6
      const patch = new Float32Array(positions * np * d).map((_, i) => Math.cos(i * 0.73) * 3)
      const prefix = new Float32Array(4 * d).map((_, i) => Math.sin(i * 0.29))
      const uniform = (r: number, s: number): number =>
        (((r * longest + s) * 0.6180339) % 1) * 0.998 + 1e-3
      // Rows in runs of K (the prefix attended per position) and the same rows interleaved (the
      // prefix gathered to the rows): the two step loops.
      for (const patchIndex of [
        Array.from({ length: rows }, (_, r) => Math.floor(r / K)),
        Array.from({ length: rows }, (_, r) => r % positions)
      ]) {
        const decode = (steps: number): Promise<Int32Array> =>
          base.decode({
            prefix,
            prefixRows: 4,
            patch,
            patchRows: positions,
            patchLayers: np,
            patchIndex,
            rows,
            embedPos: 3,
            uniforms: new Float32Array(rows * steps).map((_, i) =>
              uniform(Math.floor(i / steps), i % steps)
            ),
            steps,
            temperature: 1
          })
        const rowsOf = (ids: Int32Array, steps: number, keep: number): number[][] =>
          Array.from({ length: rows }, (_, r) =>
            Array.from(ids.subarray(r * steps, r * steps + keep))
          )
        const all = await decode(longest)
        // Later tokens read the earlier ones' keys and values: not one id everywhere.
        expect(new Set(all).size).toBeGreaterThan(3)
        for (let steps = 1; steps < longest; steps++)
          expect(rowsOf(await decode(steps), steps, steps)).toEqual(rowsOf(all, longest, steps))
      }
    })
  })
})

describe('synthetic bundles', () => {
  it('generates, validates and analyses a bundle with a donor lens', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'talkative-syn-'))
    try {
      await generateSyntheticBundle(dir, {
        hiddenSize: 32,
        layers: 3,
        heads: 2,
        vocabSize: 60,
        explanationTokens: 4,
        patchLayers: 2,
        donor: true,
        lensLayers: [1]
      })
      const g = await loadGroup(dir, { provider: 'cpu', threads: 1 })
      try {
        expect(g.summary.lenses.map((l) => l.origModel)).toEqual(['synthetic-base', 'donor'])
        const text = syntheticText(6, 60)
        const own = await g.analyze({ lensId: 'synthetic-l1', text, options: { bestOfK: 2 } })
        const donor = await g.analyze({
          lensId: 'synthetic-donor-l1',
          text,
          options: { bestOfK: 2 }
        })
        expect(own.rows).toHaveLength(7)
        // Same lens parts, different activations: the donor changes the targets.
        expect(donor.rows.map((r) => r.mse)).not.toEqual(own.rows.map((r) => r.mse))
        // Cached generated bundles (benchmarks) are reused only if the current builder wrote them.
        expect(await isBundleDir(dir)).toBe(true)
        const stamp = path.join(dir, 'generator.json')
        await writeFile(stamp, JSON.stringify({ baseGraphVersion: BASE_GRAPH_VERSION - 1 }))
        expect(await isBundleDir(dir)).toBe(false)
        await rm(stamp)
        expect(await isBundleDir(dir)).toBe(false)
      } finally {
        await g.dispose()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
