/**
 * NaN / infinity scan of float32 weights kept in ONNX external data: each tensor's byte range is
 * read in fixed-size chunks into one reused buffer, so a multi-gigabyte base model is scanned in
 * bounded memory. Weights are stored little-endian (docs/bundle-format.md); so is every host the
 * engine runs on.
 */
import { promises as fs, constants } from 'node:fs'
import { BundleFileError, notRegularFile } from './files'

/** One float32 tensor's bytes inside an external-data file. */
export interface Float32Range {
  name: string
  offset: number
  length: number
}

/** A tensor holding NaN or infinite values: how many, and the first. */
export interface NonFiniteTensor {
  name: string
  count: number
  firstIndex: number
  firstValue: number
}

const CHUNK_BYTES = 4 * 1024 * 1024

// O_NONBLOCK: a data file swapped for a FIFO after validation must not block the open.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

/**
 * Scans each range of the regular file `abs`; returns the tensors holding non-finite values, in
 * the order given. Ranges are assumed inside the file (the caller checked them against its size).
 */
export async function scanExternalFloat32(
  abs: string,
  ranges: readonly Float32Range[],
  chunkBytes = CHUNK_BYTES
): Promise<NonFiniteTensor[]> {
  const handle = await fs.open(abs, READ_FLAGS).catch((err: NodeJS.ErrnoException) => {
    throw new BundleFileError(`cannot be opened (${err.code ?? 'error'})`, err.code)
  })
  try {
    const not = notRegularFile(await handle.stat())
    if (not) throw new BundleFileError(not)
    const size = Math.max(4, chunkBytes - (chunkBytes % 4))
    const buffer = new Uint8Array(size)
    const values = new Float32Array(buffer.buffer)
    const found: NonFiniteTensor[] = []
    for (const range of ranges) {
      let count = 0
      let firstIndex = -1
      let firstValue = 0
      for (let done = 0; done + 4 <= range.length;) {
        const want = Math.min(size, range.length - done - ((range.length - done) % 4))
        const { bytesRead } = await handle.read(buffer, 0, want, range.offset + done)
        if (bytesRead < 4) throw new BundleFileError(`ends inside tensor "${range.name}"`)
        const n = Math.floor(bytesRead / 4)
        for (let i = 0; i < n; i++) {
          const v = values[i]!
          // v - v is 0 for every finite v and NaN for NaN and ±Inf.
          if (v - v === 0) continue
          if (firstIndex < 0) {
            firstIndex = done / 4 + i
            firstValue = v
          }
          count++
        }
        done += n * 4
      }
      if (count > 0) found.push({ name: range.name, count, firstIndex, firstValue })
    }
    return found
  } finally {
    await handle.close()
  }
}
