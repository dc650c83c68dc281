/**
 * The predecessor's shapes (its `/api/v2` routes, its WebSocket messages and `/api/gpu_stats`),
 * built from the Workbench's snapshot, pure. A "model" of the predecessor is a lens here, named
 * `group/lens` (always unambiguous); a device is `cuda:N` or a CPU device id, and where the
 * predecessor gave an integer GPU index, `cuda:N` is given as N. docs/api.md lists where these
 * shapes deliberately differ and why.
 */
import type { AnalysisMetadata, AnalysisRow } from '@shared/domain/analysis'
import type { ManagedDevice } from '@shared/domain/devices'
import type { JobState, QueueSummary } from '@shared/domain/jobs'
import type { LibraryGroup, ModelLibrary } from '@shared/domain/models'
import type { HardwareState } from '@shared/domain/system'

const GiB = 1024 ** 3

/**
 * The predecessor's per-model batch ceiling, for clients that compute `batch_size` as
 * floor(auto_batch_size_max / K). A `batch_size` equal to that quotient means "automatic" here
 * (the device's own rows-per-batch budget), see `isAutoBatchSize`.
 */
export const AUTO_BATCH_SIZE_MAX = 256

/** The predecessor's frontend asks floor(auto_batch_size_max / K) when "auto" is ticked. */
export function isAutoBatchSize(batchSize: number, bestOfK: number): boolean {
  return batchSize === Math.max(1, Math.floor(AUTO_BATCH_SIZE_MAX / bestOfK))
}

/** Generation settings a model reports (the contract's defaults). */
export const GENERATION_CONFIG = { temperature: 1, top_p: 1, max_new_tokens: 32 }

/** `cuda:N` as the predecessor's integer N; other device ids as they are. */
export function seedDeviceId(id: string): number | string {
  const m = /^cuda:(\d+)$/.exec(id)
  return m ? Number(m[1]) : id
}

export function modelId(groupId: string, lensId: string): string {
  return `${groupId}/${lensId}`
}

function gb(bytes: number | null | undefined): number {
  return bytes ? Number((bytes / GiB).toFixed(3)) : 0
}

function usable(library: ModelLibrary): LibraryGroup[] {
  return library.groups.filter((g) => g.status === 'ok')
}

function groupBytes(g: LibraryGroup): number | null {
  return g.measuredBytes ?? g.estimatedBytes
}

/** `GET /api/v2/models`: every lens with where its group is loaded. */
export function seedModels(library: ModelLibrary): unknown[] {
  return usable(library).flatMap((g) =>
    g.lenses.map((l) => ({
      id: modelId(g.groupId, l.id),
      name: l.name,
      description: `${g.name}, layer ${l.layer}`,
      dataset: 'unknown',
      architecture: g.baseModel ?? 'unknown',
      memory_estimate: gb(groupBytes(g)),
      layer: l.layer,
      group_id: g.groupId,
      locations: g.loadedOn.map((d) => ({ device_id: seedDeviceId(d), group_id: g.groupId }))
    }))
  )
}

/** `GET /api/v2/groups`: every group, its lenses, its memory estimate and its settings. */
export function seedGroups(library: ModelLibrary): unknown[] {
  return usable(library).map((g) => ({
    id: g.groupId,
    name: g.name,
    models: g.lenses.map((l) => modelId(g.groupId, l.id)),
    memory_estimate_gb: gb(groupBytes(g)),
    loaded_on: g.loadedOn,
    ...(g.settings ? { replicas: g.settings.replicas, preload: g.settings.preload } : {})
  }))
}

/** What a device has and uses, as the predecessor's `GET /devices/{id}/memory` said it. */
export function seedDeviceMemory(
  device: ManagedDevice,
  library: ModelLibrary,
  hardware: HardwareState | null
): Record<string, unknown> {
  let free = Math.max(0, device.budgetBytes - device.usedBytes)
  const gpu = hardware?.gpus.find((g) => `cuda:${g.index}` === device.id)
  if (gpu) free = Math.min(free, Math.max(0, gpu.memoryFreeBytes))
  return {
    device_id: seedDeviceId(device.id),
    device: device.id,
    total_gb: gb(device.budgetBytes),
    free_gb: gb(free),
    allocated_gb: gb(device.usedBytes),
    reserved_gb: gb(Math.max(device.usedBytes, device.processBytes ?? 0)),
    models_loaded: lensesOn(device, library).length,
    groups_loaded: device.placements.map((p) => p.groupId)
  }
}

