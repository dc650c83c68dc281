const GIB = 1024 ** 3
const MIB = 1024 ** 2

/** Memory as people read it on a device card: GiB with one decimal, MiB below 1 GiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—'
  if (bytes >= GIB) return `${(bytes / GIB).toFixed(1)} GiB`
  return `${Math.round(bytes / MIB)} MiB`
}

/** A 0..1 fraction as a whole percentage (load averages may exceed 100 %). */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction) || fraction < 0) return '—'
  return `${Math.round(fraction * 100)} %`
}

export function clampFraction(value: number): number {
  if (!Number.isFinite(value)) return 0
  return Math.min(1, Math.max(0, value))
}

/**
 * The machine's CPU load as a share of its cores: the 1-minute load average (utilisation × cores)
 * over the core count, e.g. "2.3 of 2 cores", never "117 %". The bar fraction is clamped to 1.
 */
export function formatLoad(utilization: number, cores: number): { text: string; fraction: number } {
  if (!Number.isFinite(utilization) || utilization < 0 || !(cores > 0))
    return { text: '—', fraction: 0 }
  const load = utilization * cores
  const shown = load >= 10 ? load.toFixed(0) : load.toFixed(1)
  return {
    text: `${shown} of ${cores} ${cores === 1 ? 'core' : 'cores'}`,
    fraction: clampFraction(utilization)
  }
}
