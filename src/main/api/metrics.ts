/**
 * `GET /metrics` in the Prometheus text format (prom-client). Counters follow the hub's events
 * (jobs:changed, jobs:rows, devices:activity for loads and unloads, devices:changed for the
 * devices' cumulative busy time) as an observer that does not count as a connected client; gauges
 * are read from the manager's snapshot at scrape time. Nothing is counted from the difference
 * between two snapshots: `devices:changed` is coalesced, so a load or a task can begin and end
 * between two of them. Labels are bounded: `device`
 * is one of the configured devices (the first MAX_DEVICE_LABELS, the rest `other`), `kind`,
 * `outcome` and `memory` are fixed sets. Group and job ids are never labels.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { ManagedDevice } from '@shared/domain/devices'
import { TERMINAL_JOB_STATUSES, type JobRows, type JobState } from '@shared/domain/jobs'
import type { DeviceActivity, DevicesSnapshot } from '@shared/ipc/channels/devices'
import type { HardwareState } from '@shared/domain/system'
import type { EventHub } from '../router/eventHub'

/** Devices beyond this many share the label `other` (a bound on series, whatever the config). */
export const MAX_DEVICE_LABELS = 64
const KEEP_SEEN_JOBS = 5000

export interface MetricsSource {
  snapshot(): Promise<DevicesSnapshot | undefined>
  hardware(): Promise<HardwareState>
}

export class WorkbenchMetrics {
  readonly registry = new Registry()
  readonly #labels = new Map<string, string>()
  readonly #unobserve: () => void
  /** Jobs already counted as finished (a job's terminal state is published more than once). */
  readonly #ended = new Set<string>()
  /** Devices each known job ran on (rows are attributed to them). */
  readonly #jobDevices = new Map<string, string[]>()
  /** Per device: its busy seconds as of the last snapshot (the counter adds what grew since). */
  readonly #busySeen = new Map<string, number>()

  readonly #jobs: Counter<'device' | 'kind' | 'outcome'>
  readonly #rows: Counter<'device'>
  readonly #busy: Counter<'device'>
  readonly #loads: Counter<'device' | 'outcome'>
  readonly #unloads: Counter<'device'>
  readonly #loadSeconds: Histogram<'device'>
  readonly #unloadSeconds: Histogram<'device'>

