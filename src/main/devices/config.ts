/**
 * Which devices the manager places groups on. By default: the CPU plus every GPU `nvidia-smi`
 * lists. `TALKATIVE_DEVICES` replaces that list (documented in docs/devices.md):
 *
 *   TALKATIVE_DEVICES='cpu:0,threads=1,budget=1GiB;cpu:1,threads=1,budget=1GiB'
 *   TALKATIVE_DEVICES='[{"id":"cpu:0","threads":1},{"id":"cuda:0","provider":"webgpu"}]'
 *   TALKATIVE_DEVICES=@/path/to/devices.json      (a JSON array of the same objects)
 *
 * Keys: `threads` (intra-op threads, 0 = ONNX Runtime's default), `budget` (bytes; suffixes
 * KiB/MiB/GiB/KB/MB/GB), `share` (0..1 of RAM or GPU memory), `provider` (cuda | webgpu | cpu).
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { DeviceSpecSchema, type DeviceSpec } from '@shared/domain/devices'
import type { ExecutionProvider, HardwareState } from '@shared/domain/system'
import { AppError, describeZodError } from '@shared/ipc/errors'

/** Default share of RAM all CPU devices together may fill with model groups. */
export const DEFAULT_CPU_MEMORY_SHARE = 0.5

export interface DeviceDescriptor {
  id: string
  kind: 'cpu' | 'gpu'
  name: string
  virtual: boolean
  provider: ExecutionProvider | null
  /** Why this device cannot run anything (provider cannot start, GPU missing). */
  providerError?: string
  threads: number
  budgetBytes: number
  /** GPU index for cuda / webgpu sessions and nvidia-smi. */
  gpuIndex?: number
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3
}

export function parseBytes(text: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined
  if (!m || unit === undefined) {
    throw new AppError(
      'invalid_input',
      `${field}: "${text}" is not a size (e.g. 512MiB, 2GiB, 1000000)`,
      { field }
    )
  }
  return Math.round(Number(m[1]) * unit)
}

function parseCompact(text: string): unknown[] {
  return text
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry, i) => {
      const [id, ...pairs] = entry.split(',').map((s) => s.trim())
      const spec: Record<string, unknown> = { id }
      for (const pair of pairs) {
        const eq = pair.indexOf('=')
        const key = eq < 0 ? pair : pair.slice(0, eq).trim()
        const value = eq < 0 ? '' : pair.slice(eq + 1).trim()
        const field = `TALKATIVE_DEVICES[${i}].${key}`
        if (key === 'threads') spec.threads = Number(value)
        else if (key === 'budget') spec.budgetBytes = parseBytes(value, field)
        else if (key === 'share') spec.memoryShare = Number(value)
        else if (key === 'provider') spec.provider = value
        else
          throw new AppError(
            'invalid_input',
            `${field}: unknown key (threads, budget, share, provider)`,
            { field }
          )
      }
      return spec
    })
}

/** Parses the `TALKATIVE_DEVICES` value (compact, JSON, or `@file` with JSON). */
export function parseDeviceSpecs(text: string): DeviceSpec[] {
  let raw: unknown
  const trimmed = text.trim()
  if (trimmed.startsWith('@')) {
    const file = trimmed.slice(1)
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new AppError(
        'invalid_input',
        `TALKATIVE_DEVICES: cannot read ${file}: ${(err as Error).message}`,
        { file }
      )
    }
  } else if (trimmed.startsWith('[')) {
    try {
      raw = JSON.parse(trimmed)
    } catch (err) {
      throw new AppError('invalid_input', `TALKATIVE_DEVICES: bad JSON: ${(err as Error).message}`)
    }
  } else {
    raw = parseCompact(trimmed)
  }
  const parsed = z.array(DeviceSpecSchema).min(1).safeParse(raw)
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error, 'TALKATIVE_DEVICES')
    throw new AppError('invalid_input', message, { field })
  }
  const seen = new Set<string>()
  for (const s of parsed.data) {
    if (seen.has(s.id))
      throw new AppError('invalid_input', `TALKATIVE_DEVICES: device ${s.id} is listed twice`)
    if (s.id === 'cpu' && parsed.data.some((o) => o.id.startsWith('cpu:'))) {
      throw new AppError(
        'invalid_input',
        'TALKATIVE_DEVICES: use either cpu or cpu:N devices, not both'
      )
    }
    seen.add(s.id)
  }
  return parsed.data
}

