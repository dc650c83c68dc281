/**
 * The device workers' reload cache settings (engine/cache): a host-memory budget for recently
 * unloaded groups, split between the workers, and the folder of saved optimized graphs.
 *
 *   TALKATIVE_HOST_CACHE=2GiB          total host budget (0 turns the host cache off)
 *   TALKATIVE_OPTIMIZED_MODELS_DIR=off  no optimized graphs written or read (default: a folder
 *                                       under TALKATIVE_CACHE_DIR / ~/.cache/talkative-workbench)
 */
import path from 'node:path'
import { DEFAULT_HOST_CACHE_SHARE, defaultCacheDir } from '../engine'
import { parseBytes } from './config'

export interface ReloadCacheOptions {
  /** Host-memory bytes for all workers together; default: 1/8 of RAM. */
  hostCacheBytes?: number
  /** Folder of optimized graphs; null: none. */
  optimizedModelsDir?: string | null
}

export interface WorkerCacheConfig {
  hostBytes: number
  optimizedDir: string | null
}

export function reloadCacheFromEnv(env: NodeJS.ProcessEnv = process.env): ReloadCacheOptions {
  const out: ReloadCacheOptions = {}
  if (env.TALKATIVE_HOST_CACHE !== undefined && env.TALKATIVE_HOST_CACHE !== '')
    out.hostCacheBytes = parseBytes(env.TALKATIVE_HOST_CACHE, 'TALKATIVE_HOST_CACHE')
  const dir = env.TALKATIVE_OPTIMIZED_MODELS_DIR
  if (dir !== undefined && dir !== '')
    out.optimizedModelsDir = /^(off|0|none|false)$/i.test(dir) ? null : path.resolve(dir)
  return out
}

/** Each worker's share: the total host budget divided between the devices that run workers. */
export function workerCacheConfig(
  options: ReloadCacheOptions,
  ramBytes: number,
  workers: number
): WorkerCacheConfig {
  const total = options.hostCacheBytes ?? Math.floor(ramBytes * DEFAULT_HOST_CACHE_SHARE)
  return {
    hostBytes: Math.floor(total / Math.max(1, workers)),
    optimizedDir:
      options.optimizedModelsDir === undefined
        ? path.join(defaultCacheDir(), 'optimized-models')
        : options.optimizedModelsDir
  }
}