  constructor(hub: EventHub, source: MetricsSource) {
    const registers = [this.registry]
    this.#jobs = new Counter({
      name: 'talkative_jobs_total',
      help: 'Finished jobs by device, kind and outcome (a data-parallel job counts on each device)',
      labelNames: ['device', 'kind', 'outcome'],
      registers
    })
    this.#rows = new Counter({
      name: 'talkative_rows_total',
      help: 'Analysed positions (rows) streamed; a data-parallel job counts its rows in equal shares on its devices. Rows/s: rate()',
      labelNames: ['device'],
      registers
    })
    this.#busy = new Counter({
      name: 'talkative_device_busy_seconds_total',
      help: 'Seconds a device ran a task (load, analysis, generation)',
      labelNames: ['device'],
      registers
    })
    this.#loads = new Counter({
      name: 'talkative_device_loads_total',
      help: 'Group loads by outcome (ok, failed)',
      labelNames: ['device', 'outcome'],
      registers
    })
    this.#unloads = new Counter({
      name: 'talkative_device_unloads_total',
      help: 'Group unloads (including evictions)',
      labelNames: ['device'],
      registers
    })
    const buckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
    this.#loadSeconds = new Histogram({
      name: 'talkative_device_load_seconds',
      help: "Duration of group loads (the worker's own figure)",
      labelNames: ['device'],
      buckets,
      registers
    })
    this.#unloadSeconds = new Histogram({
      name: 'talkative_device_unload_seconds',
      help: 'Duration of group unloads (as the manager waited for them)',
      labelNames: ['device'],
      buckets,
      registers
    })
    // prom-client calls `collect` with the metric as `this`: labels come from this closure.
    const label = (deviceId: string): string => this.#label(deviceId)
    new Gauge({
      name: 'talkative_device_memory_bytes',
      help: "A device's memory budget split: app (groups placed here), other (other processes), free",
      labelNames: ['device', 'memory'],
      registers,
      async collect() {
        this.reset()
        const [snapshot, hardware] = await Promise.all([
          source.snapshot(),
          source.hardware().catch(() => null)
        ])
        for (const d of snapshot?.devices ?? []) {
          const split = memorySplit(d, hardware)
          for (const [memory, bytes] of Object.entries(split))
            this.set({ device: label(d.id), memory }, bytes)
        }
      }
    })
    new Gauge({
      name: 'talkative_device_queued_jobs',
      help: 'Jobs queued for a device (asked for it, or waiting for it after running there)',
      labelNames: ['device'],
      registers,
      async collect() {
        this.reset()
        const snapshot = await source.snapshot()
        for (const d of snapshot?.devices ?? []) {
          const n =
            snapshot?.queue.jobs.filter(
              (j) =>
                j.status === 'queued' && (j.requestedDeviceId === d.id || j.devices.includes(d.id))
            ).length ?? 0
          this.set({ device: label(d.id) }, n)
        }
      }
    })
    new Gauge({
      name: 'talkative_queue_jobs',
      help: 'Unfinished jobs by status (queued, running: loading or running)',
      labelNames: ['status'],
      registers,
      async collect() {
        const snapshot = await source.snapshot()
        this.set({ status: 'queued' }, snapshot?.queue.queued ?? 0)
        this.set({ status: 'running' }, snapshot?.queue.running ?? 0)
      }
    })
    new Gauge({
      name: 'talkative_device_groups',
      help: 'Groups resident on a device',
      labelNames: ['device'],
      registers,
      async collect() {
        this.reset()
        const snapshot = await source.snapshot()
        for (const d of snapshot?.devices ?? [])
          this.set({ device: label(d.id) }, d.placements.length)
      }
    })
    this.#unobserve = hub.observe((channel, payload) => {
      if (channel === 'jobs:changed') this.#onJob(payload as JobState)
      else if (channel === 'jobs:rows') this.#onRows(payload as JobRows)
      else if (channel === 'devices:changed') this.#onDevices(payload as DevicesSnapshot)
      else if (channel === 'devices:activity') this.#onActivity(payload as DeviceActivity)
    })
  }

  /** A device id as a label; beyond the bound, `other`. */
  #label(deviceId: string): string {
    let label = this.#labels.get(deviceId)
    if (!label) {
      label = this.#labels.size < MAX_DEVICE_LABELS ? deviceId : 'other'
      this.#labels.set(deviceId, label)
    }
    return label
  }

  #onJob(job: JobState): void {
    if (job.devices.length) this.#jobDevices.set(job.id, [...job.devices])
    if (!TERMINAL_JOB_STATUSES.includes(job.status) || this.#ended.has(job.id)) return
    this.#ended.add(job.id)
    if (this.#ended.size > KEEP_SEEN_JOBS) this.#ended.delete(this.#ended.values().next().value!)
    const devices = job.devices.length ? job.devices : ['none']
    for (const d of devices)
      this.#jobs.inc({
        device: d === 'none' ? 'none' : this.#label(d),
        kind: job.kind,
        outcome: job.status
      })
    this.#jobDevices.delete(job.id)
  }

  #onRows(rows: JobRows): void {
    const devices = this.#jobDevices.get(rows.jobId)
    if (!devices?.length || rows.rows.length === 0) return
    for (const d of devices)
      this.#rows.inc({ device: this.#label(d) }, rows.rows.length / devices.length)
  }

  /** Busy time: each device's cumulative figure, so coalesced snapshots lose nothing. */
  #onDevices(snapshot: DevicesSnapshot): void {
    for (const d of snapshot.devices) {
      const seen = this.#busySeen.get(d.id)
      // Below what was seen: a new manager counting from zero again.
      const grown =
        seen === undefined || d.busySeconds < seen ? d.busySeconds : d.busySeconds - seen
      if (grown > 0) this.#busy.inc({ device: this.#label(d.id) }, grown)
      this.#busySeen.set(d.id, d.busySeconds)
    }
  }

  /** Loads and unloads, one event each as they end. */
  #onActivity(event: DeviceActivity): void {
    const device = this.#label(event.deviceId)
    if (event.kind === 'load') {
      this.#loads.inc({ device, outcome: event.outcome })
      if (event.seconds !== null) this.#loadSeconds.observe({ device }, event.seconds)
    } else {
      this.#unloads.inc({ device })
      this.#unloadSeconds.observe({ device }, event.seconds)
    }
  }

  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() }
  }

  close(): void {
    this.#unobserve()
  }
}

/** The same split as the device cards: this app's groups, other processes, free. */
export function memorySplit(
  device: ManagedDevice,
  hardware: HardwareState | null
): { app: number; other: number; free: number } {
  const total = device.budgetBytes
  const app = Math.min(total, device.usedBytes)
  let free = total - app
  if (hardware) {
    if (device.kind === 'gpu') {
      const gpu = hardware.gpus.find((g) => `cuda:${g.index}` === device.id)
      if (gpu) free = Math.min(free, Math.max(0, gpu.memoryFreeBytes))
    } else {
      free = Math.min(free, Math.max(0, hardware.cpu.memoryFreeBytes))
    }
  }
  return { app, other: Math.max(0, total - app - free), free }
}
