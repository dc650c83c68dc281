/** The lens engine: bundle validation, loading, analysis, demo and synthetic bundles. */
import { validateBundle } from './bundle/open'
import type { BundleSummary } from './types'

export { loadGroup, DEFAULT_ROWS_PER_BATCH } from './group'
export { ensureDemoBundle, DEMO_GROUP_ID } from './demo/demo'
export { generateSyntheticBundle, syntheticText, type SyntheticSpec } from './synthetic'
export { ENGINE_VERSION } from './version'
export { GroupCache, DEFAULT_HOST_CACHE_SHARE } from './cache'
export type { GroupCacheStats, LoadCacheResult } from './cache'
export type * from './types'
export type { SessionTarget } from './ort'

/** Validates a group folder without creating any session; throws AppError('bundle_invalid'). */
export async function openBundle(dir: string): Promise<BundleSummary> {
  return (await validateBundle(dir)).summary
}
