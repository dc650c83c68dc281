import { describe, expect, it } from 'vitest'
import type { HardwareState } from '@shared/domain/system'
import { parseBytes, parseDeviceSpecs, resolveDevices } from './config'

const GiB = 1024 ** 3

function hardware(extra: Partial<HardwareState> = {}): HardwareState {
  return {
    cpu: {
      id: 'cpu',
      kind: 'cpu',
      name: 'Test CPU',
      cores: 8,
      memoryTotalBytes: 32 * GiB,
      memoryFreeBytes: 20 * GiB,
      utilization: 0
    },
    gpus: [],
    onnxRuntimeVersion: '1.30.0',
    providers: [
      { provider: 'cpu', available: true },
      { provider: 'webgpu', available: false, error: 'Failed to get a WebGPU adapter' },
      { provider: 'cuda', available: false, error: 'libonnxruntime_providers_shared.so missing' }
    ],
    appVersion: '0.1.0',
    takenAt: 0,
    ...extra
  }
}

const gpu = (index: number) => ({
  id: `cuda:${index}`,
  kind: 'gpu' as const,
  index,
  uuid: `GPU-${index}`,
  name: 'NVIDIA H100',
  memoryTotalBytes: 80 * GiB,
  memoryUsedBytes: 0,
  memoryFreeBytes: 80 * GiB,
  utilization: 0
})

describe('TALKATIVE_DEVICES', () => {
  it('reads the compact form', () => {
    expect(parseDeviceSpecs('cpu:0,threads=1,budget=512MiB; cpu:1,threads=2,share=0.25')).toEqual([
      { id: 'cpu:0', threads: 1, budgetBytes: 512 * 1024 ** 2 },
      { id: 'cpu:1', threads: 2, memoryShare: 0.25 }
    ])
  })

  it('reads JSON', () => {
    expect(parseDeviceSpecs('[{"id":"cuda:0","provider":"webgpu"}]')).toEqual([
      { id: 'cuda:0', provider: 'webgpu' }
    ])
  })

  it.each([
    ['gpu:0', /TALKATIVE_DEVICES\.0\.id/],
    ['cpu:0,threads=-1', /threads/],
    ['cpu:0,budget=lots', /budget: "lots" is not a size/],
    ['cpu:0,colour=red', /unknown key/],
    ['cpu:0;cpu:0', /listed twice/],
    ['cpu;cpu:1', /either cpu or cpu:N/],
    ['[{"id":"cpu:0",', /bad JSON/]
  ])('rejects %s naming the problem', (text, message) => {
    expect(() => parseDeviceSpecs(text)).toThrowError(message)
  })

  it('parses sizes', () => {
    expect(parseBytes('2GiB', 'x')).toBe(2 * GiB)
    expect(parseBytes('1.5 GB', 'x')).toBe(1.5e9)
    expect(parseBytes('1000', 'x')).toBe(1000)
  })
})

describe('resolveDevices', () => {
  it('defaults to the CPU (half the RAM) plus every GPU', () => {
    const devices = resolveDevices(
      hardware({
        gpus: [gpu(0)],
        providers: [
          { provider: 'cpu', available: true },
          { provider: 'cuda', available: true }
        ]
      }),
      undefined
    )
    expect(devices.map((d) => [d.id, d.provider, d.budgetBytes])).toEqual([
      ['cpu', 'cpu', 16 * GiB],
      ['cuda:0', 'cuda', 80 * GiB]
    ])
  })

  it('gives virtual CPU devices their own budget and threads', () => {
    const devices = resolveDevices(hardware(), [
      { id: 'cpu:0', threads: 1, budgetBytes: GiB },
      { id: 'cpu:1' }
    ])
    expect(devices.map((d) => [d.id, d.virtual, d.threads, d.budgetBytes])).toEqual([
      ['cpu:0', true, 1, GiB],
      ['cpu:1', true, 4, 8 * GiB]
    ])
  })

  it('uses WebGPU for a GPU when CUDA cannot start', () => {
    const hw = hardware({
      gpus: [gpu(0)],
      providers: [
        { provider: 'cpu', available: true },
        { provider: 'cuda', available: false, error: 'no CUDA' },
        { provider: 'webgpu', available: true }
      ]
    })
    expect(resolveDevices(hw, undefined)[1]).toMatchObject({ id: 'cuda:0', provider: 'webgpu' })
  })

  it('never falls back to the CPU: a GPU whose providers cannot start carries the error', () => {
    const g = resolveDevices(hardware({ gpus: [gpu(0)] }), undefined)[1]!
    expect(g.provider).toBeNull()
    expect(g.providerError).toMatch(
      /no GPU execution provider can start: cuda: libonnxruntime_providers_shared.so missing; webgpu: Failed to get a WebGPU adapter/
    )
  })

  it('a forced provider that cannot start is an error, not a substitute', () => {
    const g = resolveDevices(hardware({ gpus: [gpu(0)] }), [{ id: 'cuda:0', provider: 'cuda' }])[0]!
    expect(g.provider).toBeNull()
    expect(g.providerError).toMatch(/^cuda: /)
  })

  it('a configured GPU that does not exist is listed with why', () => {
    const [g] = resolveDevices(hardware({ gpuNote: 'nvidia-smi not found' }), [{ id: 'cuda:3' }])
    expect(g).toMatchObject({
      id: 'cuda:3',
      provider: null,
      providerError: 'no GPU with index 3 (nvidia-smi not found)'
    })
  })
})
