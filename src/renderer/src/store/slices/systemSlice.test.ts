import { describe, expect, it } from 'vitest'
import { initialAppState } from '../index'
import { selectDevices, selectProviders } from '../selectors'
import { failedSystemState, receivedSystemState, type SystemSnapshot } from './systemSlice'

function snapshot(takenAt: number, extra: Record<string, unknown> = {}): SystemSnapshot {
  return {
    cpu: {
      id: 'cpu',
      kind: 'cpu',
      name: 'CPU',
      cores: 8,
      memoryTotalBytes: 16,
      memoryFreeBytes: 8,
      utilization: 0.1
    },
    gpus: [
      {
        id: 'cuda:1',
        kind: 'gpu',
        index: 1,
        uuid: 'b',
        name: 'B',
        memoryTotalBytes: 8,
        memoryUsedBytes: 1,
        memoryFreeBytes: 7,
        utilization: 0
      },
      {
        id: 'cuda:0',
        kind: 'gpu',
        index: 0,
        uuid: 'a',
        name: 'A',
        memoryTotalBytes: 8,
        memoryUsedBytes: 1,
        memoryFreeBytes: 7,
        utilization: 0
      }
    ],
    onnxRuntimeVersion: '1.30.0',
    providers: [{ provider: 'cpu', available: true }],
    appVersion: '0.1.0',
    takenAt,
    ...extra
  }
}

describe('system slice', () => {
  it('starts connecting with nothing to show', () => {
    expect(initialAppState.system).toEqual({
      status: 'connecting',
      snapshot: null,
      error: null,
      updates: 0
    })
    expect(selectDevices(initialAppState)).toEqual([])
    expect(selectProviders(initialAppState)).toEqual([])
  })

  it('shows the CPU first, then GPUs by index', () => {
    const state = receivedSystemState(initialAppState, snapshot(1), false)
    expect(state.system.status).toBe('ready')
    expect(selectDevices(state).map((d) => d.id)).toEqual(['cpu', 'cuda:0', 'cuda:1'])
  })

  it('keeps fields other domains add to system:state', () => {
    const state = receivedSystemState(
      initialAppState,
      snapshot(1, { placements: [{ groupId: 'g' }] }),
      true
    )
    expect(state.system.snapshot?.placements).toEqual([{ groupId: 'g' }])
    expect(state.system.updates).toBe(1)
  })

  it("a pushed hardware update keeps the other domains' part of the last full state", () => {
    const full = receivedSystemState(initialAppState, snapshot(1, { queue: { running: 1 } }), false)
    const pushed = receivedSystemState(full, snapshot(2), true)
    expect(pushed.system.snapshot?.queue).toEqual({ running: 1 })
    expect(pushed.system.snapshot?.takenAt).toBe(2)
  })

  it('never lets an older answer replace a newer pushed snapshot', () => {
    const newer = receivedSystemState(initialAppState, snapshot(20), true)
    expect(receivedSystemState(newer, snapshot(10), false)).toBe(newer)
  })

  it('an error keeps the last figures and says why', () => {
    const ready = receivedSystemState(initialAppState, snapshot(1), false)
    const failed = failedSystemState(ready, { code: 'unavailable', message: 'host closed' })
    expect(failed.system.status).toBe('error')
    expect(failed.system.snapshot).toBe(ready.system.snapshot)
    expect(failed.system.error?.message).toBe('host closed')
  })
})
