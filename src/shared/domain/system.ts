import { z } from 'zod'

/** Stable device id: `cpu`, `cpu:N` (virtual CPU devices), `cuda:N` (NVIDIA GPU index N). */
export const DeviceIdSchema = z
  .string()
  .regex(/^(cpu(:\d+)?|cuda:\d+)$/, 'device id must be cpu, cpu:N or cuda:N')
export type DeviceId = z.infer<typeof DeviceIdSchema>

export const ExecutionProviderSchema = z.enum(['cpu', 'cuda', 'webgpu'])
export type ExecutionProvider = z.infer<typeof ExecutionProviderSchema>

export const CpuInfoSchema = z.object({
  id: z.literal('cpu'),
  kind: z.literal('cpu'),
  name: z.string(),
  cores: z.number().int().nonnegative(),
  memoryTotalBytes: z.number().nonnegative(),
  memoryFreeBytes: z.number().nonnegative(),
  /** Load average over the last minute divided by the core count, 0..1 (may exceed 1). */
  utilization: z.number().nonnegative()
})
export type CpuInfo = z.infer<typeof CpuInfoSchema>

export const GpuInfoSchema = z.object({
  id: z.string(),
  kind: z.literal('gpu'),
  index: z.number().int().nonnegative(),
  uuid: z.string(),
  name: z.string(),
  memoryTotalBytes: z.number().nonnegative(),
  memoryUsedBytes: z.number().nonnegative(),
  memoryFreeBytes: z.number().nonnegative(),
  /** 0..1 */
  utilization: z.number().nonnegative()
})
export type GpuInfo = z.infer<typeof GpuInfoSchema>

export const ProviderProbeSchema = z.object({
  provider: ExecutionProviderSchema,
  available: z.boolean(),
  /** Why a provider cannot create a session here (the ONNX Runtime error, shortened). */
  error: z.string().optional()
})
export type ProviderProbe = z.infer<typeof ProviderProbeSchema>

export const HardwareStateSchema = z.object({
  cpu: CpuInfoSchema,
  gpus: z.array(GpuInfoSchema),
  /** Why no GPU list could be read (e.g. `nvidia-smi` missing). Not an error: a normal state. */
  gpuNote: z.string().optional(),
  onnxRuntimeVersion: z.string(),
  providers: z.array(ProviderProbeSchema),
  appVersion: z.string(),
  takenAt: z.number()
})
export type HardwareState = z.infer<typeof HardwareStateSchema>
