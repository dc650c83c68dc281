import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AppError } from '@shared/ipc/errors'
import { generateSyntheticBundle, loadGroup, type LoadedGroup } from '../index'

let dir: string
let group: LoadedGroup
const PROMPT = 'w1 w2 w3 w4 w5'

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'talkative-gen-'))
  await generateSyntheticBundle(dir, {
    hiddenSize: 32,
    layers: 3,
    heads: 4,
    vocabSize: 48,
    explanationTokens: 4,
    patchLayers: 1,
    maxPositions: 64,
    donor: true,
    externalData: false
  })
  group = await loadGroup(dir, { provider: 'cpu', threads: 1 })
})

afterAll(async () => {
  await group?.dispose()
  rmSync(dir, { recursive: true, force: true })
})

const baseLens = (): string =>
  group.summary.lenses.find((l) => l.origModel === group.summary.baseModel.id)!.id
const donorLens = (): string => group.summary.lenses.find((l) => l.origModel === 'donor')!.id

async function appError(p: Promise<unknown>): Promise<AppError> {
  try {
    await p
  } catch (err) {
    if (err instanceof AppError) return err
    throw err
  }
  throw new Error('expected an AppError')
}

describe('generation in the base graph', () => {
  it('keeps the KV cache right: a greedy run equals one-token runs on the growing text', async () => {
    const steps = 8
    const whole = await group.generate({
      lensId: baseLens(),
      text: PROMPT,
      options: { temperature: 0, maxNewTokens: steps }
    })
    const ids = [...whole.promptIds]
    // Each one-token run is a fresh prefill over the text so far: no cache involved. The word-level
    // tokenizer round-trips its own words, so the text can carry the ids.
    let text = PROMPT
    for (let i = 0; i < steps; i++) {
      const one = await group.generate({
        lensId: baseLens(),
        text,
        options: { temperature: 0, maxNewTokens: 1 }
      })
      ids.push(one.completions[0]!.tokenIds[0]!)
      text = `${text} ${one.completions[0]!.text}`
    }
    expect(whole.completions[0]!.tokenIds).toEqual(ids.slice(whole.promptIds.length))
  })

  it('is reproducible: same seed, same completions; completion i does not depend on n', async () => {
    // Random weights give peaked next-token distributions: sample hot so seeds matter.
    const opts = { temperature: 3, maxNewTokens: 12, seed: 7 }
    const a = await group.generate({ lensId: baseLens(), text: PROMPT, options: { ...opts, n: 4 } })
    const b = await group.generate({ lensId: baseLens(), text: PROMPT, options: { ...opts, n: 4 } })
    expect(b.completions).toEqual(a.completions)
    const two = await group.generate({
      lensId: baseLens(),
      text: PROMPT,
      options: { ...opts, n: 2 }
    })
    expect(two.completions).toEqual(a.completions.slice(0, 2))
    const other = await group.generate({
      lensId: baseLens(),
      text: PROMPT,
      options: { ...opts, n: 4, seed: 8 }
    })
    expect(other.completions.map((c) => c.tokenIds)).not.toEqual(
      a.completions.map((c) => c.tokenIds)
    )
    // Sampling really samples: four completions are not all the same.
    expect(new Set(a.completions.map((c) => c.tokenIds.join(','))).size).toBeGreaterThan(1)
  })

  it('returns the full text (prompt with specials + new part) and the new part alone', async () => {
    const r = await group.generate({
      lensId: baseLens(),
      text: PROMPT,
      options: { maxNewTokens: 5, n: 2 }
    })
    expect(r.promptIds[0]).toBe(group.tokenize('x').ids[0]) // BOS
    for (const c of r.completions) {
      expect(c.tokenIds).toHaveLength(5)
      expect(c.fullText.startsWith('<bos> w1 w2 w3 w4 w5')).toBe(true)
      expect(c.fullText.endsWith(c.text)).toBe(true)
      expect(c.finishReason).toBe('length')
      // The full text is analysable as is: it tokenises back to prompt + completion.
      expect(group.tokenize(c.fullText).ids).toEqual([...r.promptIds, ...c.tokenIds])
    }
  })

  it('exact length suppresses end-of-turn ids; stop mode ends at the first one', async () => {
    const eos = group.tokenize('<eos>').ids.at(-1)!
    // Hot sampling over 48 tokens: an unsuppressed EOS turns up within 8 × 40 draws.
    const opts = { temperature: 5, maxNewTokens: 40, n: 8, seed: 3 }
    const exact = await group.generate({ lensId: baseLens(), text: PROMPT, options: opts })
    for (const c of exact.completions) {
      expect(c.tokenIds).toHaveLength(40)
      expect(c.tokenIds).not.toContain(eos)
    }
    const stopping = await group.generate({
      lensId: baseLens(),
      text: PROMPT,
      options: { ...opts, stopAtEndOfTurn: true }
    })
    const ended = stopping.completions.filter((c) => c.finishReason === 'end_of_turn')
    expect(ended.length).toBeGreaterThan(0)
    for (const c of ended) {
      expect(c.tokenIds.at(-1)).toBe(eos)
      expect(c.tokenIds.indexOf(eos)).toBe(c.tokenIds.length - 1)
      expect(c.text.endsWith('<eos>')).toBe(true)
      expect(c.reply.endsWith('<eos>')).toBe(false)
    }
    for (const c of stopping.completions.filter((x) => x.finishReason === 'length')) {
      expect(c.tokenIds).toHaveLength(40)
    }
  })

  it('keeps top_p sampling inside the nucleus: a tiny top_p is greedy', async () => {
    const greedy = await group.generate({
      lensId: baseLens(),
      text: PROMPT,
      options: { temperature: 0, maxNewTokens: 10 }
    })
    const nucleus = await group.generate({
      lensId: baseLens(),
      text: PROMPT,
      options: { temperature: 1, topP: 1e-6, maxNewTokens: 10, n: 3 }
    })
    for (const c of nucleus.completions) expect(c.tokenIds).toEqual(greedy.completions[0]!.tokenIds)
  })

  it("speaks with the lens's donor where it has one", async () => {
    const opts = { temperature: 3, maxNewTokens: 10, seed: 5 }
    const base = await group.generate({ lensId: baseLens(), text: PROMPT, options: opts })
    const donor = await group.generate({ lensId: donorLens(), text: PROMPT, options: opts })
    expect(base.metadata.origModel).toBe(group.summary.baseModel.id)
    expect(donor.metadata.origModel).toBe('donor')
    expect(donor.completions[0]!.tokenIds).not.toEqual(base.completions[0]!.tokenIds)
  })

  it('names what is wrong', async () => {
    const long = await appError(group.generate({ text: PROMPT, options: { maxNewTokens: 60 } }))
    expect(long.field).toBe('options.maxNewTokens')
    expect((await appError(group.generate({ text: PROMPT, options: { topP: 0 } }))).field).toBe(
      'options.topP'
    )
    expect((await appError(group.generate({ text: PROMPT, options: { n: 0 } }))).field).toBe(
      'options.n'
    )
    expect((await appError(group.generate({ lensId: 'nope', text: PROMPT }))).field).toBe('lensId')
    const noTemplate = await appError(
      group.generate({ messages: [{ role: 'user', content: 'w1' }] })
    )
    expect(noTemplate.field).toBe('chat_template')
  })
})
