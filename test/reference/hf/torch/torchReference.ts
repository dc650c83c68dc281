/**
 * Runs the separately written PyTorch reference (hf_torch_reference.py) on Debian's python3-torch.
 * Test-only: the cross-check of the TypeScript float64 reference.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { at } from '../checked'
import type { HfConfigJson, HfTensors } from '../types'

/** Debian's interpreter: the one with python3-torch (a pyenv `python3` may come first on PATH). */
export const DEBIAN_PYTHON = '/usr/bin/python3'
const SCRIPT = join(__dirname, 'hf_torch_reference.py')

export interface TorchCase {
  input_ids?: number[]
  inputs_embeds?: number[][]
  positions?: number[]
  patches?: { layer: number; row: number; vector: number[] }[]
  replace?: { layer: number; position: number; vector: number[] }
  greedy?: number
}

export interface TorchResult {
  block_outputs: number[][][]
  logits: number[][]
  logits_no_softcap: number[][]
  greedy?: number[]
}

/** Why the PyTorch cross-check cannot run here, or null when it can. */
export function torchUnavailableReason(): string | null {
  if (!existsSync(DEBIAN_PYTHON)) return `${DEBIAN_PYTHON} not found`
  const probe = spawnSync(DEBIAN_PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' })
  if (probe.status !== 0) {
    return `${DEBIAN_PYTHON} cannot import torch and numpy (install Debian's python3-torch): ${probe.stderr.trim().split('\n').pop() ?? ''}`
  }
  return null
}

export interface TorchModelRun {
  config: HfConfigJson
  tensors: HfTensors
  cases: TorchCase[]
}

/** One model's cases. */
export function runTorchReference(
  config: HfConfigJson,
  tensors: HfTensors,
  cases: TorchCase[]
): TorchResult[] {
  return at(runTorchReferenceBatch([{ config, tensors, cases }]), 0, 'torch reference runs')
}

/** Many models in one Python process (importing torch is most of a run's time). */
export function runTorchReferenceBatch(runs: TorchModelRun[]): TorchResult[][] {
  const models = runs.map(({ config, tensors, cases }) => {
    const encoded: Record<string, { shape: number[]; data: string }> = {}
    for (const [name, tensor] of tensors) {
      const bytes = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)
      encoded[name] = { shape: tensor.shape, data: bytes.toString('base64') }
    }
    return { config, tensors: encoded, cases }
  })
  const run = spawnSync(DEBIAN_PYTHON, [SCRIPT], {
    input: JSON.stringify({ models }),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024
  })
  if (run.status !== 0) {
    throw new Error(`hf_torch_reference.py failed (exit ${run.status}): ${run.stderr}`)
  }
  return (JSON.parse(run.stdout) as { models: { cases: TorchResult[] }[] }).models.map(
    (m) => m.cases
  )
}
