/**
 * The research modes on real bundles (the demo group and a synthetic group with a current-token
 * encoder), against the independent float64 reference of the pre-norm GPT
 * (test/reference/prenorm/lens.ts over graph/reference.ts), and the invariants that tie them to
 * the analysis: intervening with the explanation itself reproduces the analysis row's MSE and KL;
 * intervening with A gives KL 0; a sweep row at a lens's own layer is that lens's analysis row;
 * the optimiser starts from exactly the best-of-N row and never ends worse.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AnalysisRow, OptimiserProgress } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import {
  activationsRef,
  encodeRef,
  klRef,
  mseRef,
  patchedGreedyRef,
  patchedLogProbsRef,
  type PrenormEncoder
} from '../../../../test/reference/prenorm/lens'
import { validateBundle } from '../bundle/open'
import { endOfTurnIds } from '../chat/turns'
import { readTokenizerConfigFile } from '../chat/tokenizerConfig'
import { demoLensSpecs, demoModel } from '../demo/demo'
import { randomTransformer } from '../graph/random-weights'
import type { TransformerWeights } from '../graph/transformer'
import { ensureDemoBundle, generateSyntheticBundle, loadGroup, syntheticText } from '../index'
import { openGroupParts, type GroupParts } from '../loading'
import type { LoadedGroup } from '../types'
import { interventionTokens, klBetweenRows } from './intervene'
import { lensForLayer } from './sweep'

const SYN = {
  hiddenSize: 32,
  layers: 4,
  heads: 4,
  vocabSize: 60,
  explanationTokens: 5,
  patchLayers: 2,
  lensLayers: [1, 2],
  addCurrentToken: true,
  seed: 7
}

interface Fixture {
  name: string
  dir: string
  group: LoadedGroup
  weights: TransformerWeights
  encoders: Map<string, PrenormEncoder & { layer: number }>
  text: string
  lenses: string[]
  endIds: Set<number>
}

let cache: string
const fixtures: Fixture[] = []

async function floats(file: string): Promise<Float32Array> {
  const buf = await readFile(file)
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4)
}

async function encodersOf(
  dir: string,
  heads: Map<string, PrenormEncoder['head']>
): Promise<Map<string, PrenormEncoder & { layer: number }>> {
  const bundle = await validateBundle(dir)
  const out = new Map<string, PrenormEncoder & { layer: number }>()
  for (const l of bundle.lenses) {
    const m = l.manifest
    out.set(m.id, {
      layer: m.layer,
      outputLayer: m.encoder.outputLayer,
      prefix: await floats(l.encoderPrefix.file),
      suffix: l.encoderSuffix ? await floats(l.encoderSuffix.file) : undefined,
      lastRowAdd: l.lastRowAdd ? await floats(l.lastRowAdd.file) : undefined,
      addCurrentToken: m.encoder.addCurrentToken,
      head: heads.get(m.id)
    })
  }
  return out
}

function endIdsOf(dir: string, group: LoadedGroup): Set<number> {
  const specials = readTokenizerConfigFile(path.join(dir, 'tokenizer_config.json'))
  return new Set(
    endOfTurnIds((t) => group.tokenizer.tokenToId(t), specials.eosToken, specials.endOfTurnTokens)
  )
}

beforeAll(async () => {
  cache = await mkdtemp(path.join(os.tmpdir(), 'talkative-research-'))
  const demoDir = await ensureDemoBundle(cache)
  const model = demoModel()
  const demo = await loadGroup(demoDir, { provider: 'cpu', threads: 1 })
  fixtures.push({
    name: 'demo',
    dir: demoDir,
    group: demo,
    weights: model.weights,
    encoders: await encodersOf(
      demoDir,
      new Map(demoLensSpecs(model).map((l) => [l.id, l.encoder.head]))
    ),
    text: 'The cat sat on the red chair. A lion ate cheese in the dark castle.',
    lenses: ['words-l1', 'words-l3'],
    endIds: endIdsOf(demoDir, demo)
  })
  const synDir = await generateSyntheticBundle(path.join(cache, 'syn'), SYN)
  const syn = await loadGroup(synDir, { provider: 'cpu', threads: 1 })
  const weights = randomTransformer(
    {
      hiddenSize: SYN.hiddenSize,
      layers: SYN.layers,
      heads: SYN.heads,
      vocabSize: SYN.vocabSize,
      ffnSize: 4 * SYN.hiddenSize,
      maxPositions: 1024
    },
    SYN.seed
  )
  // Sharper predictions than the synthetic model's near-uniform ones, so KL and greedy are not flat.
  fixtures.push({
    name: 'synthetic',
    dir: synDir,
    group: syn,
    weights,
    // Synthetic lens heads are the identity by construction (synthetic.ts).
    encoders: await encodersOf(synDir, new Map()),
    text: syntheticText(14, SYN.vocabSize, 3),
    lenses: ['synthetic-l1', 'synthetic-l2'],
    endIds: endIdsOf(synDir, syn)
  })
})

afterAll(async () => {
  for (const f of fixtures) await f.group.dispose()
  await rm(cache, { recursive: true, force: true })
})

const fixture = (name: string): Fixture => fixtures.find((f) => f.name === name)!

/** Explanation ids of a row (word-level tokenizers: each structured entry is one token). */
function explanationIds(f: Fixture, row: { explanationStructured: string[] }, T: number): number[] {
  return row.explanationStructured.slice(0, T).map((t) => f.group.tokenizer.tokenToId(t)!)
}

