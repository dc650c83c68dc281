import { afterEach, describe, expect, it } from 'vitest'
import { probeProviders } from '../engine'
import type { CommandRunner } from '../platform/commandRunner'
import { createServices, type Services } from './createServices'

function gpuRunner(usedMiB: () => number): CommandRunner {
  return async () => ({
    stdout: `0, GPU-1111, NVIDIA L4, 23034, ${usedMiB()}, ${23034 - usedMiB()}, 12\n`,
    stderr: '',
    exitCode: 0
  })
}

// Fixed CPU figures so "did anything change" depends only on the GPU reading under test.
const steadyOs = {
  cpus: () => [{ model: 'Test CPU' }, { model: 'Test CPU' }],
  totalmem: () => 8 * 1024 ** 3,
  freemem: () => 4 * 1024 ** 3,
  loadavg: () => [0.5, 0.5, 0.5]
}

describe('the composition root', () => {
  let services: Services | undefined
  afterEach(async () => {
    await services?.dispose()
    services = undefined
  })

  it('polls only while a client listens, and pushes only when figures change', async () => {
    let used = 100
    services = createServices({
      os: steadyOs,
      runCommand: gpuRunner(() => used),
      probeProviders: () => probeProviders(['cpu']),
      pollIntervalMs: 20
    })
    const { hub, system } = services
    expect(system.polling).toBe(false)

    const seen: number[] = []
    const unsubscribe = hub.subscribe((channel, payload) => {
      if (channel === 'system:changed') {
        const state = payload as { gpus: Array<{ memoryUsedBytes: number }> }
        seen.push(state.gpus[0]!.memoryUsedBytes / 1024 ** 2)
      }
    })
    expect(system.polling).toBe(true)
    await expect.poll(() => seen.length).toBe(1)
    // Same figures for several periods: nothing new is pushed.
    await new Promise((r) => setTimeout(r, 120))
    expect(seen).toEqual([100])
    used = 2000
    await expect.poll(() => seen.at(-1)).toBe(2000)
    expect(seen).toEqual([100, 2000])

    unsubscribe()
    expect(system.polling).toBe(false)
    used = 3000
    await new Promise((r) => setTimeout(r, 100))
    expect(seen).toEqual([100, 2000])
  })
})