/** The lenses of the groups resident (ready) on a device, as model ids. */
export function lensesOn(device: ManagedDevice, library: ModelLibrary): string[] {
  return device.placements
    .filter((p) => p.state === 'ready')
    .flatMap((p) => {
      const g = library.groups.find((x) => x.groupId === p.groupId)
      return g ? g.lenses.map((l) => modelId(g.groupId, l.id)) : []
    })
}

/** The predecessor's model info (`get_model_info`, `GET /models/{id}/info`, `/current`). */
export function seedModelInfo(
  library: ModelLibrary,
  groupId: string,
  lensId: string
): Record<string, unknown> | null {
  const g = library.groups.find((x) => x.groupId === groupId)
  const l = g?.lenses.find((x) => x.id === lensId)
  if (!g || !l) return null
  return {
    model_id: modelId(groupId, lensId),
    id: modelId(groupId, lensId),
    name: l.name,
    display_name: l.name,
    description: `${g.name}, layer ${l.layer}`,
    dataset: 'unknown',
    architecture: g.baseModel ?? 'unknown',
    memory_estimate: gb(groupBytes(g)),
    layer: l.layer,
    auto_batch_size_max: AUTO_BATCH_SIZE_MAX,
    generation_config: GENERATION_CONFIG,
    group_id: groupId,
    loaded: g.loadedOn.length > 0,
    locations: g.loadedOn.map((d) => ({ device_id: seedDeviceId(d), status: 'loaded' })),
    checkpoint: `${g.folder} (${lensId})`
  }
}

/** A device's group as the predecessor's `current_group` (its first ready placement). */
function currentGroupOf(device: ManagedDevice, library: ModelLibrary): LibraryGroup | undefined {
  const p = device.placements.find((x) => x.state === 'ready') ?? device.placements[0]
  return p ? library.groups.find((g) => g.groupId === p.groupId) : undefined
}

/** The `system_state` message's `data`. */
export function seedSystemState(devices: ManagedDevice[], library: ModelLibrary): unknown {
  return {
    devices: devices.map((d) => {
      const g = currentGroupOf(d, library)
      return {
        device: d.id,
        current_group: g ? { id: g.groupId, name: g.name } : null,
        is_switching: d.placements.some((p) => p.state === 'loading' || p.state === 'unloading'),
        loaded_models: lensesOn(d, library),
        groups: d.placements.map((p) => p.groupId)
      }
    }),
    groups: usable(library).map((g) => ({
      id: g.groupId,
      name: g.name,
      base_model: g.baseModel ?? '',
      memory_estimate: gb(groupBytes(g))
    })),
    cpu_cached_groups: [
      ...new Set(devices.flatMap((d) => d.hostCache?.groups.map((c) => c.groupId) ?? []))
    ]
  }
}

export interface CurrentModel {
  groupId: string
  modelId: string
}

