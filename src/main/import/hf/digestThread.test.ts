/**
 * The digest thread against node:crypto over the whole file: in-order writes with gaps, a reused
 * buffer, writes out of order, a file cut short; and every way the thread can fail (a throw, an
 * exit, a buffer it cannot read, a call after close) rejects with an error naming the file instead
 * of leaving a call waiting.
 */
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { DigestThread } from './digestThread'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const shared = (n: number): Uint8Array => new Uint8Array(new SharedArrayBuffer(n))

const FILE = '/groups/g/base.onnx.data'
const opened: DigestThread[] = []
const open = (source?: string): DigestThread => {
  const d = new DigestThread(FILE, source === undefined ? {} : { source })
  opened.push(d)
  return d
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close()))
})

describe('DigestThread', () => {
  it('hashes in-order writes with the gaps and the tail as zeros, from a reused buffer', async () => {
    const file = new Uint8Array(3_000_000)
    const buf = shared(6000)
    const d = open()
    // One buffer, refilled once its bytes have been hashed (as the weight streamer reuses slots).
    const a = buf.subarray(0, 1000)
    for (let i = 0; i < a.length; i++) a[i] = i % 251
    file.set(a, 10)
    await d.add(a, 10)
    const b = buf.subarray(1000, 6000)
    for (let i = 0; i < b.length; i++) b[i] = (i * 7) % 253
    file.set(b, 2_000_000)
    const pending = d.add(b, 2_000_000)
    const c = shared(3)
    c.set([1, 2, 3])
    file.set(c, 2_500_000)
    await Promise.all([pending, d.add(c, 2_500_000)])
    expect(await d.finish(file.byteLength)).toBe(sha(file))
  })

  it('gives no digest for writes out of order or a file cut short', async () => {
    const back = open()
    await back.add(shared(8), 100)
    await back.add(shared(8), 50)
    expect(await back.finish(200)).toBeNull()
    const short = open()
    await short.add(shared(8), 100)
    expect(await short.finish(104)).toBeNull()
  })

  it('refuses a buffer the thread cannot see, naming the file', async () => {
    await expect(open().add(new Uint8Array(8), 0)).rejects.toThrow(
      `${FILE}: the digest thread reads shared buffers only`
    )
  })

  it('rejects every waiting call when the thread throws, and every later one', async () => {
    const d = open(
      `require('node:worker_threads').parentPort.on('message', () => { throw new Error('boom') })`
    )
    const failed = `${FILE}: the thread computing its SHA-256 failed: boom`
    await Promise.all([
      expect(d.add(shared(8), 0)).rejects.toThrow(failed),
      expect(d.finish(8)).rejects.toThrow(failed)
    ])
    await expect(d.finish(8)).rejects.toThrow(FILE)
  })

  it('rejects when the thread exits, with its exit code', async () => {
    const d = open(`require('node:worker_threads').parentPort.on('message', () => process.exit(3))`)
    await expect(d.add(shared(8), 0)).rejects.toThrow(
      `${FILE}: the thread computing its SHA-256 stopped unexpectedly (exit code 3)`
    )
  })

  it('rejects a call waiting when it is closed, and calls after', async () => {
    // A thread that never answers: close must still end the wait.
    const d = open(`require('node:worker_threads').parentPort.on('message', () => {})`)
    const waiting = expect(d.add(shared(8), 0)).rejects.toThrow(
      `${FILE}: hashing stopped before it finished`
    )
    await d.close()
    await waiting
    await expect(d.finish(8)).rejects.toThrow(`${FILE}: hashing stopped before it finished`)
    await d.close()
  })
})
