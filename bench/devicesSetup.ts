/**
 * What the devices benches share: this machine's CPU as the only device, a model library in a
 * fresh temporary folder that holds the demo group, the burst's sentences, and their small helpers.
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

/** The demo group every devices bench runs. */
export const DEMO_GROUP = 'demo-words'

/** The short analyses of a burst, cycled through by job. */
export const BURST_TEXTS: readonly string[] = [
  'The cat sat on the red chair.',
  'A dog ran to the river in the morning.',
  'The old farmer sold cheese at the market.',
  'My sister read a book in the library.'
]

/** The number after `name` on the command line, or `fallback`. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

/** The upper median (0 for none). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}