/** The `model_groups_list` message (the predecessor's richer variant, sent on request). */
export function seedModelGroupsList(
  devices: ManagedDevice[],
  library: ModelLibrary,
  current: CurrentModel | null
): Record<string, unknown> {
  const cached = new Set(devices.flatMap((d) => d.hostCache?.groups.map((c) => c.groupId) ?? []))
  const groups = usable(library).map((g) => {
    const holders = devices.filter((d) => d.placements.some((p) => p.groupId === g.groupId))
    const ready = holders.some((d) =>
      d.placements.some((p) => p.groupId === g.groupId && p.state === 'ready')
    )
    return {
      group_id: g.groupId,
      group_name: g.name,
      description: g.lenses.length
        ? `${g.lenses.length} lens${g.lenses.length === 1 ? '' : 'es'}, layers ${g.lenses.map((l) => l.layer).join(', ')}`
        : '',
      base_model: g.baseModel ?? '',
      device_info: devices.map((d) => {
        const p = d.placements.find((x) => x.groupId === g.groupId)
        return {
          device: d.id,
          has_group: Boolean(p),
          is_current: Boolean(p),
          is_switching: p ? p.state !== 'ready' : false
        }
      }),
      is_cpu_cached: cached.has(g.groupId),
      visible: true,
      replicas: g.settings?.replicas ?? null,
      preload: g.settings?.preload ?? false,
      models: g.lenses.map((l) => {
        const id = modelId(g.groupId, l.id)
        return {
          id,
          name: l.name,
          description: `layer ${l.layer}, ${l.tokens} explanation tokens`,
          layer: l.layer,
          auto_batch_size_max: AUTO_BATCH_SIZE_MAX,
          visible: true,
          backend_only: false,
          checkpoint_filename: `${g.folder}/${l.id}`,
          checkpoint_full: `${g.folder}/${l.id}`,
          is_loaded: ready,
          is_gpu_loaded: ready && holders.some((d) => d.kind === 'gpu'),
          is_cpu_cached: cached.has(g.groupId),
          is_current: current?.modelId === id
        }
      })
    }
  })
  const baseLocations: Record<string, string> = {}
  for (const d of devices) for (const p of d.placements) baseLocations[p.groupId] ??= d.id
  const memoryDevices: Record<string, unknown> = {}
  for (const d of devices) {
    memoryDevices[d.id] = {
      allocated_memory_gb: gb(d.usedBytes),
      reserved_memory_gb: gb(Math.max(d.usedBytes, d.processBytes ?? 0)),
      max_memory_gb: gb(d.budgetBytes),
      current_group: currentGroupOf(d, library)?.groupId ?? null,
      models_loaded: lensesOn(d, library).length
    }
  }
  return {
    type: 'model_groups_list',
    groups,
    current_group: current?.groupId ?? null,
    current_model: current?.modelId ?? null,
    is_switching: devices.some((d) => d.placements.some((p) => p.state === 'loading')),
    memory_info: {
      gpu_available: devices.some((d) => d.kind === 'gpu' && d.provider !== null),
      devices: memoryDevices,
      cpu_cached_groups: [...cached],
      total_models_in_memory: devices.reduce((n, d) => n + lensesOn(d, library).length, 0)
    },
    model_status: {
      cache_info: {
        groups_loaded: Object.keys(baseLocations),
        models_cached: devices.flatMap((d) => lensesOn(d, library)),
        base_locations: baseLocations
      }
    }
  }
}

/** The current model when nobody chose one: the first lens of the first resident group. */
export function firstResidentModel(
  devices: ManagedDevice[],
  library: ModelLibrary
): CurrentModel | null {
  for (const d of devices) {
    const g = currentGroupOf(d, library)
    const l = g?.lenses[0]
    if (g && l) return { groupId: g.groupId, modelId: modelId(g.groupId, l.id) }
  }
  return null
}

/** `queue_update`: the queue as the predecessor counted it, with the real queued ids. */
export function seedQueueUpdate(queue: QueueSummary): Record<string, unknown> {
  const queued = queue.jobs
    .filter((j) => j.status === 'queued')
    .sort((a, b) => (a.queuePosition ?? 0) - (b.queuePosition ?? 0))
  const processing = queue.jobs.filter((j) => j.status === 'loading' || j.status === 'running')
  return {
    type: 'queue_update',
    queue_size: queued.length,
    queued_requests: queued.length,
    processing_requests: processing.length,
    total_active: queued.length + processing.length,
    queued_ids: queued.map((j) => j.id)
  }
}

/**
 * `/api/gpu_stats`: per GPU utilisation (percent) and memory (GB); the top level repeats the first
 * device. Without GPUs, the first manager device (the CPU) stands in, so a page that draws these
 * bars still shows the machine.
 */
