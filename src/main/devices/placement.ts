/**
 * Placement rules, pure: no processes, no clock. The manager feeds them the devices as they are and
 * acts on the decision. Kept separate so every rule is covered by table-driven tests.
 */
import type { FitEstimate } from '@shared/domain/devices'
import type { JobKind, JobSubmit } from '@shared/domain/jobs'
import { AppError } from '@shared/ipc/errors'

/**
 * Whether a load made for a job of this kind opens the base models with the analysis roles only
 * (engine/graph/roleSubset.ts): about half the session creation, which is most of what a replica
 * costs before it serves a burst of analyses; a generate or patch run on the group later opens the
 * whole graph, one more creation. Loads of their own (a user's, preload, restore, a worker's
 * reload) and loads for jobs that generate or patch open the whole graph at once, and so do loads
 * for analyses and sweeps with the iterative optimiser: its partial regenerates decode rows that
 * are not in runs of K, which only the whole graph's step loop takes, so such a job would switch
 * to the whole graph at its first regenerate and pay both creations.
 */
const ANALYSIS_ROLES_FIRST: Readonly<Record<JobKind, boolean>> = Object.freeze({
  analyze: true,
  sweep: true,
  load: false,
  generate: false,
  'generate-analyze': false,
  intervene: false
})

/** The part of a job that decides how a load made for it opens the base models. */
export type LoadPurpose = Pick<JobSubmit, 'kind' | 'options'>

export function opensAnalysisRolesFirst(purpose: LoadPurpose): boolean {
  return ANALYSIS_ROLES_FIRST[purpose.kind] && purpose.options?.optimise === undefined
}

export interface ResidentGroup {
  groupId: string
  /** Bytes this group counts for on the device (measured when known, else estimated). */
  bytes: number
  pinned: boolean
  lastUsedAt: number
  /** A job is running with it right now: it cannot be evicted. */
  inUse: boolean
  /**
   * Another healthy device holds a copy too (a replica): evicting this copy loses nothing that
   * would have to be loaded again, so it goes before sole copies of the same age.
   */
  redundant?: boolean
  /** Its group keeps at least `replicas.min` copies and this is one of them: never evicted. */
  keptForMin?: boolean
}

export interface PlacementDevice {
  id: string
  budgetBytes: number
  /** False when the device cannot take loads at all (error, stopped, no provider). */
  usable: boolean
  /** Running a job or a load right now. */
  busy: boolean
  residents: ResidentGroup[]
}

