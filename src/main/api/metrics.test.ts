/**
 * The /metrics counters follow explicit events: loads and unloads from `devices:activity`, busy
 * time from the snapshots' cumulative `busySeconds`. `devices:changed` is coalesced, so nothing
 * may be counted from the difference between two snapshots.
 */
import { describe, expect, it } from 'vitest'
import type { ManagedDevice } from '@shared/domain/devices'
import type { HardwareState } from '@shared/domain/system'
import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import { EventHub } from '../router/eventHub'
import { WorkbenchMetrics } from './metrics'

function device(busySeconds: number): ManagedDevice {
  return {
    id: 'cpu:0',
    kind: 'cpu',
    name: 'cpu',
    virtual: false,
    provider: 'cpu',
    threads: 1,
    budgetBytes: 1e9,
    usedBytes: 0,
    processBytes: null,
    status: 'ready',
    workerPid: 1,
    restarts: 0,
    runningJobId: null,
    busySeconds,
    placements: [],
    lastUnload: null
  }
}

function snapshot(busySeconds: number): DevicesSnapshot {
  return {
    devices: [device(busySeconds)],
    library: { folder: '/m', groups: [], scannedAt: 0 },
    queue: { queued: 0, running: 0, jobs: [] },
    takenAt: 0
  }
}

function metricsOn(hub: EventHub): WorkbenchMetrics {
  return new WorkbenchMetrics(hub, {
    snapshot: async () => undefined,
    hardware: async () => ({}) as HardwareState
  })
}

const line = (text: string, name: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(name))

describe('WorkbenchMetrics', () => {
  it('counts a load and an unload that no snapshot ever showed', async () => {
    const hub = new EventHub()
    const metrics = metricsOn(hub)
    // Snapshots before and after show no placement: the load and unload came and went between.
    hub.emit('devices:changed', snapshot(0))
    hub.emit('devices:activity', {
      kind: 'load',
      deviceId: 'cpu:0',
      groupId: 'g',
      outcome: 'ok',
      seconds: 0.04
    })
    hub.emit('devices:activity', { kind: 'unload', deviceId: 'cpu:0', groupId: 'g', seconds: 0.02 })
    hub.emit('devices:activity', {
      kind: 'load',
      deviceId: 'cpu:0',
      groupId: 'h',
      outcome: 'failed',
      seconds: null
    })
    hub.emit('devices:changed', snapshot(0.06))
    const { text } = await metrics.render()
    expect(text).toMatch(/^talkative_device_loads_total\{device="cpu:0",outcome="ok"\} 1$/m)
    expect(text).toMatch(/^talkative_device_loads_total\{device="cpu:0",outcome="failed"\} 1$/m)
    expect(text).toMatch(/^talkative_device_load_seconds_count\{device="cpu:0"\} 1$/m)
    expect(text).toMatch(/^talkative_device_load_seconds_bucket\{le="0.05",device="cpu:0"\} 1$/m)
    expect(text).toMatch(/^talkative_device_unloads_total\{device="cpu:0"\} 1$/m)
    expect(text).toMatch(/^talkative_device_unload_seconds_count\{device="cpu:0"\} 1$/m)
    metrics.close()
  })

  it('adds up busy time from the cumulative figure, however few snapshots arrive', async () => {
    const hub = new EventHub()
    const metrics = metricsOn(hub)
    hub.emit('devices:changed', snapshot(1.5))
    hub.emit('devices:changed', snapshot(1.5))
    hub.emit('devices:changed', snapshot(4))
    expect(line((await metrics.render()).text, 'talkative_device_busy_seconds_total{')).toBe(
      'talkative_device_busy_seconds_total{device="cpu:0"} 4'
    )
    // A figure below the last one is a new manager counting from zero again.
    hub.emit('devices:changed', snapshot(0.5))
    expect(line((await metrics.render()).text, 'talkative_device_busy_seconds_total{')).toBe(
      'talkative_device_busy_seconds_total{device="cpu:0"} 4.5'
    )
    metrics.close()
  })
})
