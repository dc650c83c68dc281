import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Session, Tensor } from '../ort'
import { GraphBuilder, encodeModel } from '../graph/builder'
import {
  buildSampler,
  buildSharedSampler,
  dividedLogits,
  referenceSample,
  referenceTwoLevel,
  vocabularyBlock
} from './sampler'
import { generationUniforms, uniformAt } from './uniforms'

/**
 * The sampler alone as a model: logits, uniforms, temperature, top_p → ids. `decodeForm`: as the
 * decode role builds it (no nucleus; top_p is fed but unread). V is fixed when the graph is built.
 */
function samplerModel(vocab: number, decodeForm: boolean): Uint8Array {
  const g = new GraphBuilder()
  const logits = g.input('logits', 'float32', ['B', vocab])
  const uniforms = g.input('uniforms', 'float32', ['B'])
  const temperature = g.input('temperature', 'float32', [])
  const topP = g.input('top_p', 'float32', [])
  const ids = buildSampler(g, {
    logits: dividedLogits(logits),
    vocab,
    uniforms,
    temperature,
    topP: decodeForm ? null : topP
  })
  if (decodeForm) g.opTo('Identity', [topP], ['unused_top_p'])
  if (decodeForm) g.output('unused_top_p', 'float32', [])
  g.opTo('Identity', [ids], ['ids'])
  g.output('ids', 'int64', ['B'])
  return encodeModel(g.toGraph('sampler'), 'sampler-test')
}

const sessions = new Map<string, Promise<Session>>()
/** The sampler's session for `vocab`, built once per form. */
function samplerSession(vocab: number, decodeForm: boolean): Promise<Session> {
  const key = `${vocab}:${decodeForm}`
  let s = sessions.get(key)
  if (!s) {
    s = Session.create(samplerModel(vocab, decodeForm), { provider: 'cpu', threads: 1 })
    sessions.set(key, s)
  }
  return s
}
afterAll(async () => {
  for (const s of sessions.values()) await (await s).release()
})

async function sample(
  logits: Float32Array,
  rows: number,
  uniforms: Float32Array,
  temperature: number,
  topP: number,
  decodeForm = false
): Promise<number[]> {
  const vocab = logits.length / rows
  const on = await samplerSession(vocab, decodeForm)
  const out = await on.run({
    logits: new Tensor('float32', logits, [rows, vocab]),
    uniforms: new Tensor('float32', uniforms, [rows]),
    temperature: new Tensor('float32', Float32Array.from([temperature]), []),
    top_p: new Tensor('float32', Float32Array.from([topP]), [])
  })
  return Array.from(out.ids!.data as BigInt64Array, Number)
}

/** Deterministic pseudo-random logits with a spread like a language model's. */
function randomLogits(rows: number, vocab: number, salt: number): Float32Array {
  return Float32Array.from({ length: rows * vocab }, (_, i) => (uniformAt(salt, i, 0) - 0.5) * 8)
}

/** Distance of u·mass from the nearest cumulative boundary: near one, float rounding may flip the pick. */
function boundaryMargin(
  logits: Float32Array,
  u: number,
  temperature: number,
  topP: number
): number {
  const scaled = Array.from(logits, (v) => v / temperature)
  const max = Math.max(...scaled)
  const e = scaled.map((v) => Math.exp(v - max))
  const s = e.reduce((a, b) => a + b, 0)
  const p = e.map((x) => x / s)
  const order = p.map((_, i) => i)
  if (topP < 1) order.sort((a, b) => p[b]! - p[a]! || a - b)
  const kept: number[] = []
  let mass = 0
  for (const i of order) {
    if (topP < 1 && mass >= topP) break
    kept.push(i)
    mass += p[i]!
  }
  let c = 0
  let margin = Infinity
  for (const i of kept) {
    c += p[i]!
    margin = Math.min(margin, Math.abs(c - u * mass))
  }
  return topP < 1 ? Math.min(margin, Math.abs(mass - topP)) : margin
}

