import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SYNC_READ_MAX_BYTES, readWholeFile } from './readWholeFile'

describe('readWholeFile', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'read-whole-file-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it.each([0, 5, SYNC_READ_MAX_BYTES - 1, SYNC_READ_MAX_BYTES, 2_536_812])(
    'gives the bytes fs.readFile gives (%i bytes), at their length',
    async (size) => {
      const file = path.join(dir, `f${size}`)
      const bytes = Buffer.alloc(size)
      for (let i = 0; i < size; i++) bytes[i] = (i * 2654435761) >>> 24
      await writeFile(file, bytes)
      const read = await readWholeFile(file)
      expect(read.byteLength).toBe(size)
      expect(read.equals(await readFile(file))).toBe(true)
    }
  )

  it('rejects a file that does not exist', async () => {
    await expect(readWholeFile(path.join(dir, 'missing'))).rejects.toThrow(/ENOENT/)
  })
})
