/**
 * The content hash reads a bundle file only when its identity (inode, size, mtime, ctime) is new:
 * rescans, watch events and worker loads reuse the digests, in memory and across processes.
 */
import { createHash } from 'node:crypto'
import { cp, mkdtemp, open, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDemoBundle } from '../index'
import { FileDigestCache } from './digests'
import { validateBundle } from './open'

let root: string
let demoDir: string
let n = 0

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'talkative-digests-'))
  demoDir = await ensureDemoBundle(path.join(root, 'cache'))
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function copyDemo(): Promise<string> {
  const dir = path.join(root, `case-${n++}`, 'bundle')
  await cp(demoDir, dir, { recursive: true })
  return dir
}

async function hashWith(dir: string, digests: FileDigestCache): Promise<string> {
  return (await validateBundle(dir, { digests })).summary.contentHash
}

describe('bundle content hash with the file digest cache', () => {
  it('does not re-read unchanged files, and re-reads exactly the changed one', async () => {
    const dir = await copyDemo()
    const digests = new FileDigestCache({ file: null })
    const first = await hashWith(dir, digests)
    const files = digests.stats().hashedFiles
    expect(files).toBeGreaterThan(5)
    expect(digests.stats().hashedBytes).toBeGreaterThan(100_000)

    expect(await hashWith(dir, digests)).toBe(first)
    expect(digests.stats()).toMatchObject({ hashedFiles: files, hits: files })

    // Same bytes, new identity (a touch): read again, same hash.
    const lens = path.join(dir, 'lenses/words-l1/lens.json')
    const now = new Date()
    await utimes(lens, now, now)
    expect(await hashWith(dir, digests)).toBe(first)
    expect(digests.stats().hashedFiles).toBe(files + 1)

    // New bytes: a new hash, and only that file was read.
    const json = JSON.parse(await readFile(lens, 'utf8')) as Record<string, unknown>
    await writeFile(lens, JSON.stringify({ ...json, description: 'edited' }))
    const edited = await hashWith(dir, digests)
    expect(edited).not.toBe(first)
    expect(digests.stats().hashedFiles).toBe(files + 2)
  })

  it('is not fooled by a same-size rewrite with the old mtime put back', async () => {
    const dir = await copyDemo()
    const lens = path.join(dir, 'lenses/words-l1')
    const prefix = (await readFile(path.join(lens, 'lens.json'), 'utf8')).match(
      /"file":\s*"([^"]+\.f32)"/
    )![1]!
    const tensor = path.join(lens, prefix)
    // A whole-second mtime, so that putting it back is exact to the nanosecond.
    const stamp = 1_700_000_000
    await utimes(tensor, stamp, stamp)
    const digests = new FileDigestCache({ file: null })
    const first = await hashWith(dir, digests)
    const before = await stat(tensor, { bigint: true })
    const handle = await open(tensor, 'r+')
    try {
      // Flip one bit of a float; size unchanged.
      const byte = Buffer.alloc(1)
      await handle.read(byte, 0, 1, 0)
      byte[0] = byte[0]! ^ 0x01
      await handle.write(byte, 0, 1, 0)
    } finally {
      await handle.close()
    }
    await utimes(tensor, stamp, stamp)
    const after = await stat(tensor, { bigint: true })
    expect([after.size, after.mtimeNs, after.ino]).toEqual([
      before.size,
      before.mtimeNs,
      before.ino
    ])
    expect(await hashWith(dir, digests)).not.toBe(first)
  })

  it('gives the same hash for the same bytes in another folder, and differs when one file does', async () => {
    const a = await copyDemo()
    const b = await copyDemo()
    const digests = new FileDigestCache({ file: null })
    expect(await hashWith(b, digests)).toBe(await hashWith(a, digests))
    await writeFile(path.join(b, 'tokenizer_config.json'), '{}')
    expect(await hashWith(b, digests)).not.toBe(await hashWith(a, digests))
  })

  it('remembers large files across processes through its JSON file', async () => {
    const dir = await copyDemo()
    const file = path.join(root, `digests-${n++}.json`)
    const host = new FileDigestCache({ file, persistMinBytes: 1 })
    const hash = await hashWith(dir, host)
    expect(host.stats().hashedFiles).toBeGreaterThan(5)

    // A fresh process (a worker about to load the group) reads nothing.
    const worker = new FileDigestCache({ file, persistMinBytes: 1 })
    expect(await hashWith(dir, worker)).toBe(hash)
    expect(worker.stats().hashedFiles).toBe(0)

    // Below the threshold nothing is persisted: small files are cheap to hash.
    const other = path.join(root, `digests-${n++}.json`)
    await hashWith(dir, new FileDigestCache({ file: other }))
    await expect(stat(other)).rejects.toMatchObject({ code: 'ENOENT' })

    // A corrupt cache file is ignored, never an error.
    await writeFile(file, '{"format":"talkative-file-digests","version":1,"entries":')
    const afterCorruption = new FileDigestCache({ file, persistMinBytes: 1 })
    expect(await hashWith(dir, afterCorruption)).toBe(hash)
    expect(afterCorruption.stats().hashedFiles).toBeGreaterThan(5)
  })

  it('takes a digest its writer remembered, only for the file exactly as written', async () => {
    const dir = await copyDemo()
    const reference = await hashWith(dir, new FileDigestCache({ file: null }))
    const manifest = path.join(dir, 'manifest.json')
    const bytes = await readFile(manifest)
    const written = await stat(manifest, { bigint: true })
    const digests = new FileDigestCache({ file: null })
    digests.remember(manifest, createHash('sha256').update(bytes).digest('hex'), written)
    expect(await hashWith(dir, digests)).toBe(reference)
    // Every file but the remembered one was read.
    const files = digests.stats().hashedFiles
    expect(digests.stats().hits).toBe(1)

    // A wrong digest remembered for a file that is then written again is never used.
    const lies = new FileDigestCache({ file: null })
    lies.remember(manifest, '0'.repeat(64), written)
    expect(await hashWith(dir, lies)).not.toBe(reference)
    await writeFile(manifest, bytes)
    expect(await hashWith(dir, lies)).toBe(reference)
    expect(lies.stats().hashedFiles).toBe(files + 1)
    expect(() => digests.remember(manifest, 'not-a-digest', written)).toThrow(/SHA-256/)
  })
})