describe('in-graph sampler', () => {
  const rows = 64
  const vocab = 50

  it('is argmax at temperature 0', async () => {
    const logits = randomLogits(rows, vocab, 1)
    const ids = await sample(logits, rows, generationUniforms(3, rows, 1), 0, 0.9)
    ids.forEach((id, r) => {
      const row = logits.subarray(r * vocab, (r + 1) * vocab)
      expect(id).toBe(row.indexOf(Math.max(...row)))
    })
  })

  for (const [temperature, topP] of [
    [1, 1],
    [0.7, 1],
    [1, 0.9],
    [1.3, 0.5]
  ] as const) {
    it(`matches the host reference at T=${temperature}, top_p=${topP}`, async () => {
      const logits = randomLogits(rows, vocab, 7)
      const u = generationUniforms(11, rows, 1)
      const ids = await sample(logits, rows, u, temperature, topP)
      let compared = 0
      ids.forEach((id, r) => {
        const row = logits.subarray(r * vocab, (r + 1) * vocab)
        if (boundaryMargin(row, u[r]!, temperature, topP) < 1e-5) return
        expect(id).toBe(referenceSample(row, u[r]!, temperature, topP))
        compared++
      })
      expect(compared).toBeGreaterThan(rows * 0.9)
    })
  }

  it('never leaves the nucleus', async () => {
    // One row, many uniforms: every pick must be among the tokens holding the top 30% of the mass.
    const one = randomLogits(1, vocab, 5)
    const logits = new Float32Array(rows * vocab)
    for (let r = 0; r < rows; r++) logits.set(one, r * vocab)
    const ids = await sample(logits, rows, generationUniforms(9, rows, 1), 1, 0.3)
    const e = Array.from(one, (v) => Math.exp(v))
    const s = e.reduce((a, b) => a + b, 0)
    const order = e.map((_, i) => i).sort((a, b) => e[b]! - e[a]!)
    const nucleus = new Set<number>()
    let mass = 0
    for (const i of order) {
      if (mass >= 0.3) break
      nucleus.add(i)
      mass += e[i]! / s
    }
    expect(nucleus.size).toBeGreaterThan(1)
    for (const id of ids) expect(nucleus.has(id)).toBe(true)
    // And it does sample: more than one distinct token over 64 draws.
    expect(new Set(ids).size).toBeGreaterThan(1)
  })

  it('follows the distribution (inverse CDF is monotone in u)', async () => {
    const one = Float32Array.from([0, Math.log(3), Math.log(6)]) // p = 0.1, 0.3, 0.6
    const us = Float32Array.from([0, 0.05, 0.099, 0.101, 0.39, 0.41, 0.99])
    const logits = new Float32Array(us.length * 3)
    for (let r = 0; r < us.length; r++) logits.set(one, r * 3)
    expect(await sample(logits, us.length, us, 1, 1)).toEqual([0, 0, 0, 1, 1, 2, 2])
    // With top_p 0.6 only the most likely token is left; 0.61 keeps the top two (0.6 + 0.3).
    expect(await sample(logits, us.length, us, 1, 0.6)).toEqual([2, 2, 2, 2, 2, 2, 2])
    expect(new Set(await sample(logits, us.length, us, 1, 0.61))).toEqual(new Set([1, 2]))
  })

  describe('boundary rule: a zero-probability token is never drawn, for u at its extremes', () => {
    // Largest float32 below 1, the stream's smallest uniform (2^-25), and both ends themselves.
    const extremes = [0, 2 ** -25, 1e-30, 0.5, 1 - 2 ** -24, 1]
    const V = 12
    // Tokens 0, 5 and V−1 suppressed by a −1e9 logit bias (probability exactly 0 after softmax).
    const suppressed = new Set([0, 5, V - 1])
    const row = Float32Array.from({ length: V }, (_, i) =>
      suppressed.has(i) ? -1e9 : (i % 4) * 0.7
    )
    const logits = new Float32Array(extremes.length * V)
    for (let r = 0; r < extremes.length; r++) logits.set(row, r * V)
    const us = Float32Array.from(extremes)

    it('decode form (no nucleus) and generate form (top_p = 1) agree and skip the zeros', async () => {
      const decodeIds = await sample(logits, extremes.length, us, 1, 1, true)
      const generateIds = await sample(logits, extremes.length, us, 1, 1)
      expect(decodeIds).toEqual(generateIds)
      for (const id of decodeIds) expect(suppressed.has(id)).toBe(false)
      // u = 0 and u → 0 draw the first token with mass, u = 1 the last one.
      expect(decodeIds[0]).toBe(1)
      expect(decodeIds[1]).toBe(1)
      expect(decodeIds[extremes.length - 1]).toBe(V - 2)
      extremes.forEach((u, r) => expect(decodeIds[r]).toBe(referenceSample(row, u, 1, 1)))
    })

    it('outside the nucleus counts as zero: top_p draws stay inside it at both ends', async () => {
      // p ∝ e^(0.7·(i mod 4)): tokens 3 and 7 hold 0.47 of the mass, so top_p 0.45 keeps just them.
      const nucleus = new Set([3, 7])
      const ids = await sample(logits, extremes.length, us, 1, 0.45)
      for (const id of ids) expect(nucleus.has(id)).toBe(true)
      extremes.forEach((u, r) => expect(ids[r]).toBe(referenceSample(row, u, 1, 0.45)))
    })

    it('holds at every temperature, including ones that underflow all but one token', async () => {
      for (const t of [0.01, 0.3, 2, 5]) {
        const ids = await sample(logits, extremes.length, us, t, 1, true)
        for (const id of ids) expect(suppressed.has(id)).toBe(false)
      }
    })
  })
})

