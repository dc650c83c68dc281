/**
 * Host-memory cache of recently unloaded groups: per group, the validated bundle, the tokenizer,
 * the lens tensors and ONNX Runtime's optimized graph of every model that was open, bounded by a
 * byte budget and evicted least recently used first. A reload takes its entry out (the new group
 * owns those buffers again: a pre-optimized session reads its weights from them in place) after
 * checking that the folder's fingerprint is unchanged; a changed folder drops the entry.
 *
 * On a GPU device the entry lives in host memory too: a reload skips validation, hashing and graph
 * optimisation, but the weights are still uploaded to the device.
 */
import type { ValidatedBundle } from '../bundle/open'
import type { SessionTarget } from '../ort'
import type { TextTokenizer } from '../tokenizer'
import { fingerprintFolder } from './fingerprint'

/** Default host cache: this share of RAM, split between the device workers. */
export const DEFAULT_HOST_CACHE_SHARE = 0.125

export interface CachedGroup {
  dir: string
  target: SessionTarget
  /** The folder's fingerprint taken before the bundle was validated. */
  fingerprint: string
  bundle: ValidatedBundle
  tokenizer: TextTokenizer
  /** Optimized ORT-format graph per model file (absolute path); models never opened are absent. */
  models: Map<string, Uint8Array>
  /** Lens tensors (prompts, vectors) per file. */
  tensors: Map<string, Float32Array>
  /** Approximate bytes the tokenizer holds (its JSON size). */
  tokenizerBytes: number
}

export interface HostCacheEntryInfo {
  groupId: string
  contentHash: string
  bytes: number
  models: number
  cachedAt: number
}

export interface HostCacheStats {
  budgetBytes: number
  bytes: number
  hits: number
  misses: number
  evictions: number
  groups: HostCacheEntryInfo[]
}

export function cachedGroupBytes(g: CachedGroup): number {
  let n = g.tokenizerBytes
  for (const b of g.models.values()) n += b.byteLength
  for (const t of g.tensors.values()) n += t.byteLength
  return n
}

function targetKey(t: SessionTarget): string {
  return `${t.provider}:${t.deviceIndex ?? 0}:${t.threads ?? 0}`
}

interface Entry {
  group: CachedGroup
  bytes: number
  cachedAt: number
}

export class HostGroupCache {
  #budget: number
  /** Insertion order is recency order: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry>()
  #hits = 0
  #misses = 0
  #evictions = 0

  constructor(budgetBytes: number) {
    this.#budget = Math.max(0, budgetBytes)
  }

  get budgetBytes(): number {
    return this.#budget
  }

  get bytes(): number {
    let n = 0
    for (const e of this.#entries.values()) n += e.bytes
    return n
  }

  #key(dir: string, target: SessionTarget): string {
    return `${targetKey(target)}\u0000${dir}`
  }

  /**
   * The cached parts of the group in `dir` for `target`, removed from the cache, when the folder
   * is unchanged since they were read; null otherwise (a stale entry is dropped).
   */
  async take(dir: string, target: SessionTarget): Promise<CachedGroup | null> {
    const key = this.#key(dir, target)
    const entry = this.#entries.get(key)
    if (!entry) {
      this.#misses++
      return null
    }
    this.#entries.delete(key)
    const now = await fingerprintFolder(dir).catch(() => null)
    if (now !== entry.group.fingerprint) {
      this.#misses++
      return null
    }
    this.#hits++
    return entry.group
  }

  /** Keeps an unloaded group's parts; evicts least recently used entries to stay in budget. */
  put(group: CachedGroup, now = Date.now()): boolean {
    const key = this.#key(group.dir, group.target)
    this.#entries.delete(key)
    const bytes = cachedGroupBytes(group)
    if (bytes > this.#budget) return false
    this.#evictTo(this.#budget - bytes)
    this.#entries.set(key, { group, bytes, cachedAt: now })
    return true
  }

  /** Drops every entry of `dir` (all targets), e.g. when its bundle is known to have changed. */
  drop(dir: string): void {
    for (const [key, e] of this.#entries) if (e.group.dir === dir) this.#entries.delete(key)
  }

  setBudget(bytes: number): void {
    this.#budget = Math.max(0, bytes)
    this.#evictTo(this.#budget)
  }

  clear(): void {
    this.#entries.clear()
  }

  stats(): HostCacheStats {
    return {
      budgetBytes: this.#budget,
      bytes: this.bytes,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      groups: [...this.#entries.values()].map((e) => ({
        groupId: e.group.bundle.summary.groupId,
        contentHash: e.group.bundle.summary.contentHash,
        bytes: e.bytes,
        models: e.group.models.size,
        cachedAt: e.cachedAt
      }))
    }
  }

  #evictTo(limit: number): void {
    for (const [key, e] of this.#entries) {
      if (this.bytes <= limit) return
      this.#entries.delete(key)
      this.#evictions++
      void e
    }
  }
}
