/**
 * ONNX Runtime's optimized graphs on disk, in ORT format: written once (as a side effect of the
 * first session creation for a model) and read back by later loads, which then skip graph
 * optimisation. An entry is keyed by everything that shapes the optimized graph: the bundle's
 * content hash, the model file within it, the execution provider, GPU index and thread count, the
 * session options the engine creates sessions with, the ONNX Runtime and engine versions, and the
 * CPU (optimizations at level "all" may be hardware-specific). A changed bundle has a new content
 * hash and changed session options a new key, so neither can read a stale graph. Each entry ends
 * with a checksum of its graph, checked on every read: a file damaged after it was written is
 * removed and rebuilt (ONNX Runtime rejects a torn graph, but opens one with a changed byte and
 * runs it as it reads).
 */
import { createHash, randomUUID } from 'node:crypto'
import { promises as fs, utimesSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import { ortVersion, sessionOptions, type SessionTarget } from '../ort'
import { ENGINE_VERSION } from '../version'
import { readWholeFile } from '../../platform/readWholeFile'
import { createLogger } from '../../platform/logger'

const log = createLogger('engine')

export interface OptimizedStoreOptions {
  dir: string
  /** Entries beyond this total are removed, least recently used first. */
  budgetBytes?: number
}

export const DEFAULT_OPTIMIZED_STORE_BYTES = 4 * 1024 ** 3

/**
 * Groups whose weights exceed this skip the store (and so the in-memory optimized copy too): an
 * optimized ORT-format model is opened from a JS buffer that must stay alive with its session, and
 * for multi-GB bases that would mean a second host copy of the weights and a disk copy the size of
 * the model. Large groups load from their bundle files, as without the cache.
 */
export const OPTIMIZED_STORE_MAX_GROUP_BYTES = 1024 ** 3

/**
 * An entry's last bytes: this marker, then the CRC-32 of the graph before them. A CRC finds the
 * damage a disk or a torn copy does (any change of up to 32 adjacent bits, and all but one in 2³²
 * others) in ≈ 0.5 ms for a 2.5 MB graph, against ≈ 1.6 ms for SHA-256 on a replica's load; it is
 * no defence against someone who may write the cache folder, who could change anything there.
 */
const SEAL_MARKER = Buffer.from('TW-ORT-CRC32-v1\n', 'latin1')
const SEAL_BYTES = SEAL_MARKER.byteLength + 4

/** What is appended to a graph to store it: the marker and the graph's checksum. */
export function sealOf(graph: Uint8Array): Buffer {
  const seal = Buffer.alloc(SEAL_BYTES)
  SEAL_MARKER.copy(seal)
  seal.writeUInt32LE(crc32(graph), SEAL_MARKER.byteLength)
  return seal
}

/**
 * The graph inside a stored entry (a view, no copy), or null when the entry has no seal or its
 * checksum does not match (torn, damaged, or written by something else).
 */
export function unseal(entry: Uint8Array): Uint8Array | null {
  if (entry.byteLength <= SEAL_BYTES) return null
  const graphEnd = entry.byteLength - SEAL_BYTES
  const seal = Buffer.from(entry.buffer, entry.byteOffset + graphEnd, SEAL_BYTES)
  if (!seal.subarray(0, SEAL_MARKER.byteLength).equals(SEAL_MARKER)) return null
  const graph = entry.subarray(0, graphEnd)
  return crc32(graph) === seal.readUInt32LE(SEAL_MARKER.byteLength) ? graph : null
}

let cpuModelName: string | undefined

/**
 * The CPU's model name, read once per process: `os.cpus()` parses /proc/cpuinfo (and each core's
 * frequency) on every call, 0.1–0.6 ms CPU on a 2-core VM and more on a many-core server, and a
 * replica's load asks for a key on every load.
 */
function cpuModel(): string {
  cpuModelName ??= os.cpus()[0]?.model ?? 'unknown-cpu'
  return cpuModelName
}

/** Where a model's optimized graph is read from, or how to write it during this load. */
export type OptimizedModel =
  | { kind: 'hit'; bytes: Uint8Array; file: string }
  | { kind: 'miss'; saveTo: string; commit: () => Promise<void>; abandon: () => Promise<void> }

export class OptimizedModelStore {
  readonly dir: string
  readonly budgetBytes: number

  constructor(options: OptimizedStoreOptions) {
    this.dir = path.resolve(options.dir)
    this.budgetBytes = options.budgetBytes ?? DEFAULT_OPTIMIZED_STORE_BYTES
  }

  keyFor(contentHash: string, modelRel: string, target: SessionTarget): string {
    const cpu = cpuModel()
    const parts = [
      contentHash,
      modelRel,
      target.provider,
      target.deviceIndex ?? 0,
      target.threads ?? 0,
      // An option that changes the optimized graph (its level, a provider's settings) must not
      // read one optimized under the old options; any option change rebuilds, to be safe.
      JSON.stringify(sessionOptions(target)),
      ortVersion(),
      ENGINE_VERSION,
      process.platform,
      process.arch,
      cpu
    ]
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 40)
  }

  fileFor(key: string): string {
    return path.join(this.dir, `${key}.ort`)
  }

  /**
   * The stored graph, or a temporary path to save it to and the commit that publishes it. An
   * entry whose checksum does not match is removed and reported as a miss.
   */
  async open(
    contentHash: string,
    modelRel: string,
    target: SessionTarget
  ): Promise<OptimizedModel> {
    const file = this.fileFor(this.keyFor(contentHash, modelRel, target))
    // A replica reads its stored graphs on every load (platform/readWholeFile.ts).
    const entry = await readWholeFile(file).catch(() => null)
    const graph = entry ? unseal(entry) : null
    if (graph) {
      const now = new Date()
      // The time stamp orders pruning (least recently used first); a failure only ages the entry.
      // Synchronous: a thread-pool round trip costs ten times the call (platform/readWholeFile.ts).
      try {
        utimesSync(file, now, now)
      } catch (err) {
        log.failed(`touching ${file}`, 'debug')(err)
      }
      return { kind: 'hit', bytes: graph, file }
    }
    if (entry) {
      log.warn(
        `${file}: a damaged optimized graph (no valid checksum), removed; rebuilt by this load`
      )
      await this.discard(file).catch(log.failed(`removing ${file}`, 'debug'))
    }
    await fs.mkdir(this.dir, { recursive: true })
    // Another worker may write the same entry at once: each writes its own temporary file and the
    // rename publishes a complete file atomically; a half-written file is never read.
    const saveTo = path.join(this.dir, `.tmp-${randomUUID()}.ort`)
    return {
      kind: 'miss',
      saveTo,
      // The seal is appended to what ONNX Runtime wrote, then the rename publishes both at once.
      commit: async () => {
        await fs.appendFile(saveTo, sealOf(await fs.readFile(saveTo)))
        await fs.rename(saveTo, file)
        await this.prune().catch(log.failed(`pruning ${this.dir}`))
      },
      abandon: async () => {
        await fs.rm(saveTo, { force: true })
      }
    }
  }

  /** Removes an entry ONNX Runtime could not read back (corrupt or foreign). */
  async discard(file: string): Promise<void> {
    await fs.rm(file, { force: true })
  }

  /** Total bytes and entry count on disk. */
  async usage(): Promise<{ bytes: number; entries: number }> {
    const files = await this.#entries()
    return { bytes: files.reduce((s, f) => s + f.size, 0), entries: files.length }
  }

  async prune(): Promise<void> {
    const files = (await this.#entries()).sort((a, b) => b.mtimeMs - a.mtimeMs)
    let total = 0
    for (const f of files) {
      total += f.size
      if (total > this.budgetBytes) await fs.rm(f.file, { force: true })
    }
  }

  async #entries(): Promise<{ file: string; size: number; mtimeMs: number }[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[])
    const out: { file: string; size: number; mtimeMs: number }[] = []
    for (const name of names) {
      if (!name.endsWith('.ort') || name.startsWith('.tmp-')) continue
      const file = path.join(this.dir, name)
      const st = await fs.stat(file).catch(() => null)
      if (st) out.push({ file, size: st.size, mtimeMs: st.mtimeMs })
    }
    return out
  }
}