/**
 * The sampler as it was before it searched the CDF in blocks and ran only the selected branch:
 * argmax always computed, softmax(logits / max(T, 1e-6)), the CDF along each row, and the count
 * of its entries below max(u·total, MIN_TARGET) over the whole vocabulary, cast to int64.
 */
function wholeVocabularyModel(): Uint8Array {
  const g = new GraphBuilder()
  const logits = g.input('logits', 'float32', ['B', 'V'])
  const uniforms = g.input('uniforms', 'float32', ['B'])
  const temperature = g.input('temperature', 'float32', [])
  const greedy = g.op('ArgMax', [logits], { axis: -1, keepdims: 0 })
  const safeT = g.op('Max', [temperature, g.scalarF32(1e-6)])
  const probs = g.op('Softmax', [g.op('Div', [logits, safeT])], { axis: -1 })
  const cumulative = g.op('CumSum', [probs, g.scalarI64(1)])
  const vocab = g.op('Shape', [probs], { start: 1, end: 2 })
  const last = g.op('Sub', [vocab, g.constI64([1])])
  const total = g.op('Gather', [cumulative, last], { axis: 1 })
  const u = g.op('Unsqueeze', [uniforms, g.constI64([1])])
  const floor = g.op('Max', [g.op('Mul', [u, total]), g.scalarF32(1.1754943508222875e-38)])
  const below = g.op('Cast', [g.op('Less', [cumulative, floor])], { to: 7 })
  const count = g.op('ReduceSum', [below, g.constI64([1])], { keepdims: 1 })
  const sampled = g.op('Squeeze', [g.op('Min', [count, last]), g.constI64([1])])
  const isGreedy = g.op('Equal', [temperature, g.scalarF32(0)])
  g.opTo('Where', [isGreedy, greedy, sampled], ['ids'])
  g.output('ids', 'int64', ['B'])
  // The CDF as well, so a test can aim u·total at its exact entries.
  g.opTo('Identity', [cumulative], ['cdf'])
  g.output('cdf', 'float32', ['B', 'V'])
  return encodeModel(g.toGraph('whole_vocabulary'), 'sampler-test')
}

