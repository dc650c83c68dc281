/**
 * Residency: which groups live on which device, what each really costs there, and the loads and
 * unloads that change it. Memory is measured around every load (RSS on the CPU, nvidia-smi per
 * process on a GPU) and the measurement becomes the group's size on that provider for every later
 * placement decision. An unload checks that the memory came back.
 */
import type { FitEstimate, Placement, UnloadCheck } from '@shared/domain/devices'
import type { DeviceActivity } from '@shared/ipc/channels/devices'
import { AppError } from '@shared/ipc/errors'
import type { CommandRunner } from '../platform/commandRunner'
import { gpuProcessBytes } from './gpuMemory'
import type { ModelLibrary } from './library'
import {
  assessFit,
  opensAnalysisRolesFirst,
  type LoadPurpose,
  type PlacementDevice
} from './placement'
import { publicPlacement, type DeviceRecord, type PlacementRecord } from './records'

/** Freed memory counts as "came back" when at least this share of what the load took returns. */
const RETURNED_SHARE = 0.7
/** Measurement noise tolerated below which a freed figure always counts as returned. */
const RETURN_SLACK_BYTES = 8 * 1024 ** 2

/** What a worker reports around a load, as far as the measurement needs it. */
export interface LoadMeasurement {
  rssBeforeBytes: number
  rssAfterBytes: number
  cacheBytesBefore?: number
  cacheBytesAfter?: number
}

/**
 * A load's cost on the CPU: the process's RSS growth plus what the load took out of the host
 * cache (bytes the process already held, now the group's). The group holds at least what it took
 * from the cache, so an RSS that fell meanwhile (the garbage collector or the allocator handing
 * back memory of earlier runs) lowers the figure no further than that: such a fall says nothing
 * about the group, and counting it made a small group's reload measure a fraction of its size.
 */
export function measuredLoadBytes(m: LoadMeasurement): number {
  const fromCache = Math.max(0, (m.cacheBytesBefore ?? 0) - (m.cacheBytesAfter ?? 0))
  return fromCache + Math.max(0, m.rssAfterBytes - m.rssBeforeBytes)
}

export interface ResidencyDeps {
  library: ModelLibrary
  /**
   * How many usable devices hold a group, and the copies its `replicas.min` keeps: the placement
   * rules evict redundant replicas first and never a kept copy.
   */
  residentFacts?: (groupId: string) => { copies: number; min: number }
  /** nvidia-smi runner for measured GPU memory (absent: GPU loads are measured by RSS). */
  runCommand?: CommandRunner
  now: () => number
  /** Something a snapshot shows changed. */
  changed: () => void
  /** A load or unload ended (what `/metrics` counts; snapshots are coalesced and may skip it). */
  activity?: (event: DeviceActivity) => void
  /** The worker's host cache may have changed (a load or unload moved bytes in or out). */
  cacheChanged: (d: DeviceRecord) => void
}

export class Residency {
  readonly #deps: ResidencyDeps
  /** Measured bytes per (group, provider): the corrected estimate for the next placement. */
  readonly #measured = new Map<string, number>()

  constructor(deps: ResidencyDeps) {
    this.#deps = deps
  }

