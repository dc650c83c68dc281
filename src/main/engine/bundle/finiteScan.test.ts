import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { scanExternalFloat32 } from './finiteScan'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

/** A data file of float32 values: tensor a = 0..9 (offset 0), tensor b = 10 values at byte 64. */
async function dataFile(a: number[], b: number[]): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tw-finite-scan-'))
  dirs.push(dir)
  const bytes = new Float32Array(16 + b.length)
  bytes.set(a, 0)
  bytes.set(b, 16)
  const file = path.join(dir, 'base.onnx.data')
  await writeFile(file, new Uint8Array(bytes.buffer))
  return file
}

const ranges = [
  { name: 'a', offset: 0, length: 40 },
  { name: 'b', offset: 64, length: 40 }
]
const clean = Array.from({ length: 10 }, (_, i) => i / 3)

describe('scanExternalFloat32', () => {
  it.each([4, 8, 12, 1024])(
    'finds each tensor with non-finite values, whatever the chunk size (%i bytes)',
    async (chunk) => {
      const b = [...clean]
      b[3] = NaN
      b[9] = -Infinity
      b[4] = Infinity
      const file = await dataFile(clean, b)
      expect(await scanExternalFloat32(file, ranges, chunk)).toEqual([
        { name: 'b', count: 3, firstIndex: 3, firstValue: NaN }
      ])
    }
  )

  it('reports nothing for finite weights, and only the bytes of each range', async () => {
    // Bytes 40..63 lie between the tensors: a NaN there belongs to no tensor.
    const file = await dataFile(clean, clean)
    const raw = new Float32Array([NaN])
    const h = await open(file, 'r+')
    await h.write(new Uint8Array(raw.buffer), 0, 4, 48)
    await h.close()
    expect(await scanExternalFloat32(file, ranges, 8)).toEqual([])
  })

  it('refuses a data file that ends inside a tensor', async () => {
    const file = await dataFile(clean, clean)
    await expect(
      scanExternalFloat32(file, [{ name: 'c', offset: 96, length: 40 }])
    ).rejects.toThrow(/ends inside tensor "c"/)
  })
})