/** Neighbouring float32 values of x (x > 0): one ulp below and above. */
function neighbours(x: number): [number, number] {
  const bits = new Uint32Array(Float32Array.from([x]).buffer)
  const below = new Float32Array(new Uint32Array([bits[0]! - 1]).buffer)[0]!
  const above = new Float32Array(new Uint32Array([bits[0]! + 1]).buffer)[0]!
  return [below, above]
}

/** A float32 u with fl(u·total) = target exactly, or null when none is near target / total. */
function aimAt(target: number, total: number): number | null {
  let u = Math.fround(target / total)
  for (let i = 0; i < 8 && u <= 1; i++) {
    const hit = Math.fround(u * total)
    if (hit === target) return u
    u = hit < target ? neighbours(u)[1] : neighbours(u)[0]
  }
  return null
}

describe('the block search picks the ids of the whole-vocabulary count', () => {
  let whole: Session
  beforeAll(async () => {
    whole = await Session.create(wholeVocabularyModel(), { provider: 'cpu', threads: 1 })
  })
  afterAll(async () => {
    await whole.release()
  })

  async function both(
    logits: Float32Array,
    rows: number,
    us: Float32Array,
    temperature: number
  ): Promise<{ now: number[]; before: number[]; cdf: Float32Array }> {
    const vocab = logits.length / rows
    const out = await whole.run({
      logits: new Tensor('float32', logits, [rows, vocab]),
      uniforms: new Tensor('float32', us, [rows]),
      temperature: new Tensor('float32', Float32Array.from([temperature]), [])
    })
    return {
      now: await sample(logits, rows, us, temperature, 1, true),
      before: Array.from(out.ids!.data as BigInt64Array, Number),
      cdf: out.cdf!.data as Float32Array
    }
  }

  // Vocabulary sizes around squares and block edges (the window's clamp at the tail), tiny ones,
  // and a prime one of real width: none has the divisors the two-level draw needs.
  for (const vocab of [1, 2, 3, 4, 5, 15, 16, 17, 50, 255, 257, 4099, 131_071]) {
    it(`V = ${vocab} is drawn from the whole-vocabulary CDF`, () => {
      expect(vocabularyBlock(vocab)).toBeNull()
    })
    it(`V = ${vocab}: random rows, u on, just below and just above CDF entries`, async () => {
      const rows = vocab >= 100_000 ? 8 : 48
      const logits = randomLogits(rows, vocab, vocab)
      // Zero-probability tokens at the start, middle and end of some rows.
      for (let r = 0; r < rows; r += 3) {
        for (const i of [0, vocab >> 1, vocab - 1]) logits[r * vocab + i] = -1e9
      }
      for (const temperature of [1, 0.7, 2.5]) {
        const random = generationUniforms(vocab + 13, rows, 1)
        const first = await both(logits, rows, random, temperature)
        expect(first.now).toEqual(first.before)
        // Aim each row's target at an entry of its own CDF, and at the floats either side of it;
        // on the entry itself the rule picks the first index whose CDF reaches it.
        const aimed: number[][] = [[], [], []]
        const firstReaching: (number | null)[] = []
        for (let r = 0; r < rows; r++) {
          const cdf = first.cdf.subarray(r * vocab, (r + 1) * vocab)
          const total = cdf[vocab - 1]!
          const k = Math.floor(uniformAt(vocab, r, 7) * vocab)
          const entry = cdf[k]! > 0 ? cdf[k]! : total
          const [down, up] = neighbours(entry)
          const us = [entry, down, up].map((target) => aimAt(target, total))
          us.forEach((u, j) => aimed[j]!.push(u ?? 1))
          firstReaching.push(us[0] === null ? null : cdf.findIndex((c) => c >= entry))
        }
        const hits = firstReaching.filter((i) => i !== null).length
        expect(hits).toBeGreaterThan(rows * 0.7)
        for (const [j, us] of aimed.entries()) {
          const at = await both(logits, rows, Float32Array.from(us), temperature)
          expect(at.now).toEqual(at.before)
          if (j === 0) {
            firstReaching.forEach((i, r) => {
              if (i !== null) expect(at.now[r]).toBe(i)
            })
          }
        }
      }
    })
  }

  it('agrees at u = 0, 2^-25, 1 − 2^-24 and 1, at T = 0, and on a row with a NaN logit', async () => {
    const vocab = 300
    const us = Float32Array.from([0, 2 ** -25, 1 - 2 ** -24, 1, 0.5, 0.25])
    const rows = us.length
    const logits = randomLogits(rows, vocab, 3)
    logits[4 * vocab + 17] = Number.NaN
    for (const temperature of [0, 1, 0.3]) {
      const { now, before } = await both(logits, rows, us, temperature)
      expect(now).toEqual(before)
    }
  })
})

