/**
 * ONNX Runtime's optimized graphs on disk, in ORT format: written once (as a side effect of the
 * first session creation for a model) and read back by later loads, which then skip graph
 * optimisation. An entry is keyed by everything that shapes the optimized graph: the bundle's
 * content hash, the model file within it, the execution provider, GPU index and thread count, the
 * ONNX Runtime and engine versions, and the CPU (optimizations at level "all" may be
 * hardware-specific). A changed bundle has a new content hash, so it can never read a stale graph.
 */
import { createHash, randomUUID } from 'node:crypto'
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ortVersion, type SessionTarget } from '../ort'
import { ENGINE_VERSION } from '../version'
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
    const cpu = os.cpus()[0]?.model ?? 'unknown-cpu'
    const parts = [
      contentHash,
      modelRel,
      target.provider,
      target.deviceIndex ?? 0,
      target.threads ?? 0,
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

  /** The stored graph, or a temporary path to save it to and the commit that publishes it. */
  async open(
    contentHash: string,
    modelRel: string,
    target: SessionTarget
  ): Promise<OptimizedModel> {
    const file = this.fileFor(this.keyFor(contentHash, modelRel, target))
    const bytes = await fs.readFile(file).catch(() => null)
    if (bytes && bytes.byteLength > 0) {
      const now = new Date()
      // The time stamp orders pruning (least recently used first); a failure only ages the entry.
      await fs.utimes(file, now, now).catch(log.failed(`touching ${file}`, 'debug'))
      return { kind: 'hit', bytes, file }
    }
    await fs.mkdir(this.dir, { recursive: true })
    // Another worker may write the same entry at once: each writes its own temporary file and the
    // rename publishes a complete file atomically; a half-written file is never read.
    const saveTo = path.join(this.dir, `.tmp-${randomUUID()}.ort`)
    return {
      kind: 'miss',
      saveTo,
      commit: async () => {
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
