/**
 * What the devices benches share: this machine's CPU as the only device, and a model library in a
 * fresh temporary folder that holds the demo group.
 */
import { mkdtemp } from 'node:fs/promises'
import { cpus, freemem, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import type { HardwareState } from '../src/shared/domain/system'
import { ensureDemoBundle, openBundle } from '../src/main/engine'
import { ModelLibrary } from '../src/main/devices/library'

/** This machine as a CPU-only host, its load given as a share of the cores. */
export function cpuOnlyHardware(utilization: number): HardwareState {
  return {
    cpu: {
      id: 'cpu',
      kind: 'cpu',
      name: cpus()[0]?.model ?? 'CPU',
      cores: cpus().length,
      memoryTotalBytes: totalmem(),
      memoryFreeBytes: freemem(),
      utilization
    },
    gpus: [],
    onnxRuntimeVersion: '',
    providers: [{ provider: 'cpu', available: true }],
    appVersion: '',
    takenAt: Date.now()
  }
}

/** A library over a new temporary folder (the caller removes `modelsDir`) with the demo group. */
export async function demoLibrary(
  prefix: string
): Promise<{ library: ModelLibrary; modelsDir: string }> {
  const modelsDir = await mkdtemp(join(tmpdir(), prefix))
  const library = new ModelLibrary({
    folder: modelsDir,
    openBundle,
    ensureDemoBundle: () => ensureDemoBundle()
  })
  return { library, modelsDir }
}
