import os from 'node:os'
import path from 'node:path'

/** The engine's cache folder (demo bundle, optimized graphs, file digests). */
export function defaultCacheDir(): string {
  return process.env.TALKATIVE_CACHE_DIR || path.join(os.homedir(), '.cache', 'talkative-workbench')
}