export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes)
  if (abs >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
  if (abs >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  if (abs >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${bytes} B`
}

function usedBytes(device: PlacementDevice): number {
  return device.residents.reduce((sum, r) => sum + r.bytes, 0)
}

/**
 * Would `groupId` (needing `requiredBytes`) fit on `device`, and what would have to go first?
 * Evicts least recently used groups, redundant replicas before sole copies, never pinned ones,
 * never one a running job uses and never a copy its group's `replicas.min` keeps.
 */
export function assessFit(
  device: PlacementDevice,
  groupId: string,
  requiredBytes: number
): FitEstimate {
  const used = usedBytes(device)
  const base = {
    groupId,
    deviceId: device.id,
    requiredBytes,
    budgetBytes: device.budgetBytes,
    usedBytes: used
  }
  if (device.residents.some((r) => r.groupId === groupId)) {
    return {
      ...base,
      verdict: 'loaded',
      evictions: [],
      reason: `${groupId} is already on ${device.id}`
    }
  }
  const need = `${groupId} needs ${formatBytes(requiredBytes)} on ${device.id}`
  if (requiredBytes > device.budgetBytes) {
    return {
      ...base,
      verdict: 'does_not_fit',
      evictions: [],
      reason: `${need}, more than its whole budget of ${formatBytes(device.budgetBytes)}`
    }
  }
  const free = device.budgetBytes - used
  if (requiredBytes <= free) {
    return {
      ...base,
      verdict: 'fits',
      evictions: [],
      reason: `${need}; ${formatBytes(free)} of ${formatBytes(device.budgetBytes)} free`
    }
  }
  const evictable = device.residents
    .filter((r) => !r.pinned && !r.inUse && !r.keptForMin)
    .sort(
      (a, b) =>
        Number(!a.redundant) - Number(!b.redundant) ||
        a.lastUsedAt - b.lastUsedAt ||
        a.groupId.localeCompare(b.groupId)
    )
  const evictions: { groupId: string; bytes: number }[] = []
  let freed = free
  for (const r of evictable) {
    if (freed >= requiredBytes) break
    evictions.push({ groupId: r.groupId, bytes: r.bytes })
    freed += r.bytes
  }
  if (freed >= requiredBytes) {
    return {
      ...base,
      verdict: 'fits_after_evicting',
      evictions,
      reason: `${need}; ${formatBytes(free)} free, fits after evicting ${evictions
        .map((e) => `${e.groupId} (${formatBytes(e.bytes)})`)
        .join(', ')}`
    }
  }
  const pinned = device.residents.filter((r) => r.pinned)
  const inUse = device.residents.filter((r) => r.inUse && !r.pinned)
  const kept = device.residents.filter((r) => r.keptForMin && !r.inUse && !r.pinned)
  const held: string[] = []
  if (pinned.length) {
    held.push(`pinned ${pinned.map((r) => `${r.groupId} (${formatBytes(r.bytes)})`).join(', ')}`)
  }
  if (inUse.length) {
    held.push(`in use ${inUse.map((r) => `${r.groupId} (${formatBytes(r.bytes)})`).join(', ')}`)
  }
  if (kept.length) {
    held.push(
      `kept by replicas.min ${kept.map((r) => `${r.groupId} (${formatBytes(r.bytes)})`).join(', ')}`
    )
  }
  return {
    ...base,
    verdict: 'does_not_fit',
    evictions: [],
    reason: `${need} but only ${formatBytes(freed)} of its ${formatBytes(
      device.budgetBytes
    )} budget can be freed${held.length ? ` (held: ${held.join('; ')})` : ''}`
  }
}

export interface PlacementDecision {
  deviceId: string
  estimate: FitEstimate
}

function loadFraction(d: PlacementDevice): number {
  return d.budgetBytes > 0 ? usedBytes(d) / d.budgetBytes : 1
}

/** Least loaded first: lowest used share of the budget, idle before busy, then by id for stability. */
function byLoad(a: PlacementDevice, b: PlacementDevice): number {
  return (
    loadFraction(a) - loadFraction(b) ||
    Number(a.busy) - Number(b.busy) ||
    a.id.localeCompare(b.id, undefined, { numeric: true })
  )
}

/**
 * Where should `groupId` go? A device already holding it, else one where it fits as is (least
 * loaded first), else one where it fits after evicting (least loaded first). A pinned target
 * (`deviceId`) is honoured or refused, never swapped. Nothing fits → `AppError('unavailable')`
 * whose message names every device and its numbers.
 */
export function chooseDevice(
  devices: readonly PlacementDevice[],
  groupId: string,
  requiredBytes: (deviceId: string) => number,
  deviceId?: string
): PlacementDecision {
  if (deviceId !== undefined) {
    const d = devices.find((x) => x.id === deviceId)
    if (!d) throw new AppError('not_found', `no device ${deviceId}`, { field: 'deviceId' })
    if (!d.usable)
      throw new AppError('unavailable', `device ${deviceId} cannot take loads now`, {
        field: 'deviceId'
      })
    const estimate = assessFit(d, groupId, requiredBytes(d.id))
    if (estimate.verdict === 'does_not_fit') {
      throw new AppError('unavailable', `does not fit: ${estimate.reason}`, { field: 'deviceId' })
    }
    return { deviceId, estimate }
  }
  const usable = devices.filter((d) => d.usable)
  if (usable.length === 0) throw new AppError('unavailable', 'no device can take loads now')
  const [holder] = usable.filter((d) => d.residents.some((r) => r.groupId === groupId)).sort(byLoad)
  if (holder) {
    return {
      deviceId: holder.id,
      estimate: assessFit(holder, groupId, requiredBytes(holder.id))
    }
  }
  const estimates = usable.map((d) => ({ d, e: assessFit(d, groupId, requiredBytes(d.id)) }))
  const [fitting] = estimates.filter((x) => x.e.verdict === 'fits').sort((a, b) => byLoad(a.d, b.d))
  if (fitting) return { deviceId: fitting.d.id, estimate: fitting.e }
  const [evicting] = estimates
    .filter((x) => x.e.verdict === 'fits_after_evicting')
    .sort((a, b) => byLoad(a.d, b.d))
  if (evicting) return { deviceId: evicting.d.id, estimate: evicting.e }
  throw new AppError(
    'unavailable',
    `${groupId} fits on no device: ${estimates.map((x) => x.e.reason).join('; ')}`
  )
}
