import { describe, expect, it } from 'vitest'
import { runCommand, type CommandOutcome, type CommandRunner } from '../platform/commandRunner'
import { NVIDIA_SMI_ARGS, parseNvidiaSmiCsv, queryNvidiaGpus } from './nvidiaSmi'

const MIB = 1024 * 1024

// Shapes as nvidia-smi prints them with --format=csv,noheader,nounits.
const TWO_H100 = [
  '0, GPU-4c8d1a2e-7f3b-9a61-0d2c-5e8f1b3a7c90, NVIDIA H100 80GB HBM3, 81559, 1024, 80535, 37',
  '1, GPU-9e0f2b4d-1c3a-5e7f-8a9b-0c1d2e3f4a5b, NVIDIA H100 80GB HBM3, 81559, 0, 81559, 0',
  ''
].join('\n')

function recorded(outcome: Partial<CommandOutcome>): CommandRunner & { calls: string[][] } {
  const calls: string[][] = []
  const run = (async (command: string, args: readonly string[]) => {
    calls.push([command, ...args])
    return { stdout: '', stderr: '', exitCode: 0, ...outcome }
  }) as unknown as CommandRunner & { calls: string[][] }
  run.calls = calls
  return run
}

describe('parseNvidiaSmiCsv', () => {
  it('reads every GPU with a stable id, bytes and a 0..1 utilisation', () => {
    const { gpus, skipped } = parseNvidiaSmiCsv(TWO_H100)
    expect(skipped).toEqual([])
    expect(gpus).toHaveLength(2)
    expect(gpus[0]).toEqual({
      id: 'cuda:0',
      kind: 'gpu',
      index: 0,
      uuid: 'GPU-4c8d1a2e-7f3b-9a61-0d2c-5e8f1b3a7c90',
      name: 'NVIDIA H100 80GB HBM3',
      memoryTotalBytes: 81559 * MIB,
      memoryUsedBytes: 1024 * MIB,
      memoryFreeBytes: 80535 * MIB,
      utilization: 0.37
    })
    expect(gpus[1]!.id).toBe('cuda:1')
  })

  it('keeps a product name that contains a comma', () => {
    const { gpus } = parseNvidiaSmiCsv('0, GPU-abc, Quadro RTX 8000, Rev. A, 48601, 10, 48591, 5\n')
    expect(gpus[0]!.name).toBe('Quadro RTX 8000, Rev. A')
    expect(gpus[0]!.memoryFreeBytes).toBe(48591 * MIB)
  })

  it('treats [N/A] and [Not Supported] as missing figures, deriving what it can', () => {
    const { gpus } = parseNvidiaSmiCsv(
      '0, GPU-x, NVIDIA GeForce RTX 3090, 24576, [N/A], 20480, [Not Supported]\r\n'
    )
    expect(gpus[0]!.memoryUsedBytes).toBe(4096 * MIB)
    expect(gpus[0]!.utilization).toBe(0)
  })

  it('orders GPUs by index and reports lines it cannot read', () => {
    const { gpus, skipped } = parseNvidiaSmiCsv(
      '2, GPU-c, A100, 40960, 0, 40960, 0\nNo devices were found\n0, GPU-a, A100, 40960, 0, 40960, 1\n'
    )
    expect(gpus.map((g) => g.id)).toEqual(['cuda:0', 'cuda:2'])
    expect(skipped).toEqual(['No devices were found'])
  })
})

describe('queryNvidiaGpus', () => {
  it('asks nvidia-smi for exactly the documented query', async () => {
    const run = recorded({ stdout: TWO_H100 })
    const result = await queryNvidiaGpus(run)
    expect(run.calls[0]).toEqual(['nvidia-smi', ...NVIDIA_SMI_ARGS])
    expect(result.gpus).toHaveLength(2)
    expect(result.note).toBeUndefined()
  })

  it('a missing nvidia-smi is a normal CPU-only state with a note', async () => {
    const result = await queryNvidiaGpus(recorded({ exitCode: null, spawnError: 'ENOENT' }))
    expect(result).toEqual({ gpus: [], note: expect.stringMatching(/nvidia-smi not found/) })
  })

  it('a driver failure becomes a note quoting nvidia-smi', async () => {
    const result = await queryNvidiaGpus(
      recorded({
        exitCode: 9,
        stdout:
          "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n"
      })
    )
    expect(result.gpus).toEqual([])
    expect(result.note).toMatch(/^nvidia-smi failed \(exit 9\): NVIDIA-SMI has failed/)
  })

  it('a hung nvidia-smi becomes a note, not a hang', async () => {
    const result = await queryNvidiaGpus(
      recorded({ exitCode: null, spawnError: 'timeout' }),
      'nvidia-smi',
      5000
    )
    expect(result.note).toMatch(/did not answer within 5 s/)
  })

  it('the real runner reports a missing binary as ENOENT and a failing one by exit code', async () => {
    const missing = await runCommand('talkative-no-such-binary-xyz', [], { timeoutMs: 2000 })
    expect(missing.spawnError).toBe('ENOENT')
    const failing = await runCommand(process.execPath, ['-e', 'process.exit(3)'], {
      timeoutMs: 5000
    })
    expect(failing.exitCode).toBe(3)
    const ok = await runCommand(
      process.execPath,
      ['-e', 'console.log("0, GPU-z, T4, 15360, 0, 15360, 0")'],
      {
        timeoutMs: 5000
      }
    )
    expect(parseNvidiaSmiCsv(ok.stdout).gpus[0]!.name).toBe('T4')
  })

  it('this machine answers without throwing, GPU or not', async () => {
    const result = await queryNvidiaGpus(runCommand)
    if (result.gpus.length === 0) expect(result.note).toBeTruthy()
    for (const gpu of result.gpus) expect(gpu.id).toMatch(/^cuda:\d+$/)
  })
})