function lensT(f: Fixture, lensId: string): number {
  return f.group.summary.lenses.find((l) => l.id === lensId)!.tokens
}

/** The explanation as the editor shows it: without the `[token]` the encoder appends itself. */
function editable(row: AnalysisRow): string {
  const suffix = `[${row.token}]`
  return row.explanationStructured.at(-1) === suffix && row.explanation.endsWith(suffix)
    ? row.explanation.slice(0, -suffix.length)
    : row.explanation
}

function relClose(got: number, want: number, rel: number, abs = 0): void {
  expect(Math.abs(got - want), `${got} vs ${want}`).toBeLessThanOrEqual(rel * Math.abs(want) + abs)
}

/** The analysis's own KL agreement across batchings (engine.test.ts): float32 rounding. */
const KL_ROUNDING = { rel: 1e-5, abs: 2e-7 }

describe.each(['demo', 'synthetic'])('causal intervention (%s)', (name) => {
  it('the explanation itself reproduces the analysis row: MSE exactly, KL to float32 rounding', async () => {
    const f = fixture(name)
    for (const lensId of f.lenses) {
      const options = { bestOfK: 4, seed: 5 }
      const analysis = await f.group.analyze({ lensId, text: f.text, options })
      for (const position of [1, 4, 9]) {
        const row = analysis.rows[position]!
        const iv = await f.group.intervene({
          lensId,
          text: f.text,
          options,
          intervention: { positions: [position], strings: [editable(row), 'x'] }
        })
        expect(iv.metadata.status).toBe('completed')
        const own = iv.rows[0]!
        expect(own.explanationOriginal).toBe(row.explanation)
        expect(own.explanationStructured).toEqual(row.explanationStructured)
        expect(own.truncatedTokens + own.paddedTokens).toBe(0)
        expect(own.mseOrigDecoded).toBe(row.mse)
        expect(own.mse).toBe(row.mse)
        expect(own.klDivergence).toBe(own.klDivOrigDecoded)
        expect(own.topPredictionsIntervention).toEqual(own.topPredictionsOriginalDecoded)
        expect(own.continuationIntervention).toBe(own.continuationOriginalDecoded)
        relClose(own.klDivOrigDecoded, row.klDivergence!, KL_ROUNDING.rel, KL_ROUNDING.abs)
        // Another string is another vector: the comparison is not of equal runs.
        expect(iv.rows[1]!.mse).not.toBe(row.mse)
      }
    }
  })

  it('intervening with A itself gives KL 0 exactly, and P_A is the unmodified model', async () => {
    const f = fixture(name)
    const parts: GroupParts = await openGroupParts(f.dir, { provider: 'cpu', threads: 1 })
    try {
      const lensId = f.lenses[0]!
      const lens = parts.bundle.lenses.find((l) => l.manifest.id === lensId)!.manifest
      const orig = parts.models.get('base')!
      const ids = parts.tokenizer.encode(f.text).ids
      const d = orig.hiddenSize
      const V = parts.bundle.manifest.base.vocabSize
      const acts = await orig.activations(ids, lens.layer)
      for (const [t, q] of [
        [2, 2],
        [3, 8]
      ] as const) {
        const a = acts.slice(t * d, (t + 1) * d)
        const other = a.map((v, i) => v * 0.5 + 0.3 * Math.sin(i))
        const vectors = new Float32Array(4 * d)
        vectors.set(a, 0)
        vectors.set(other, d)
        vectors.set(a, 2 * d)
        vectors.set(a, 3 * d)
        const lp = await orig.patchedLogProbs(ids.slice(0, q + 1), lens.layer, t, vectors, 4)
        expect(klBetweenRows(lp, V, 0, 2)).toBe(0)
        expect(klBetweenRows(lp, V, 0, 3)).toBe(0)
        expect(klBetweenRows(lp, V, 0, 1)).toBeGreaterThan(1e-6)
        const want = patchedLogProbsRef(
          f.weights,
          ids,
          lens.layer,
          t,
          activationsRef(f.weights, ids, lens.layer).slice(t * d, (t + 1) * d),
          q
        )
        for (let v = 0; v < V; v++) expect(Math.abs(lp[v]! - want[v]!)).toBeLessThan(1e-4)
      }
    } finally {
      await Promise.all(parts.sessions.map((s) => s.release()))
    }
  })

  it('every column against the float64 reference, at the next token and a later one', async () => {
    const f = fixture(name)
    const { ids } = f.group.tokenize(f.text)
    const d = f.weights.dims.hiddenSize
    // The next token with the deepest lens; a later row with the shallowest (after the last block
    // a replacement cannot reach later rows).
    for (const [nextPosition, lensId] of [
      [undefined, f.lenses.at(-1)!],
      [7, f.lenses[0]!]
    ] as const) {
      const enc = f.encoders.get(lensId)!
      const T = lensT(f, lensId)
      const A = activationsRef(f.weights, ids, enc.layer)
      const iv = await f.group.intervene({
        lensId,
        text: f.text,
        options: { bestOfK: 3, seed: 1 },
        intervention: {
          positions: [3, 6],
          strings: [name === 'demo' ? 'lion castle' : 'w1 w2 w3 w4 w5 w6 w7 w8', ''],
          nextPosition,
          topK: 5,
          maxNewTokens: 6
        }
      })
      expect(iv.rows).toHaveLength(4)
      let moved = 0
      for (const row of iv.rows) {
        const t = row.interventionPosition
        const q = row.nextTokenPosition
        expect(q).toBe(nextPosition ?? t)
        const a = A.slice(t * d, (t + 1) * d)
        const aInt = encodeRef(f.weights, enc, row.interventionIds, ids[t]!)
        const aHat = encodeRef(f.weights, enc, explanationIds(f, row, T), ids[t]!)
        relClose(row.mse, mseRef(a, aInt), 1e-4)
        relClose(row.mseOrigDecoded, mseRef(a, aHat), 1e-4)
        const lpA = patchedLogProbsRef(f.weights, ids, enc.layer, t, a, q)
        const lpInt = patchedLogProbsRef(f.weights, ids, enc.layer, t, aInt, q)
        const lpHat = patchedLogProbsRef(f.weights, ids, enc.layer, t, aHat, q)
        relClose(row.klDivergence, klRef(lpA, lpInt), 1e-4, 1e-6)
        relClose(row.klDivOrigDecoded, klRef(lpA, lpHat), 1e-4, 1e-6)
        if (klRef(lpA, lpInt) > 1e-5) moved++
        for (const [got, lp] of [
          [row.topPredictionsOriginal, lpA],
          [row.topPredictionsIntervention, lpInt],
          [row.topPredictionsOriginalDecoded, lpHat]
        ] as const) {
          expect(got).toHaveLength(5)
          for (const p of got)
            expect(Math.abs(p.probability - Math.exp(lp[p.tokenId]!))).toBeLessThan(1e-5)
          // Listed best first, and nothing unlisted is more likely than the last one listed.
          const listed = new Set(got.map((p) => p.tokenId))
          const floor = got.at(-1)!.probability
          for (let v = 0; v < lp.length; v++)
            if (!listed.has(v)) expect(Math.exp(lp[v]!)).toBeLessThanOrEqual(floor + 1e-5)
        }
        const prompt = ids.slice(0, t + 1)
        for (const [text, vector] of [
          [row.continuationOriginal, a],
          [row.continuationIntervention, aInt],
          [row.continuationOriginalDecoded, aHat]
        ] as const) {
          const ref = patchedGreedyRef(f.weights, prompt, enc.layer, t, vector, 6, f.endIds)
          const sure = ref.margins.findIndex((m) => m < 1e-4)
          const upTo = sure < 0 ? ref.tokens.length : sure
          const want = ref.tokens.slice(0, upTo).map((id) => vocabOf(f)[id]!)
          expect(text.split(' ').slice(0, upTo)).toEqual(want)
        }
      }
      // The interventions move the predictions (the random synthetic model barely carries a
      // residual to later rows: ~1e-6 nats there, so only its next-token case is required to move).
      if (name === 'demo' || nextPosition === undefined) expect(moved).toBeGreaterThan(0)
    }
  })
})

