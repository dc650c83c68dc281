/**
 * Per-process GPU memory from `nvidia-smi --query-compute-apps`: what a device worker really holds
 * on its GPU (ONNX Runtime's arena included), as opposed to the bundle's estimate.
 */
import type { CommandRunner } from '../platform/commandRunner'

export const COMPUTE_APPS_ARGS: readonly string[] = [
  '--query-compute-apps=pid,gpu_uuid,used_memory',
  '--format=csv,noheader,nounits'
]

export interface ComputeApp {
  pid: number
  gpuUuid: string
  usedBytes: number
}

/** Parses the CSV; skips lines it cannot read (`[N/A]` memory under some drivers). */
export function parseComputeApps(stdout: string): ComputeApp[] {
  const out: ComputeApp[] = []
  for (const line of stdout.split(/\r?\n/)) {
    const cells = line.split(',').map((c) => c.trim())
    const [pidCell, gpuUuid, mibCell] = cells
    if (pidCell === undefined || gpuUuid === undefined || mibCell === undefined) continue
    const pid = Number(pidCell)
    const mib = Number(mibCell)
    if (!Number.isInteger(pid) || !Number.isFinite(mib)) continue
    out.push({ pid, gpuUuid, usedBytes: Math.round(mib * 1024 * 1024) })
  }
  return out
}

/**
 * Bytes process `pid` holds on the GPU with `gpuUuid` (0 when it holds none there), or null when
 * nvidia-smi cannot tell.
 */
export async function gpuProcessBytes(
  run: CommandRunner,
  pid: number,
  gpuUuid: string,
  command = 'nvidia-smi'
): Promise<number | null> {
  const res = await run(command, COMPUTE_APPS_ARGS, { timeoutMs: 5000 })
  if (res.exitCode !== 0) return null
  return parseComputeApps(res.stdout)
    .filter((a) => a.pid === pid && (a.gpuUuid === gpuUuid || gpuUuid === ''))
    .reduce((sum, a) => sum + a.usedBytes, 0)
}
