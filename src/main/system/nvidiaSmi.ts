import type { GpuInfo } from '@shared/domain/system'
import type { CommandRunner } from '../platform/commandRunner'

export const NVIDIA_SMI_ARGS: readonly string[] = [
  '--query-gpu=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu',
  '--format=csv,noheader,nounits'
]

const MIB = 1024 * 1024

/** `[N/A]`, `[Not Supported]` and friends mean "no figure", not zero load. */
function parseFigure(raw: string): number | undefined {
  const text = raw.trim()
  if (text === '' || text.startsWith('[') || /^n\/?a$/i.test(text)) return undefined
  const value = Number(text)
  return Number.isFinite(value) && value >= 0 ? value : undefined
}

export interface ParsedGpuList {
  gpus: GpuInfo[]
  /** Lines that could not be read, kept so the note can say what went wrong. */
  skipped: string[]
}

/**
 * Parses `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`. The name is the only free-text
 * column, so it is taken as everything between the uuid and the last four numeric columns: a
 * product name with a comma in it still parses.
 */
export function parseNvidiaSmiCsv(stdout: string): ParsedGpuList {
  const gpus: GpuInfo[] = []
  const skipped: string[] = []
  for (const rawLine of stdout.split(/\r?\n/)) {
    const line = rawLine.trim()
    if (!line) continue
    const cells = line.split(',').map((c) => c.trim())
    if (cells.length < 7) {
      skipped.push(line)
      continue
    }
    const index = parseFigure(cells[0] ?? '')
    const uuid = cells[1]
    const tail = cells.slice(-4)
    const name = cells.slice(2, -4).join(', ')
    const [total, used, free, util] = tail.map(parseFigure)
    if (index === undefined || !Number.isInteger(index) || !uuid || !name) {
      skipped.push(line)
      continue
    }
    const totalBytes = (total ?? 0) * MIB
    const usedBytes = (used ?? (total !== undefined && free !== undefined ? total - free : 0)) * MIB
    const freeBytes = (free ?? (total !== undefined && used !== undefined ? total - used : 0)) * MIB
    gpus.push({
      id: `cuda:${index}`,
      kind: 'gpu',
      index,
      uuid,
      name,
      memoryTotalBytes: totalBytes,
      memoryUsedBytes: Math.max(0, usedBytes),
      memoryFreeBytes: Math.max(0, freeBytes),
      utilization: util === undefined ? 0 : util / 100
    })
  }
  gpus.sort((a, b) => a.index - b.index)
  return { gpus, skipped }
}

export interface GpuQuery {
  gpus: GpuInfo[]
  /** Present when the list is empty or incomplete for a reason the user may want to know. */
  note?: string
}

function firstMeaningfulLine(text: string): string {
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.length > 0)
  return line ? line.slice(0, 200) : ''
}

/** Runs nvidia-smi and turns every outcome (missing, failing, partial output) into data. */
export async function queryNvidiaGpus(
  run: CommandRunner,
  command = 'nvidia-smi',
  timeoutMs = 5000
): Promise<GpuQuery> {
  const outcome = await run(command, NVIDIA_SMI_ARGS, { timeoutMs })
  if (outcome.spawnError === 'ENOENT') {
    return { gpus: [], note: 'nvidia-smi not found: no NVIDIA GPUs listed (CPU only)' }
  }
  if (outcome.spawnError === 'timeout') {
    return { gpus: [], note: `nvidia-smi did not answer within ${Math.round(timeoutMs / 1000)} s` }
  }
  if (outcome.spawnError) {
    return { gpus: [], note: `nvidia-smi could not run (${outcome.spawnError})` }
  }
  const parsed = parseNvidiaSmiCsv(outcome.stdout)
  if (outcome.exitCode !== 0 && parsed.gpus.length === 0) {
    const reason = firstMeaningfulLine(outcome.stdout) || firstMeaningfulLine(outcome.stderr)
    return {
      gpus: [],
      note: `nvidia-smi failed (exit ${outcome.exitCode ?? 'signal'})${reason ? `: ${reason}` : ''}`
    }
  }
  if (parsed.skipped.length > 0) {
    return {
      gpus: parsed.gpus,
      note: `nvidia-smi: ${parsed.skipped.length} line(s) not understood: ${(parsed.skipped[0] ?? '').slice(0, 120)}`
    }
  }
  if (parsed.gpus.length === 0) return { gpus: [], note: 'nvidia-smi reports no GPUs' }
  return { gpus: parsed.gpus }
}
