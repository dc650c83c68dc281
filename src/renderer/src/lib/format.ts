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