/** Id → word of a word-level tokenizer (the demo's and synthetic groups'). */
function vocabOf(f: Fixture): string[] {
  let v = vocabs.get(f.name)
  if (!v) {
    const json = JSON.parse(readFileSync(path.join(f.dir, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number> }
    }
    v = []
    for (const [word, id] of Object.entries(json.model.vocab)) v[id] = word
    vocabs.set(f.name, v)
  }
  return v
}
const vocabs = new Map<string, string[]>()

describe('intervention strings', () => {
  it('are tokenised as the predecessor did: specials kept, cut from the left, left-padded with 0', () => {
    const f = fixture('demo')
    const tok = { encode: (t: string) => f.group.tokenize(t) }
    const bos = f.group.tokenize('cat').ids[0]!
    const cat = f.group.tokenizer.tokenToId('cat')!
    expect(interventionTokens(tok, 'cat', 4)).toEqual({
      ids: [0, 0, bos, cat],
      truncated: 0,
      padded: 2
    })
    const long = interventionTokens(tok, 'the cat sat on the red chair', 4)
    expect(long.truncated).toBe(4)
    expect(long.padded).toBe(0)
    expect(long.ids).toEqual(f.group.tokenize('the cat sat on the red chair').ids.slice(-4))
  })

  it('refuses positions outside the text and a prediction position before the intervention', async () => {
    const f = fixture('demo')
    const base = { lensId: 'words-l1', text: 'The cat sat.' }
    await expect(
      f.group.intervene({ ...base, intervention: { positions: [1, 40], strings: ['cat'] } })
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'intervention.positions.1' })
    await expect(
      f.group.intervene({
        ...base,
        intervention: { positions: [3], strings: ['cat'], nextPosition: 2 }
      })
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'intervention.nextPosition' })
    await expect(
      f.group.intervene({ ...base, intervention: { positions: [1], strings: [] } })
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'intervention.strings' })
  })

  it('streams one batch of rows per position, position-major, and stops when cancelled', async () => {
    const f = fixture('demo')
    const seen: InterventionRow[][] = []
    let cancel = false
    const r = await f.group.intervene(
      {
        lensId: 'words-l1',
        text: f.text,
        intervention: { positions: [2, 5, 7], strings: ['cat', 'lion'], maxNewTokens: 2 }
      },
      {
        onRows: (rows) => {
          seen.push(rows)
          cancel = true
        },
        isCancelled: () => cancel
      }
    )
    expect(r.metadata.status).toBe('cancelled')
    expect(seen).toHaveLength(1)
    expect(r.rows.map((x) => [x.index, x.interventionPosition, x.interventionText])).toEqual([
      [0, 2, 'cat'],
      [1, 2, 'lion']
    ])
  })
})

