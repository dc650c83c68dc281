/**
 * A seeded, bounded fuzz of the bundle format (docs/bundle-format.md): each case is the demo group,
 * or a small synthetic group whose base and donor keep their weights in ONNX external data, with
 * one generated mutation (a manifest or lens.json field set to an odd value or dropped, a
 * tensor or graph file cut short, bytes of a graph flipped, a weight set to NaN or infinity, a
 * tokenizer replaced). Validation with every weight read, what `inspect` runs, must either accept
 * the bundle or refuse it with a bad-input error (CLI exit 3) naming a file; a bundle it accepts is
 * then loaded and analysed, which must succeed or fail the same way. Never a hang, never a raw ONNX
 * Runtime error. The seed is printed with a failure, so a case replays (TALKATIVE_FUZZ_SEED;
 * TALKATIVE_FUZZ_CASES runs more cases, TALKATIVE_FUZZ_TRACE prints each case).
 */
import { cp, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppError } from '@shared/ipc/errors'
import { ensureDemoBundle, inspectBundle, loadGroup } from '../index'
import { generateSyntheticBundle, syntheticText } from '../synthetic'

const SEED = Number(process.env.TALKATIVE_FUZZ_SEED ?? 20261130)
const CASES = Number(process.env.TALKATIVE_FUZZ_CASES ?? 30)
const CASE_LIMIT_MS = 10_000

/** mulberry32: a small, well-mixed seeded generator (tests need replay, not cryptography). */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)]!
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** Every path to a leaf of a JSON value, as keys. */
function leaves(value: Json, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...at, i]))
  if (value && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => leaves(v, [...at, k]))
  return [at]
}

function setAt(root: Json, at: (string | number)[], next: Json | undefined): void {
  let node = root as Record<string | number, Json>
  for (const key of at.slice(0, -1)) node = node[key] as Record<string | number, Json>
  const last = at[at.length - 1]!
  if (next === undefined) delete node[last]
  else node[last] = next
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort()
}

const ODD_VALUES: (Json | undefined)[] = [
  0,
  -1,
  5,
  1.5,
  2 ** 30,
  1e308,
  'x',
  '',
  null,
  true,
  [],
  undefined
]
const TOKENIZERS = [
  '{"model": 5}',
  '{}',
  '[]',
  '{',
  '{"model":{"type":"WordLevel","vocab":{"a":99999}}}'
]

/** Applies one generated mutation to the bundle in `dir`; returns what it did. */
async function mutate(rand: () => number, dir: string): Promise<string> {
  const files = await filesUnder(dir)
  const rel = (f: string): string => path.relative(dir, f)
  const kind = pick(rand, ['manifest', 'lens', 'truncate', 'flip', 'poison', 'tokenizer'] as const)
  if (kind === 'manifest' || kind === 'lens') {
    const jsons = files.filter((f) =>
      kind === 'manifest' ? rel(f) === 'manifest.json' : f.endsWith('lens.json')
    )
    const file = pick(rand, jsons)
    const json = JSON.parse(await readFile(file, 'utf8')) as Json
    const at = pick(rand, leaves(json))
    const old = at.reduce<Json>((n, k) => (n as Record<string | number, Json>)[k]!, json)
    const next = pick(rand, [...ODD_VALUES, typeof old === 'number' ? old + 1 : 'y'])
    setAt(json, at, next)
    await writeFile(file, JSON.stringify(json))
    return `${rel(file)}: ${at.join('.')} = ${JSON.stringify(next) ?? '(dropped)'}`
  }
  if (kind === 'truncate') {
    const file = pick(rand, files)
    const size = (await readFile(file)).byteLength
    const to = Math.floor(rand() * size)
    await truncate(file, to)
    return `${rel(file)}: cut to ${to} of ${size} bytes`
  }
  if (kind === 'flip') {
    const file = pick(
      rand,
      files.filter((f) => f.endsWith('.onnx'))
    )
    const bytes = await readFile(file)
    const at = Math.floor(rand() * bytes.byteLength)
    bytes[at] = bytes[at]! ^ (1 + Math.floor(rand() * 255))
    await writeFile(file, bytes)
    return `${rel(file)}: byte ${at} flipped`
  }
  if (kind === 'poison') {
    // A float32 weight file (a lens tensor, or a graph's external data when it has one).
    const file = pick(
      rand,
      files.filter((f) => /\.(f32|bin|data)$/.test(f))
    )
    const bytes = await readFile(file)
    const at = Math.floor((rand() * bytes.byteLength) / 4) * 4
    const value = pick(rand, [NaN, Infinity, -Infinity])
    bytes.writeFloatLE(value, at)
    await writeFile(file, bytes)
    return `${rel(file)}: value ${at / 4} = ${value}`
  }
  const text = pick(rand, TOKENIZERS)
  await writeFile(path.join(dir, 'tokenizer.json'), text)
  return `tokenizer.json = ${text}`
}