/** The decode role's first draw as a model: (S, V) logits, (B,) index and uniforms → ids. */
function sharedSamplerModel(vocab: number): Uint8Array {
  const g = new GraphBuilder()
  const logits = g.input('logits', 'float32', ['S', vocab])
  const index = g.input('index', 'int64', ['B'])
  const uniforms = g.input('uniforms', 'float32', ['B'])
  const temperature = g.input('temperature', 'float32', [])
  g.opTo(
    'Identity',
    [buildSharedSampler(g, { logits, index, uniforms, temperature, vocab })],
    ['ids']
  )
  g.output('ids', 'int64', ['B'])
  return encodeModel(g.toGraph('shared_sampler'), 'sampler-test')
}

describe("rows sharing their source's logits draw what the gathered rows draw", () => {
  let whole: Session
  beforeAll(async () => {
    whole = await Session.create(wholeVocabularyModel(), { provider: 'cpu', threads: 1 })
  })
  afterAll(async () => {
    await whole.release()
  })

  // The whole-vocabulary draw (1 … 4099) and the two-level one (256, 592, 4096).
  for (const vocab of [1, 5, 17, 257, 4099, 256, 592, 4096]) {
    it(`V = ${vocab}: u random, at 0 and 1, on and either side of CDF entries, T = 0, 1, 0.7`, async () => {
      const shared = await Session.create(sharedSamplerModel(vocab), {
        provider: 'cpu',
        threads: 1
      })
      const sources = 6
      const rows = 40
      const logits = randomLogits(sources, vocab, vocab + 1)
      for (const i of [0, vocab >> 1, vocab - 1]) logits[2 * vocab + i] = -1e9
      // A whole block of zero probability in one source, where the draw has blocks.
      const block = vocabularyBlock(vocab)
      if (block) logits.fill(-Infinity, 3 * vocab, 3 * vocab + block)
      // Rows in no particular order, every source used, one source twice as often.
      const index = Array.from({ length: rows }, (_, r) => (r * 7 + (r % 3)) % sources)
      const gathered = new Float32Array(rows * vocab)
      index.forEach((s, r) => gathered.set(logits.subarray(s * vocab, (s + 1) * vocab), r * vocab))
      const drawShared = async (us: Float32Array, temperature: number): Promise<number[]> => {
        const out = await shared.run({
          logits: new Tensor('float32', logits, [sources, vocab]),
          index: new Tensor('int64', BigInt64Array.from(index, BigInt), [rows]),
          uniforms: new Tensor('float32', us, [rows]),
          temperature: new Tensor('float32', Float32Array.from([temperature]), [])
        })
        return Array.from(out.ids!.data as BigInt64Array, Number)
      }
      for (const temperature of [0, 1, 0.7]) {
        const random = generationUniforms(vocab + 5, rows, 1)
        random[0] = 0
        random[1] = 1
        random[2] = 2 ** -25
        const cdfOut = await whole.run({
          logits: new Tensor('float32', gathered, [rows, vocab]),
          uniforms: new Tensor('float32', random, [rows]),
          temperature: new Tensor('float32', Float32Array.from([temperature || 1]), [])
        })
        const cdf = cdfOut.cdf!.data as Float32Array
        const aimed: number[][] = [[], [], []]
        for (let r = 0; r < rows; r++) {
          const row = cdf.subarray(r * vocab, (r + 1) * vocab)
          const total = row[vocab - 1]!
          const k = Math.floor(uniformAt(vocab, r, 3) * vocab)
          const entry = row[k]! > 0 ? row[k]! : total
          const [down, up] = neighbours(entry)
          ;[entry, down, up].forEach((t, j) => aimed[j]!.push(aimAt(t, total) ?? 1))
        }
        for (const us of [random, ...aimed.map((a) => Float32Array.from(a))]) {
          const want = await sample(gathered, rows, us, temperature, 1, true)
          expect(await drawShared(us, temperature)).toEqual(want)
        }
      }
      await shared.release()
    })
  }
})

