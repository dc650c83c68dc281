/**
 * A bounded, seeded fuzz of mutated fixtures: whatever the bytes, the reader returns or throws
 * CheckpointError (never another error, never an "unexpected error" from its boundary), and
 * every call finishes within a deadline.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { TorchArchive } from './archive'
import { CheckpointError } from '../errors'
import { readLensCheckpoint } from './lensCheckpoint'
import { unpickle } from './pickle'

const FIXTURES = fileURLToPath(
  new URL('../../../../test/fixtures/lens-checkpoints/', import.meta.url)
)
const scratch = mkdtempSync(path.join(tmpdir(), 'lens-fuzz-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** xorshift32: the same seed gives the same mutations on every machine. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1
  return (n) => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s % n
  }
}

const INTERESTING = [
  0x00, 0x01, 0x7f, 0x80, 0xff, 0x28, 0x2e, 0x52, 0x62, 0x63, 0x71, 0x68, 0x51, 0x81, 0x8a, 0x95
]

/** One mutation in [lo, hi) of the buffer: flip, overwrite, insert, delete, duplicate, truncate. */
function mutate(src: Buffer, rand: (n: number) => number, lo = 0, hi = src.length): Buffer {
  const buf = Buffer.from(src)
  const at = lo + rand(Math.max(1, hi - lo))
  switch (rand(7)) {
    case 0:
      buf[at] = buf[at]! ^ (1 << rand(8))
      return buf
    case 1:
      buf[at] = INTERESTING[rand(INTERESTING.length)]!
      return buf
    case 2:
      for (let i = 0; i < 4 && at + i < buf.length; i++) buf[at + i] = rand(256)
      return buf
    case 3:
      return Buffer.concat([
        buf.subarray(0, at),
        Buffer.from([rand(256), rand(256)]),
        buf.subarray(at)
      ])
    case 4:
      return Buffer.concat([
        buf.subarray(0, at),
        buf.subarray(Math.min(buf.length, at + 1 + rand(16)))
      ])
    case 5: {
      const len = 1 + rand(24)
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at, at + len), buf.subarray(at)])
    }
    default:
      return buf.subarray(0, at)
  }
}

function expectOurError(err: unknown, what: string): void {
  if (!(err instanceof CheckpointError)) throw new Error(`${what}: threw ${String(err)}`)
  expect(err.message, what).not.toContain('unexpected error')
  expect(err.message, what).not.toContain('malformed pickle (')
}

describe('fuzz', () => {
  it('mutated data.pkl bytes: only CheckpointError, quickly', async () => {
    const archive = await TorchArchive.open(path.join(FIXTURES, 'gemma3.pt'))
    const pkl = await archive.readRecord('data.pkl', 1 << 24)
    await archive.close()
    const seeds = [pkl, readFileSync(path.join(FIXTURES, 'plain-protocol-4.pkl'))]
    const rand = rng(0x5eed)
    const CASES = 1200
    const started = performance.now()
    let refused = 0
    for (let i = 0; i < CASES; i++) {
      let bytes = seeds[i % seeds.length]!
      const rounds = 1 + rand(3)
      for (let r = 0; r < rounds; r++) bytes = mutate(bytes, rand)
      const t0 = performance.now()
      try {
        unpickle(bytes, { file: 'fuzz.pt', record: 'fuzz/data.pkl' })
      } catch (err) {
        expectOurError(err, `case ${i}`)
        refused++
      }
      expect(performance.now() - t0, `case ${i} took too long`).toBeLessThan(500)
    }
    expect(refused).toBeGreaterThan(100)
    console.log(
      `pickle fuzz: ${CASES} cases, ${refused} refused, ${(performance.now() - started).toFixed(0)} ms`
    )
  })

  it('mutated checkpoint files: only CheckpointError, every read within its deadline', async () => {
    const rand = rng(0xc0ffee)
    const sources = ['gpt2.pt', 'gemma2.pt'].map((n) => readFileSync(path.join(FIXTURES, n)))
    const started = performance.now()
    let refused = 0
    const cases = 400
    for (let i = 0; i < cases; i++) {
      const src = sources[i % sources.length]!
      // Aim at the parts a reader interprets: the pickle (front), the central directory (end).
      const region = rand(4)
      const [lo, hi] =
        region === 0
          ? [0, Math.min(src.length, 16_000)]
          : region === 1
            ? [Math.max(0, src.length - 3_000), src.length]
            : [0, src.length]
      let bytes: Buffer = src
      const rounds = 1 + rand(4)
      for (let r = 0; r < rounds; r++) bytes = mutate(bytes, rand, lo, Math.min(hi, bytes.length))
      const file = path.join(scratch, `case-${i}.pt`)
      writeFileSync(file, bytes)
      const deadline = new Promise<'hung'>((resolve) =>
        setTimeout(() => resolve('hung'), 5_000).unref()
      )
      const outcome = await Promise.race([
        readLensCheckpoint(file).then(
          () => 'read' as const,
          (err: unknown) => {
            expectOurError(err, `case ${i}`)
            return 'refused' as const
          }
        ),
        deadline
      ])
      expect(outcome, `case ${i}`).not.toBe('hung')
      if (outcome === 'refused') refused++
      rmSync(file)
    }
    expect(refused).toBeGreaterThan(cases / 4)
    console.log(
      `file fuzz: ${cases} cases, ${refused} refused, ${(performance.now() - started).toFixed(0)} ms`
    )
  })
})