export function seedGpuStats(
  hardware: HardwareState,
  devices: ManagedDevice[]
): Record<string, unknown> {
  const entries: Array<[string, Record<string, number>]> = hardware.gpus.map((g) => {
    const used = g.memoryUsedBytes
    const util = Math.round((g.utilization ?? 0) * 100)
    return [
      `cuda:${g.index}`,
      {
        utilization: util,
        memory_used: gb(used),
        memory_total: gb(g.memoryTotalBytes),
        memory_percent: g.memoryTotalBytes ? Math.round((used / g.memoryTotalBytes) * 100) : 0,
        peak_utilization: util
      }
    ]
  })
  if (entries.length === 0) {
    const d = devices[0]
    if (d) {
      const util = Math.round(Math.min(1, hardware.cpu.utilization ?? 0) * 100)
      entries.push([
        d.id,
        {
          utilization: util,
          memory_used: gb(d.usedBytes),
          memory_total: gb(d.budgetBytes),
          memory_percent: d.budgetBytes ? Math.round((d.usedBytes / d.budgetBytes) * 100) : 0,
          peak_utilization: util
        }
      ])
    }
  }
  const first = entries[0]?.[1] ?? {
    utilization: 0,
    memory_used: 0,
    memory_total: 0,
    memory_percent: 0,
    peak_utilization: 0
  }
  return { available: hardware.gpus.length > 0, devices: Object.fromEntries(entries), ...first }
}

/** One analysed position with the predecessor's column names (§1.5.9 of its rows). */
export function seedRow(row: AnalysisRow): Record<string, unknown> {
  return {
    position: row.position,
    token: row.token,
    token_id: row.tokenId,
    explanation: row.explanation,
    explanation_structured: row.explanationStructured,
    mse: row.mse,
    relative_rmse: row.relativeRmse,
    kl_divergence: row.klDivergence,
    token_salience: row.tokenSalience,
    ...(row.logitLensTop !== null ? { logit_lens_top: row.logitLensTop } : {})
  }
}

/** The analysis result's metadata as the predecessor's service wrote it, plus the Workbench's. */
export function seedAnalysisMetadata(
  job: JobState,
  metadata: AnalysisMetadata | null,
  library: ModelLibrary
): Record<string, unknown> {
  const g = library.groups.find((x) => x.groupId === job.groupId)
  const l = g?.lenses.find((x) => x.id === job.lensId)
  const options = metadata?.options ?? {}
  return {
    model_id: modelId(job.groupId, job.lensId ?? ''),
    encoder_decoder_model: l?.name ?? job.lensId,
    shared_base_model: g?.baseModel ?? job.groupId,
    donor_model: 'Same as base model',
    layer: metadata?.layer ?? l?.layer ?? null,
    batch_size: options.rowsPerBatch ?? 'auto',
    best_of_k: options.bestOfK ?? null,
    temperature: options.temperature ?? null,
    checkpoint_path: g ? `${g.folder}/${job.lensId}` : null,
    device: job.devices.join(', '),
    bundle_hash: metadata?.bundleHash ?? null,
    execution_provider: metadata?.executionProvider ?? null,
    seed: metadata?.seed ?? null,
    engine_version: metadata?.engineVersion ?? null
  }
}

/** Groups a `model_groups_list` reported as switching (loading or unloading on some device). */
export function switchingGroups(message: Record<string, unknown>): string[] {
  const groups = Array.isArray(message.groups) ? (message.groups as Record<string, unknown>[]) : []
  return groups
    .filter(
      (g) =>
        Array.isArray(g.device_info) &&
        (g.device_info as { is_switching?: unknown }[]).some((d) => d.is_switching === true)
    )
    .map((g) => String(g.group_id))
}

/**
 * Which switches a page was told of have settled. The predecessor's frontend shows "switching…"
 * and queues everything from a `model_groups_list` saying so until a `group_switch_status`
 * `completed` arrives for the group (or a list that no longer says so). A group still loading or
 * unloading somewhere has not settled; one ready somewhere `completed` (with that device); one on
 * no device any more (unloaded, or its load failed) is only `gone`: a fresh list tells the page.
 */
export function settledSwitches(
  told: ReadonlySet<string>,
  devices: ManagedDevice[]
): { completed: { groupId: string; device: string }[]; gone: string[] } {
  const completed: { groupId: string; device: string }[] = []
  const gone: string[] = []
  for (const groupId of told) {
    const placed = devices.flatMap((d) =>
      d.placements.filter((p) => p.groupId === groupId).map((p) => ({ device: d.id, p }))
    )
    if (placed.some(({ p }) => p.state === 'loading' || p.state === 'unloading')) continue
    const ready = placed.find(({ p }) => p.state === 'ready')
    if (ready) completed.push({ groupId, device: ready.device })
    else gone.push(groupId)
  }
  return { completed, gone }
}