describe.each(['demo', 'synthetic'])('layer sweep (%s)', (name) => {
  it('a row at a lens layer is that lens analysis row; the rest against the reference', async () => {
    const f = fixture(name)
    const options = { bestOfK: 3, seed: 11, logitLens: true }
    const position = 5
    const lensId = f.lenses[0]!
    const sweep = await f.group.sweep({ lensId, text: f.text, options, sweep: { position } })
    expect(sweep.rows.map((r) => r.layer)).toEqual([0, 1, 2, 3])
    const { ids } = f.group.tokenize(f.text)
    const d = f.weights.dims.hiddenSize
    for (const row of sweep.rows) {
      const layer = row.layer!
      const trained = f.lenses.find((id) => f.encoders.get(id)!.layer === layer)
      expect(row.lensId).toBe(trained ?? lensId)
      expect(row.trainedAtLayer).toBe(trained !== undefined)
      expect(row.lensLayer).toBe(f.encoders.get(row.lensId!)!.layer)
      if (trained) {
        const single = await f.group.analyze({
          lensId: trained,
          text: f.text,
          options,
          positionList: [position]
        })
        const { layer: _l, lensId: _i, lensLayer: _y, trainedAtLayer: _t, ...plain } = row
        expect(plain).toEqual(single.rows[0])
        const whole = await f.group.analyze({ lensId: trained, text: f.text, options })
        const wholeRow = whole.rows[position]!
        expect({ ...plain, klDivergence: 0 }).toEqual({ ...wholeRow, klDivergence: 0 })
        relClose(plain.klDivergence!, wholeRow.klDivergence!, KL_ROUNDING.rel, KL_ROUNDING.abs)
      }
      const enc = f.encoders.get(row.lensId!)!
      const a = activationsRef(f.weights, ids, layer).slice(position * d, (position + 1) * d)
      const aHat = encodeRef(
        f.weights,
        enc,
        explanationIds(f, row, lensT(f, row.lensId!)),
        ids[position]!
      )
      relClose(row.mse, mseRef(a, aHat), 1e-4)
      const p = patchedLogProbsRef(f.weights, ids, layer, position, a, position)
      const q = patchedLogProbsRef(f.weights, ids, layer, position, aHat, position)
      relClose(row.klDivergence!, klRef(p, q), 1e-4, 1e-6)
    }
  })

  it('fixed: the chosen lens at every layer; listed layers only, in order', async () => {
    const f = fixture(name)
    const lensId = f.lenses[1]!
    const sweep = await f.group.sweep({
      lensId,
      text: f.text,
      options: { bestOfK: 2, kl: false, salience: false },
      sweep: { position: 2, layers: [3, 0, 3], lenses: 'fixed' }
    })
    expect(sweep.rows.map((r) => [r.layer, r.lensId])).toEqual([
      [0, lensId],
      [3, lensId]
    ])
    const own = f.encoders.get(lensId)!.layer
    expect(sweep.rows.map((r) => r.trainedAtLayer)).toEqual([own === 0, own === 3])
    await expect(
      f.group.sweep({ lensId, text: f.text, sweep: { position: 2, layers: [9] } })
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'sweep.layers.0' })
    await expect(
      f.group.sweep({ lensId, text: f.text, sweep: { position: 500 } })
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'sweep.position' })
  })
})

