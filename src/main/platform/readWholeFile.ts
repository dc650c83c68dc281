/**
 * Reading a whole file for the engine's loads, in the fewest CPU cycles on the machines measured
 * (a replica's start is CPU time on a core another device's jobs want; docs/benchmarks.md
 * "Replicas").
 *
 * A small file is read synchronously: one thread-pool round trip of `fs.promises` cost ≈ 0.6 ms CPU
 * for a 1 kB file here against ≈ 0.06 ms for `readFileSync`, and a lens's first use reads several.
 * A large one asynchronously, so that a multi-gigabyte graph never blocks the worker's messages.
 *
 * Not done (measured and taken back, docs/benchmarks.md "Replicas"): reading a large file into a
 * buffer padded to a multiple of 2 MiB, so that glibc maps it on a huge-page boundary (a stored
 * graph in 2 faults instead of ≈ 620, ≈ 10 ms less CPU per replica load). The padding is memory
 * the host cache and the unload check do not see, and an unload that returns what the group held
 * is the guarantee kept.
 */
import { readFileSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'

/** Files smaller than this are read synchronously; larger ones asynchronously. */
export const SYNC_READ_MAX_BYTES = 1024 ** 2

/** The file's bytes, as `fs.readFile` gives them. */
export async function readWholeFile(file: string): Promise<Buffer> {
  if (statSync(file).size < SYNC_READ_MAX_BYTES) return readFileSync(file)
  return readFile(file)
}
