/**
 * What makes a reload fast: a host-memory LRU of recently unloaded groups (host-cache.ts) and
 * ONNX Runtime's optimized graphs on disk (optimized-store.ts), and the validations of folders
 * loaded before (validations.ts). `loadGroup(dir, target, { cache })`
 * uses both; docs/devices.md has the measured effect.
 */
import { HostGroupCache, type HostCacheStats } from './hostCache'
import { OptimizedModelStore } from './optimizedStore'
import { ValidatedBundles } from './validations'
import type { LoadCacheResult } from '../types'

export { fingerprintFolder } from './fingerprint'
export { HostGroupCache, cachedGroupBytes, DEFAULT_HOST_CACHE_SHARE } from './hostCache'
export type { CachedGroup, HostCacheStats, HostCacheEntryInfo } from './hostCache'
export { OptimizedModelStore, DEFAULT_OPTIMIZED_STORE_BYTES } from './optimizedStore'
export type { OptimizedModel } from './optimizedStore'
export { ValidatedBundles } from './validations'

export interface GroupCacheOptions {
  /** Host-memory budget for unloaded groups (0: keep nothing in memory). */
  hostBytes: number
  /** Folder for optimized graphs; null or absent: none are written or read. */
  optimizedDir?: string | null
  optimizedBudgetBytes?: number
}

export type { LoadCacheResult }

export interface GroupCacheStats extends HostCacheStats {
  optimizedDir: string | null
}

export class GroupCache {
  readonly host: HostGroupCache
  readonly optimized: OptimizedModelStore | null
  /** Validations of folders loaded before, reused while no file changed (validations.ts). */
  readonly validated = new ValidatedBundles()

  constructor(options: GroupCacheOptions) {
    this.host = new HostGroupCache(options.hostBytes)
    this.optimized = options.optimizedDir
      ? new OptimizedModelStore({
          dir: options.optimizedDir,
          budgetBytes: options.optimizedBudgetBytes
        })
      : null
  }

  stats(): GroupCacheStats {
    return { ...this.host.stats(), optimizedDir: this.optimized?.dir ?? null }
  }
}