/** Device specs from the environment, or undefined for the default (CPU + every GPU). */
export function deviceSpecsFromEnv(env: NodeJS.ProcessEnv = process.env): DeviceSpec[] | undefined {
  const v = env.TALKATIVE_DEVICES
  return v && v.trim() ? parseDeviceSpecs(v) : undefined
}

function providerError(hardware: HardwareState, provider: ExecutionProvider): string | undefined {
  const probe = hardware.providers.find((p) => p.provider === provider)
  if (!probe) return `${provider} was not probed`
  return probe.available ? undefined : `${provider}: ${probe.error ?? 'cannot start'}`
}

/**
 * Turns the hardware state and the configured specs into placement targets. A device whose
 * provider cannot start keeps its error; nothing falls back silently to another provider.
 */
export function resolveDevices(
  hardware: HardwareState,
  specs: readonly DeviceSpec[] | undefined,
  cpuMemoryShare = DEFAULT_CPU_MEMORY_SHARE
): DeviceDescriptor[] {
  const list: DeviceSpec[] = specs
    ? [...specs]
    : [{ id: 'cpu' }, ...hardware.gpus.map((g) => ({ id: `cuda:${g.index}` }))]
  const cpuCount = list.filter((s) => s.id === 'cpu' || s.id.startsWith('cpu:')).length
  const ram = hardware.cpu.memoryTotalBytes
  return list.map((spec): DeviceDescriptor => {
    if (spec.id === 'cpu' || spec.id.startsWith('cpu:')) {
      const isVirtual = spec.id !== 'cpu'
      const share = spec.memoryShare ?? cpuMemoryShare / Math.max(1, cpuCount)
      const requested = spec.provider ?? 'cpu'
      const err =
        requested === 'cpu'
          ? providerError(hardware, 'cpu')
          : `${spec.id}: a CPU device runs the cpu provider, not ${requested}`
      return {
        id: spec.id,
        kind: 'cpu',
        name: isVirtual ? `${hardware.cpu.name} (virtual ${spec.id})` : hardware.cpu.name,
        virtual: isVirtual,
        provider: err ? null : 'cpu',
        providerError: err,
        threads:
          spec.threads ?? (isVirtual ? Math.max(1, Math.floor(hardware.cpu.cores / cpuCount)) : 0),
        budgetBytes: spec.budgetBytes ?? Math.floor(ram * share)
      }
    }
    const index = Number(spec.id.slice('cuda:'.length))
    const gpu = hardware.gpus.find((g) => g.index === index)
    const base = { id: spec.id, kind: 'gpu' as const, virtual: false, threads: 0, gpuIndex: index }
    if (!gpu) {
      return {
        ...base,
        name: `GPU ${index}`,
        provider: null,
        providerError: `no GPU with index ${index} (${hardware.gpus.length ? `nvidia-smi lists ${hardware.gpus.map((g) => g.index).join(', ')}` : (hardware.gpuNote ?? 'no GPUs found')})`,
        budgetBytes: spec.budgetBytes ?? 0
      }
    }
    const budgetBytes =
      spec.budgetBytes ?? Math.floor(gpu.memoryTotalBytes * (spec.memoryShare ?? 1))
    if (spec.provider) {
      const err =
        spec.provider === 'cpu'
          ? `${spec.id}: a GPU device cannot run the cpu provider`
          : providerError(hardware, spec.provider)
      return {
        ...base,
        name: gpu.name,
        provider: err ? null : spec.provider,
        providerError: err,
        budgetBytes
      }
    }
    const cudaErr = providerError(hardware, 'cuda')
    if (!cudaErr) return { ...base, name: gpu.name, provider: 'cuda', budgetBytes }
    const webgpuErr = providerError(hardware, 'webgpu')
    if (!webgpuErr) return { ...base, name: gpu.name, provider: 'webgpu', budgetBytes }
    return {
      ...base,
      name: gpu.name,
      provider: null,
      providerError: `no GPU execution provider can start: ${cudaErr}; ${webgpuErr}`,
      budgetBytes
    }
  })
}