describe('the two-level draw (vocabularies with blocks) follows its host reference', () => {
  const f = Math.fround
  // Gemma-3's vocabulary (512 blocks of 512), GPT-2's (29 of 1,733), and small ones.
  for (const vocab of [256, 592, 1024, 50_257, 262_144]) {
    it(`V = ${vocab}: random u, u at 0, 2^-25, 1 − 2^-24 and 1, zero-probability tokens and blocks`, async () => {
      const block = vocabularyBlock(vocab)!
      expect(block).not.toBeNull()
      expect(vocab % block).toBe(0)
      const rows = vocab >= 50_000 ? 24 : 48
      const logits = randomLogits(rows, vocab, vocab + 2)
      const suppressed = (r: number, i: number): boolean =>
        (r % 3 === 0 && (i === 0 || i === vocab >> 1 || i === vocab - 1)) ||
        (r % 3 === 1 && (i < block || i >= vocab - block))
      for (let r = 0; r < rows; r++) {
        for (let i = 0; i < vocab; i++) {
          if (suppressed(r, i)) logits[r * vocab + i] = r % 2 ? -Infinity : -1e9
        }
      }
      const us = generationUniforms(vocab + 3, rows, 1)
      ;[0, 2 ** -25, 1 - 2 ** -24, 1, 0, 1].forEach((u, r) => (us[r] = u))
      for (const temperature of [0, 1, 0.7, 0.01]) {
        const ids = await sample(logits, rows, us, temperature, 1, true)
        expect(await sample(logits, rows, us, temperature, 1)).toEqual(ids)
        let compared = 0
        ids.forEach((id, r) => {
          const row = logits.subarray(r * vocab, (r + 1) * vocab)
          expect(suppressed(r, id)).toBe(false)
          if (temperature === 0) {
            expect(id).toBe(row.indexOf(row.reduce((a, b) => Math.max(a, b))))
            return
          }
          const t = f(temperature)
          const scaled = Array.from(row, (v) => (temperature === 1 ? v : f(v / t)))
          const want = referenceTwoLevel(scaled, us[r]!, block)
          if (want.margin < 1e-5) return
          expect(id).toBe(want.id)
          expect(referenceSample(row, us[r]!, temperature, 1)).toBe(want.id)
          compared++
        })
        // The six rows at u's extremes are near a boundary by design (u → 1 just below the total).
        if (temperature !== 0) expect(compared).toBeGreaterThan((rows - 6) * 0.75)
      }
      // Row by row: the last few rows alone draw what they drew among all of them (at V = 262,144
      // the block masses are summed 16 rows at a time, so they fall in another group there).
      const few = 5
      const from = rows - few
      const alone = await sample(
        logits.subarray(from * vocab),
        few,
        us.subarray(from),
        0.7,
        1,
        true
      )
      expect(alone).toEqual((await sample(logits, rows, us, 0.7, 1, true)).slice(from))
    })
  }
})