  #measureKey(groupId: string, d: DeviceRecord): string {
    return `${groupId}\u0000${d.desc.kind}:${d.desc.provider ?? ''}`
  }

  /** Bytes a group counts for on a device: measured there before (same provider), else estimated. */
  requiredBytes(groupId: string, d: DeviceRecord): number {
    const measured = this.#measured.get(this.#measureKey(groupId, d))
    if (measured !== undefined) return measured
    return this.#estimate(groupId, d) ?? 0
  }

  /** The library's estimate for this kind of device (the GPU figure when it has no other). */
  #estimate(groupId: string, d: DeviceRecord): number | undefined {
    const summary = this.#deps.library.entries().find((e) => e.groupId === groupId)?.summary
    const kind = d.desc.kind === 'gpu' ? 'gpu' : 'cpu'
    return summary?.estimatedBytesByKind?.[kind] ?? summary?.estimatedBytes
  }

  /** The first measurement of a group on any provider (the library shows it). */
  measuredBytes(groupId: string): number | null {
    for (const [key, v] of this.#measured) if (key.startsWith(`${groupId}\u0000`)) return v
    return null
  }

  /** The device as the placement rules see it. */
  placementView(d: DeviceRecord): PlacementDevice {
    const inUse = d.task?.groupId
    return {
      id: d.desc.id,
      budgetBytes: d.desc.budgetBytes,
      usable: d.desc.provider !== null && d.status !== 'error' && d.status !== 'stopped',
      busy: d.task !== null || d.status !== 'ready',
      residents: [...d.placements.values()].map((p) => {
        const facts = this.#deps.residentFacts?.(p.groupId) ?? { copies: 1, min: 0 }
        return {
          groupId: p.groupId,
          bytes: p.countedBytes,
          pinned: p.pinned,
          lastUsedAt: p.lastUsedAt,
          inUse: p.groupId === inUse || p.state !== 'ready',
          ...(facts.copies > 1 ? { redundant: true } : {}),
          ...(facts.min > 0 && facts.copies <= facts.min ? { keptForMin: true } : {})
        }
      })
    }
  }

  /** Will `groupId` fit on `d`, and what would be evicted? */
  estimate(groupId: string, d: DeviceRecord): FitEstimate {
    const required = this.requiredBytes(groupId, d)
    if (!d.desc.provider) {
      return {
        groupId,
        deviceId: d.desc.id,
        verdict: 'does_not_fit',
        requiredBytes: required,
        budgetBytes: d.desc.budgetBytes,
        usedBytes: 0,
        evictions: [],
        reason: `${d.desc.id} cannot run anything: ${d.desc.providerError ?? 'no execution provider'}`
      }
    }
    return assessFit(this.placementView(d), groupId, required)
  }

  pin(d: DeviceRecord, groupId: string, pinned: boolean): Placement {
    const p = d.placements.get(groupId)
    if (!p)
      throw new AppError('not_found', `${groupId} is not loaded on ${d.desc.id}`, {
        field: 'groupId'
      })
    p.pinned = pinned
    this.#deps.changed()
    return publicPlacement(p)
  }

  /** Loads on `d` (the device must be idle for other work); records estimate vs measurement. */
  async load(
    d: DeviceRecord,
    groupId: string,
    dir: string,
    estimatedBytes: number,
    /** The job the load is for (absent: a load of its own); see `opensAnalysisRolesFirst`. */
    forJob?: LoadPurpose
  ): Promise<PlacementRecord> {
    if (!d.client) throw new AppError('unavailable', `${d.desc.id} has no running worker`)
    const { runCommand, now } = this.#deps
    const existing = d.placements.get(groupId)
    const rec: PlacementRecord = existing ?? {
      groupId,
      state: 'loading',
      pinned: false,
      estimatedBytes: this.#estimate(groupId, d) ?? estimatedBytes,
      measuredBytes: null,
      countedBytes: this.requiredBytes(groupId, d),
      lastUsedAt: now(),
      loadedAt: null,
      loadMs: null,
      baselineBytes: null
    }
    rec.state = 'loading'
    delete rec.error
    d.placements.set(groupId, rec)
    this.#deps.changed()
    let gpuBefore: number | null = null
    if (d.desc.kind === 'gpu' && runCommand && d.client.pid) {
      gpuBefore = await gpuProcessBytes(runCommand, d.client.pid, d.gpuUuid)
    }
    try {
      const res = await d.client.call({
        op: 'load',
        groupId,
        dir,
        analysisRolesFirst: forJob !== undefined && opensAnalysisRolesFirst(forJob)
      })
      let measured = measuredLoadBytes(res)
      if (d.desc.kind === 'gpu') {
        const after =
          runCommand && d.client?.pid
            ? await gpuProcessBytes(runCommand, d.client.pid, d.gpuUuid)
            : null
        measured = after !== null && gpuBefore !== null ? Math.max(0, after - gpuBefore) : measured
        rec.baselineBytes = gpuBefore
      } else {
        rec.baselineBytes = res.rssBeforeBytes
      }
      rec.state = 'ready'
      const estimate = this.#estimate(groupId, d) ?? res.summary.estimatedBytes
      rec.estimatedBytes = estimate
      rec.measuredBytes = measured
      // The corrected estimate never drops below what the bundle itself declares it needs
      // minus the noise of one measurement: RSS misses lazily allocated arenas.
      rec.countedBytes = Math.max(measured, Math.min(estimate, measured + RETURN_SLACK_BYTES))
      this.#measured.set(this.#measureKey(groupId, d), rec.countedBytes)
      rec.loadedAt = now()
      rec.loadMs = res.loadMs
      if (res.cache) this.#deps.cacheChanged(d)
      rec.lastUsedAt = now()
      this.#deps.activity?.({
        kind: 'load',
        deviceId: d.desc.id,
        groupId,
        outcome: 'ok',
        seconds: Math.max(0, res.loadMs) / 1000
      })
      return rec
    } catch (err) {
      d.placements.delete(groupId)
      this.#deps.activity?.({
        kind: 'load',
        deviceId: d.desc.id,
        groupId,
        outcome: 'failed',
        seconds: null
      })
      throw err
    } finally {
      this.#deps.changed()
    }
  }

  /** Unloads from `d` now and checks that the memory came back. */
  async unload(d: DeviceRecord, groupId: string): Promise<UnloadCheck> {
    const p = d.placements.get(groupId)
    if (!p) throw new AppError('not_found', `${groupId} is not loaded on ${d.desc.id}`)
    if (!d.client) throw new AppError('unavailable', `${d.desc.id} has no running worker`)
    const { runCommand, now } = this.#deps
    const startedAt = now()
    p.state = 'unloading'
    this.#deps.changed()
    try {
      const res = await d.client.call({ op: 'unload', groupId })
      // What the unload moved into the host cache left the device's budget for the cache's own,
      // though the process still holds it.
      const cached = Math.max(0, (res.cacheBytesAfter ?? 0) - (res.cacheBytesBefore ?? 0))
      let freed = res.rssBeforeBytes - res.rssAfterBytes + cached
      // Back where the process was before this group's load: the memory came back even when
      // the load-time figure was mostly noise (small groups, arenas grown by later runs).
      let backToBaseline =
        p.baselineBytes !== null &&
        res.rssAfterBytes - cached <= p.baselineBytes + RETURN_SLACK_BYTES
      if (d.desc.kind === 'gpu' && runCommand && d.client.pid) {
        const after = await gpuProcessBytes(runCommand, d.client.pid, d.gpuUuid)
        backToBaseline = false
        if (after !== null && p.baselineBytes !== null && p.measuredBytes !== null) {
          freed = p.baselineBytes + p.measuredBytes - after
          backToBaseline = after <= p.baselineBytes + RETURN_SLACK_BYTES
        }
      }
      const expected = p.measuredBytes ?? p.countedBytes
      const check: UnloadCheck = {
        groupId,
        expectedBytes: expected,
        freedBytes: freed,
        ...(res.cacheBytesAfter !== undefined ? { cachedBytes: cached } : {}),
        ok:
          backToBaseline ||
          expected <= RETURN_SLACK_BYTES ||
          freed >= expected * RETURNED_SHARE - RETURN_SLACK_BYTES,
        at: now()
      }
      d.lastUnload = check
      d.placements.delete(groupId)
      this.#deps.cacheChanged(d)
      this.#deps.activity?.({
        kind: 'unload',
        deviceId: d.desc.id,
        groupId,
        seconds: Math.max(0, now() - startedAt) / 1000
      })
      return check
    } catch (err) {
      if (d.placements.get(groupId) === p) p.state = 'ready'
      throw err
    } finally {
      this.#deps.changed()
    }
  }
}
