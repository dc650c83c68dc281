import * as os from 'node:os'
import { describe, expect, it } from 'vitest'
import { HardwareStateSchema } from '@shared/domain/system'
import { probeProviders } from '../engine'
import type { CommandRunner } from '../platform/commandRunner'
import { SystemService, summarizeProviderError } from './systemService'

const noNvidiaSmi: CommandRunner = async () => ({
  stdout: '',
  stderr: '',
  exitCode: null,
  spawnError: 'ENOENT'
})

// Fixed CPU figures so "did anything change" depends only on the GPU reading under test.
const steadyOs = {
  cpus: () => [{ model: 'Test CPU' }, { model: 'Test CPU' }],
  totalmem: () => 8 * 1024 ** 3,
  freemem: () => 4 * 1024 ** 3,
  loadavg: () => [0.5, 0.5, 0.5]
}

describe('summarizeProviderError', () => {
  it('keeps the sentence after the C++ location and assertion', () => {
    const raw =
      '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters'
    expect(summarizeProviderError(raw)).toBe(
      'Failed to get a WebGPU adapter: No supported adapters'
    )
  })

  it('drops the clause a length cut went through', () => {
    const cut =
      `${'/x/y.cc:1 a was false. '}Failed to get a WebGPU adapter: No supported ad`.padEnd(300, 'x')
    expect(summarizeProviderError(cut.slice(0, 300), 300)).toBe('Failed to get a WebGPU adapter')
  })

  it('strips the [ONNXRuntimeError] preamble and short messages stay as they are', () => {
    expect(
      summarizeProviderError(
        '/src/provider_bridge_ort.cc:1988 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load library libonnxruntime_providers_shared.so'
      )
    ).toBe('Failed to load library libonnxruntime_providers_shared.so')
    expect(
      summarizeProviderError(
        'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'
      )
    ).toBe('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library')
  })
})

describe('SystemService', () => {
  it('reports this machine: real CPU and memory, probed providers, schema-valid', async () => {
    const emitted: unknown[] = []
    const system = new SystemService({
      os,
      runCommand: noNvidiaSmi,
      probeProviders,
      ortVersion: () => '1.30.0',
      appVersion: '0.1.0',
      emit: (_c, p) => emitted.push(p)
    })
    const state = await system.state()
    expect(HardwareStateSchema.parse(state)).toEqual(state)
    expect(state.cpu.id).toBe('cpu')
    expect(state.cpu.cores).toBe(os.cpus().length)
    expect(state.cpu.name).toBe(os.cpus()[0]!.model.trim())
    expect(state.cpu.memoryTotalBytes).toBe(os.totalmem())
    expect(state.cpu.memoryFreeBytes).toBeGreaterThan(0)
    expect(state.gpus).toEqual([])
    expect(state.gpuNote).toMatch(/nvidia-smi not found/)
    const cpu = state.providers.find((p) => p.provider === 'cpu')
    expect(cpu).toEqual({ provider: 'cpu', available: true })
    for (const p of state.providers.filter((x) => !x.available)) {
      expect(p.error).toBeTruthy()
      expect(p.error!.length).toBeLessThanOrEqual(260)
      expect(p.error).not.toMatch(/onnxruntime_src|\.cc:\d+/)
    }
    expect(emitted).toEqual([])
  })

  it('probes providers once and reuses the answer', async () => {
    let probes = 0
    const system = new SystemService({
      os: steadyOs,
      runCommand: noNvidiaSmi,
      probeProviders: async () => {
        probes++
        return probeProviders(['cpu'])
      },
      ortVersion: () => 'x',
      appVersion: '0',
      emit: () => undefined
    })
    system.start()
    await Promise.all([system.state(), system.state(), system.state()])
    expect(probes).toBe(1)
  })

  it('hands out one reading while it is recent, shares one under way, reads again when old', async () => {
    let runs = 0
    let now = 1000
    const system = new SystemService({
      os: steadyOs,
      runCommand: async () => {
        runs++
        return { stdout: '', stderr: '', exitCode: null, spawnError: 'ENOENT' }
      },
      probeProviders: async () => probeProviders(['cpu']),
      ortVersion: () => 'x',
      appVersion: '0',
      emit: () => undefined,
      maxAgeMs: 500,
      now: () => now
    })
    const [a, b] = await Promise.all([system.state(), system.state()])
    expect(runs).toBe(1)
    expect(b).toBe(a)
    for (let i = 0; i < 100; i++) await system.state()
    expect(runs).toBe(1)
    now += 499
    expect(await system.state()).toBe(a)
    now += 1
    await system.state()
    expect(runs).toBe(2)
  })

  it('explains an uninstalled CUDA provider with the command that installs it', async () => {
    const system = new SystemService({
      os: steadyOs,
      runCommand: noNvidiaSmi,
      probeProviders: async () => [
        {
          provider: 'cuda',
          available: false,
          error: 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'
        }
      ],
      ortVersion: () => 'x',
      appVersion: '0',
      emit: () => undefined
    })
    const [cuda] = await system.providers()
    expect(cuda!.error).toMatch(/npm run install:cuda/)
  })
})