describe('lensForLayer', () => {
  const lenses = [
    { id: 'a1', layer: 1, orig: 'base' },
    { id: 'b1', layer: 1, orig: 'donor' },
    { id: 'a3', layer: 3, orig: 'base' }
  ]
  it.each([
    ['trained', 1, 'a1'],
    ['trained', 3, 'a3'],
    ['trained', 0, 'a1'],
    ['fixed', 3, 'a1']
  ] as const)('%s at layer %i → %s', (mode, layer, want) => {
    expect(lensForLayer(lenses, lenses[0]!, layer, mode)).toBe(want)
  })
  it('never picks a lens of another orig model', () => {
    expect(lensForLayer(lenses, { id: 'x', layer: 2, orig: 'donor' }, 3, 'trained')).toBe('x')
    expect(lensForLayer(lenses, { id: 'x', layer: 2, orig: 'donor' }, 1, 'trained')).toBe('b1')
  })
})

describe.each(['demo', 'synthetic'])('iterative optimiser (%s)', (name) => {
  it('starts from the best-of-N row exactly, never ends worse, and matches the reference', async () => {
    const f = fixture(name)
    const lensId = f.lenses[1]!
    const common = { seed: 2, temperature: 1.3, salience: true, kl: false }
    const progress: OptimiserProgress[] = []
    const opt = await f.group.analyze(
      { lensId, text: f.text, options: { ...common, optimise: { samplesPerIteration: 4 } } },
      { onOptimiser: (p) => progress.push(p) }
    )
    const best = await f.group.analyze({ lensId, text: f.text, options: { ...common, bestOfK: 4 } })
    const T = lensT(f, lensId)
    const enc = f.encoders.get(lensId)!
    const { ids } = f.group.tokenize(f.text)
    const d = f.weights.dims.hiddenSize
    const A = activationsRef(f.weights, ids, enc.layer)
    let better = 0
    opt.rows.forEach((row, i) => {
      expect(row.mseBefore).toBe(best.rows[i]!.mse)
      expect(row.mse).toBeLessThanOrEqual(row.mseBefore!)
      expect(row.rollouts).toBeGreaterThanOrEqual(4)
      if (row.mse < row.mseBefore! * 0.999) better++
      const aHat = encodeRef(f.weights, enc, explanationIds(f, row, T), ids[row.position]!)
      relClose(row.mse, mseRef(A.slice(row.position * d, (row.position + 1) * d), aHat), 1e-4)
    })
    expect(better).toBeGreaterThan(0)
    expect(progress.length).toBeGreaterThan(0)
    expect(progress.every((p) => p.steps === T + 3 && p.step >= 1 && p.step <= p.steps)).toBe(true)
    expect(progress.at(-1)!.step).toBe(T + 3)

    // Whatever the batching: the same rows.
    const single = await f.group.analyze({
      lensId,
      text: f.text,
      options: { ...common, optimise: { samplesPerIteration: 4 }, rowsPerBatch: 4 }
    })
    expect(single.metadata.options.positionsPerBatch).toBe(1)
    expect(single.rows).toEqual(opt.rows)
  })
})
