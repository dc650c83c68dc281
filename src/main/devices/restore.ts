/**
 * What the start does with the saved placements, pure: the loads to queue before any job runs and
 * why anything saved is not restored as it was. Pinned placements and placements of preload
 * groups go back to their devices; one whose device is gone (a GPU removed, `TALKATIVE_DEVICES`
 * changed) or cannot run anything now is placed by the normal rules instead (a pin moves with it),
 * and said so. A preload group with nothing saved is placed by the normal rules. Groups no longer
 * in the library are reported and skipped; their settings are kept for when they come back.
 */
import type { SavedPlacements } from './placementStore'

export interface RestoreDevice {
  id: string
  /** Why it cannot take loads now (no provider, broken), or undefined when it can. */
  unusable?: string
}

export interface RestoreLoad {
  groupId: string
  /** The saved device, or null: placed by the normal rules. */
  deviceId: string | null
  pinned: boolean
}

export interface RestorePlan {
  /** In order: loads onto saved devices first, then the ones placed by the rules. */
  loads: RestoreLoad[]
  /** Preload groups whose `replicas.min` asks for more copies than the loads above make. */
  copies: Array<{ groupId: string; copies: number }>
  notes: string[]
}

export function planRestore(
  saved: SavedPlacements,
  devices: readonly RestoreDevice[],
  /** Usable groups of the library (a broken bundle is not one). */
  groups: ReadonlySet<string>
): RestorePlan {
  const notes: string[] = []
  const onDevice: RestoreLoad[] = []
  const byRules: RestoreLoad[] = []
  const seen = new Set<string>()
  const missingGroups = new Set<string>()
  for (const p of saved.placements) {
    if (!groups.has(p.groupId)) {
      missingGroups.add(p.groupId)
      continue
    }
    const key = `${p.groupId}\u0000${p.deviceId}`
    if (seen.has(key)) continue
    seen.add(key)
    const device = devices.find((d) => d.id === p.deviceId)
    const why = !device
      ? 'is gone'
      : device.unusable
        ? `cannot take loads (${device.unusable})`
        : null
    if (why === null) {
      onDevice.push({ groupId: p.groupId, deviceId: p.deviceId, pinned: p.pinned })
      continue
    }
    notes.push(
      `${p.deviceId} ${why}: ${p.groupId}${p.pinned ? ' (pinned there)' : ''} is placed by the normal rules${p.pinned ? ' and pinned where it lands' : ''}`
    )
    byRules.push({ groupId: p.groupId, deviceId: null, pinned: p.pinned })
  }
  for (const groupId of missingGroups)
    notes.push(`${groupId} is not in the library (or is broken): its saved placements are skipped`)

  const preload = Object.entries(saved.groups).filter(([, settings]) => settings.preload)
  for (const [groupId] of preload) {
    if (!groups.has(groupId)) {
      if (!missingGroups.has(groupId))
        notes.push(`${groupId} is marked preload but is not in the library (or is broken)`)
      continue
    }
    if (![...onDevice, ...byRules].some((l) => l.groupId === groupId))
      byRules.push({ groupId, deviceId: null, pinned: false })
  }
  // Two loads of one group by the rules would be one copy (the second finds it resident): the
  // extra copies are placed afterwards, on devices not holding it yet.
  const ruled = new Map<string, RestoreLoad>()
  for (const l of byRules) {
    const prev = ruled.get(l.groupId)
    if (!prev) ruled.set(l.groupId, { ...l })
    else if (l.pinned) prev.pinned = true
  }
  const loads = [...onDevice, ...ruled.values()]
  const copies: RestorePlan['copies'] = []
  for (const [groupId, settings] of preload) {
    const planned = loads.filter((l) => l.groupId === groupId).length
    if (planned > 0 && settings.replicas.min > planned)
      copies.push({ groupId, copies: settings.replicas.min })
  }
  return { loads, copies, notes }
}
