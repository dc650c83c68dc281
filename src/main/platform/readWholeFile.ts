/**
 * Reading a whole file for the engine's loads, in the fewest CPU cycles on the machines measured
 * (a replica's start is CPU time on a core another device's jobs want; docs/benchmarks.md
 * "Replicas"). Two rules.
 *
 * A small file is read synchronously: one thread-pool round trip of `fs.promises` cost ≈ 0.6 ms CPU
 * for a 1 kB file here against ≈ 0.06 ms for `readFileSync`, and a lens's first use reads several.
 *
 * A large file is read into a buffer that the kernel can back with 2 MiB pages. A worker's
 * buffers over 128 KiB are mapped afresh for every load (glibc's fixed mmap threshold, so that an
 * unload gives them back: devices/transport.ts WORKER_ENV), and every 4 KiB page of a fresh mapping
 * costs a fault on first touch, ≈ 15 µs on the virtual machines measured (docs/benchmarks.md,
 * "Replicas"). `glibc.malloc.hugetlb=1` (also in WORKER_ENV) asks for transparent huge pages on
 * such mappings, but the kernel can only use them on 2 MiB-aligned stretches, and Linux (6.7 and
 * later) places an anonymous mapping on a 2 MiB boundary only when its length is a multiple of
 * 2 MiB. So the buffer is sized to make glibc map exactly a multiple of 2 MiB: a replica's 2.5 MB
 * stored graph is then read into two huge pages (2 faults) instead of ≈ 620 small ones, ≈ 10 ms
 * less CPU per load, at the cost of up to 2 MiB more resident memory per file while its bytes are
 * held (the padding is zeroed with its huge page). Elsewhere (another C library, an older kernel,
 * other settings, Electron's own allocator) the padding is address space that is never touched.
 */
import { readFileSync, statSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'

const HUGE_PAGE_BYTES = 2 * 1024 ** 2

/**
 * What 64-bit glibc adds to a request before rounding a mapped chunk up to 4 KiB: its 8-byte size
 * field and the 16-byte chunk alignment, so a request of N × 2 MiB − 24 bytes is mapped as exactly
 * N × 2 MiB (checked in /proc/self/smaps: one more byte and the mapping is 4 KiB longer).
 */
const MALLOC_MAPPED_CHUNK_OVERHEAD = 24

/**
 * Files smaller than this are read synchronously and as they are (their padding would be most of
 * the buffer); larger ones asynchronously (a 1 GB graph read would block the process ≈ 1 s).
 */
export const HUGE_PAGE_READ_MIN_BYTES = 1024 ** 2

/** The buffer length `readWholeFile` allocates for a file of `size` bytes. */
export function hugePageBufferBytes(size: number): number {
  if (size < HUGE_PAGE_READ_MIN_BYTES) return size
  const pages = Math.ceil((size + MALLOC_MAPPED_CHUNK_OVERHEAD) / HUGE_PAGE_BYTES)
  return pages * HUGE_PAGE_BYTES - MALLOC_MAPPED_CHUNK_OVERHEAD
}

/**
 * The file's bytes, as `fs.readFile` gives them; a large file's in a buffer sized by
 * `hugePageBufferBytes` (the returned view is the file's length, its ArrayBuffer may be longer),
 * unless `hugePages` is false (bytes kept somewhere that counts them by their length).
 * A large file that shrinks while it is read gives the bytes that were there; one that grows gives
 * its length when it was opened.
 */
export async function readWholeFile(
  file: string,
  options: { hugePages?: boolean } = {}
): Promise<Buffer> {
  if (statSync(file).size < HUGE_PAGE_READ_MIN_BYTES) return readFileSync(file)
  if (options.hugePages === false) return readFile(file)
  const handle = await open(file, 'r')
  try {
    const size = (await handle.stat()).size
    const buffer = Buffer.allocUnsafeSlow(hugePageBufferBytes(size))
    let offset = 0
    while (offset < size) {
      const { bytesRead } = await handle.read(buffer, offset, size - offset, offset)
      if (bytesRead === 0) break
      offset += bytesRead
    }
    return buffer.subarray(0, offset)
  } finally {
    await handle.close()
  }
}
