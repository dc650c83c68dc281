import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  conversationText,
  DEFAULT_ROWS_PER_BATCH,
  ensureDemoBundle,
  loadGroup,
  type LoadedGroup
} from '../engine'
import { planPositions } from './plan'

// The plan must name exactly the rows the engine returns and batch them as the engine does:
// progress, ETA and data-parallel shares are computed from it.
let cache: string
let demo: LoadedGroup
let smallBatches: LoadedGroup
let lensId: string
const ROWS_IN_MANIFEST = 12

beforeAll(async () => {
  cache = await mkdtemp(join(tmpdir(), 'talkative-plan-'))
  const dir = await ensureDemoBundle(cache)
  // The same group whose manifest asks for small CPU batches.
  const copy = join(cache, 'small-batches')
  await cp(dir, copy, { recursive: true })
  const manifestFile = join(copy, 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
  manifest.rowsPerBatch = { cpu: ROWS_IN_MANIFEST }
  await writeFile(manifestFile, JSON.stringify(manifest))
  demo = await loadGroup(dir, { provider: 'cpu', threads: 1 })
  smallBatches = await loadGroup(copy, { provider: 'cpu', threads: 1 })
  lensId = demo.summary.lenses[0]!.id
}, 120_000)

afterAll(async () => {
  await demo?.dispose()
  await smallBatches?.dispose()
  await rm(cache, { recursive: true, force: true })
})

const fast = { bestOfK: 2, salience: false, kl: false }

describe('planPositions', () => {
  it('covers only the last messages when lastNMessages is set, as the engine does', async () => {
    const text = conversationText(demo, [
      { role: 'system', content: 'the dog is calm' },
      { role: 'user', content: 'the cat sat on the bed' },
      { role: 'assistant', content: 'the bird sang' },
      { role: 'user', content: 'a ship sailed to the island' }
    ])
    const all = demo.tokenize(text).ids.length
    for (const lastNMessages of [1, 2]) {
      const options = { ...fast, lastNMessages }
      const plan = planPositions(demo, text, options)
      const result = await demo.analyze({ lensId, text, options })
      expect(plan.positions).toEqual(result.rows.map((r) => r.position))
      expect(plan.positions.length).toBeLessThan(all)
      expect(plan.splittable).toBe(false)
    }
    // With a range as well: the range first, then the restriction.
    const ranged = planPositions(demo, text, {
      ...fast,
      lastNMessages: 2,
      positions: { start: 0, end: all - 3 }
    })
    const rangedRows = await demo.analyze({
      lensId,
      text,
      options: { ...fast, lastNMessages: 2, positions: { start: 0, end: all - 3 } }
    })
    expect(ranged.positions).toEqual(rangedRows.rows.map((r) => r.position))
  })

  it('plans every token, splittable, without lastNMessages', () => {
    const text = 'The cat sat on the red chair.'
    const plan = planPositions(demo, text, fast)
    expect(plan.positions).toEqual([...demo.tokenize(text).ids.keys()])
    expect(plan.splittable).toBe(true)
  })

  it("batches with the manifest's rows per batch, like the engine", async () => {
    expect(demo.autoRowsPerBatch).toBe(DEFAULT_ROWS_PER_BATCH.cpu)
    expect(smallBatches.autoRowsPerBatch).toBe(ROWS_IN_MANIFEST)
    const text = 'The cat sat on the red chair. A dog ran to the river in the morning.'
    const plan = planPositions(smallBatches, text, fast)
    expect(plan.positionsPerBatch).toBe(ROWS_IN_MANIFEST / fast.bestOfK)
    expect(planPositions(demo, text, fast).positionsPerBatch).toBe(
      DEFAULT_ROWS_PER_BATCH.cpu / fast.bestOfK
    )
    // A request's own budget wins.
    expect(planPositions(smallBatches, text, { ...fast, rowsPerBatch: 40 }).positionsPerBatch).toBe(
      20
    )
    const batches: number[] = []
    await smallBatches.analyze(
      { lensId, text, options: fast },
      { onBatch: (rows) => batches.push(rows.length) }
    )
    expect(batches.length).toBeGreaterThan(2)
    expect(batches.slice(0, -1).every((n) => n === plan.positionsPerBatch)).toBe(true)
  })
})
