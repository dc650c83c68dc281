import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HUGE_PAGE_READ_MIN_BYTES, hugePageBufferBytes, readWholeFile } from './readWholeFile'

const MiB = 1024 ** 2

describe('hugePageBufferBytes', () => {
  it.each([
    ['an empty file', 0, 0],
    ['a lens graph (68 kB)', 68_724, 68_724],
    ['just under the threshold', HUGE_PAGE_READ_MIN_BYTES - 1, HUGE_PAGE_READ_MIN_BYTES - 1],
    ['at the threshold', HUGE_PAGE_READ_MIN_BYTES, 2 * MiB - 24],
    ['the largest file that fits one huge page', 2 * MiB - 24, 2 * MiB - 24],
    ['one byte more', 2 * MiB - 23, 4 * MiB - 24],
    ["the demo's stored analysis graph (2.5 MB)", 2_536_812, 4 * MiB - 24],
    ['a 100 MB graph', 100_000_000, 48 * 2 * MiB - 24]
  ])('%s', (_name, size, bytes) => {
    expect(hugePageBufferBytes(size)).toBe(bytes)
    expect(hugePageBufferBytes(size)).toBeGreaterThanOrEqual(size)
  })
})

describe('readWholeFile', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'read-whole-file-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it.each([0, 5, HUGE_PAGE_READ_MIN_BYTES - 1, 2 * MiB - 24, 2 * MiB - 23, 2_536_812])(
    'gives the bytes fs.readFile gives (%i bytes), a large file in a buffer of hugePageBufferBytes',
    async (size) => {
      const file = path.join(dir, `f${size}`)
      const bytes = Buffer.alloc(size)
      for (let i = 0; i < size; i++) bytes[i] = (i * 2654435761) >>> 24
      await writeFile(file, bytes)
      const read = await readWholeFile(file)
      expect(read.byteLength).toBe(size)
      expect(read.equals(await readFile(file))).toBe(true)
      // A small file's buffer may come from Node's pool; a large one's is its own.
      if (size >= HUGE_PAGE_READ_MIN_BYTES) {
        expect(read.byteOffset).toBe(0)
        expect(read.buffer.byteLength).toBe(hugePageBufferBytes(size))
      }
    }
  )

  it('reads a large file at its length when huge pages are not asked for', async () => {
    const file = path.join(dir, 'exact')
    await writeFile(file, Buffer.alloc(2_536_812, 3))
    const read = await readWholeFile(file, { hugePages: false })
    expect(read.equals(await readFile(file))).toBe(true)
    expect(read.buffer.byteLength).toBe(2_536_812)
  })

  it('rejects a file that does not exist', async () => {
    await expect(readWholeFile(path.join(dir, 'missing'))).rejects.toThrow(/ENOENT/)
  })
})