/** What a case's outcome says is wrong: null for success or a bad-input error naming a file. */
function judge(outcome: unknown): string | null {
  if (outcome === 'ok') return null
  if (outcome === 'hang') return `no answer in ${CASE_LIMIT_MS} ms`
  const err = outcome
  const badInput =
    err instanceof AppError &&
    (err.code === 'bundle_invalid' || err.code === 'not_found' || err.code === 'invalid_input')
  if (!badInput || !err.file) return String(err)
  if (/onnxruntime|\[ONNXRuntimeError\]|Ort::/i.test(err.message))
    return `raw engine error: ${err.message}`
  return null
}

async function withinLimit(work: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<'hang'>((resolve) => {
    timer = setTimeout(() => resolve('hang'), CASE_LIMIT_MS)
  })
  const outcome = await Promise.race([
    work.then(
      () => 'ok' as const,
      (err: unknown) => err
    ),
    hang
  ])
  clearTimeout(timer)
  return outcome
}

/** Loads the group on the CPU and analyses `text` with its first lens, as `analyze` does. */
async function analyzeOnce(dir: string, text: string): Promise<void> {
  const group = await loadGroup(dir, { provider: 'cpu', threads: 1 })
  try {
    const lens = group.summary.lenses[0]
    if (!lens) return
    await group.analyze({
      lensId: lens.id,
      text,
      options: { bestOfK: 1, salience: false, kl: true }
    })
  } finally {
    await group.dispose()
  }
}

describe(`bundle fuzz (seed ${SEED})`, () => {
  let root: string
  /** The unmutated groups a case starts from, each with a text its tokenizer reads. */
  const bases: { dir: string; text: string }[] = []

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'talkative-bundle-fuzz-'))
    bases.push({
      dir: await ensureDemoBundle(path.join(root, 'cache')),
      text: 'the cat sat on the mat'
    })
    const vocabSize = 40
    bases.push({
      dir: await generateSyntheticBundle(path.join(root, 'synthetic'), {
        hiddenSize: 16,
        layers: 2,
        heads: 2,
        vocabSize,
        explanationTokens: 4,
        patchLayers: 1,
        donor: true,
        externalData: true
      }),
      text: syntheticText(6, vocabSize)
    })
  })
  afterAll(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it(
    `${CASES} mutated bundles: accepted, or refused naming a file; never a hang or a raw engine error`,
    async () => {
      const rand = seeded(SEED)
      const failures: string[] = []
      let accepted = 0
      for (let i = 0; i < CASES; i++) {
        const dir = path.join(root, `case-${i}`)
        const base = pick(rand, bases)
        await cp(base.dir, dir, { recursive: true })
        const what = await mutate(rand, dir)
        if (process.env.TALKATIVE_FUZZ_TRACE)
          console.log(`case ${i} (${path.basename(base.dir)}): ${what}`)
        const outcome = await withinLimit(inspectBundle(dir))
        const failure = judge(outcome)
        if (failure) failures.push(`${what}: inspect: ${failure}`)
        if (outcome === 'ok') {
          accepted += 1
          const ran = await withinLimit(analyzeOnce(dir, base.text))
          const analyzeFailure = judge(ran)
          if (analyzeFailure) failures.push(`${what}: analyze: ${analyzeFailure}`)
        }
        await rm(dir, { recursive: true, force: true })
      }
      expect(failures, `seed ${SEED}`).toEqual([])
      console.log(`bundle fuzz (seed ${SEED}): ${accepted} of ${CASES} cases accepted and analysed`)
      // Each case is bounded by CASE_LIMIT_MS; most take well under a second.
    },
    60_000 + CASES * 3_000
  )
})
