/**
 * `inspect` reads every weight of a group's base model, ONNX external data included: an imported
 * Hugging Face checkpoint with one NaN weight is imported with a warning naming the tensor, and
 * `talkative inspect` on the group then fails (exit 3, as for every bundle finding) naming the
 * external data file and the tensor. The same checkpoint without the NaN inspects clean.
 */
import { promises as fs } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { byteTokenizer } from '../fixtures/hf/byteTokenizer'
import { writeHfFolder } from '../fixtures/hf/writeHfFolder'
import { randomHfModel } from '../reference/hf/random'
import { EXIT } from '../../src/cli/commands/generate'
import { importBaseCommand } from '../../src/cli/commands/importBase'
import { inspectCommand } from '../../src/cli/commands/inspect'
import { openBundle } from '../../src/main/engine'

const tok = byteTokenizer({ specials: ['<s>', '</s>'], bos: '<s>', eos: '</s>' })
const model = randomHfModel(
  'llama',
  { hiddenSize: 16, layers: 2, heads: 2, kvHeads: 1, vocabSize: tok.size },
  { seed: 11 }
)
const VICTIM = 'model.layers.1.mlp.down_proj.weight'

const roots: string[] = []
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true })
})
afterEach(() => {
  vi.restoreAllMocks()
  process.exitCode = undefined
})

/** Runs a command in this process; returns its exit code and what it wrote. */
async function run(
  command: ReturnType<typeof inspectCommand>,
  args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const text = (chunk: string | Uint8Array): string =>
    typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += text(chunk)
    return true
  })
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += text(chunk)
    return true
  })
  await command.parseAsync(args, { from: 'user' })
  const code = Number(process.exitCode ?? 0)
  vi.restoreAllMocks()
  process.exitCode = undefined
  return { code, stdout, stderr }
}

/** Imports the model (with `poison` applied to its weights) and returns the group folder. */
async function imported(poison: boolean): Promise<{ group: string; stderr: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tw-inspect-nan-'))
  roots.push(root)
  const tensors = new Map(model.tensors)
  if (poison) {
    const t = tensors.get(VICTIM)!
    const data = Float32Array.from(t.data as ArrayLike<number>)
    data[5] = NaN
    tensors.set(VICTIM, { shape: t.shape, data })
  }
  const folder = await writeHfFolder(path.join(root, 'hf'), { config: model.config, tensors })
  await fs.writeFile(path.join(folder.dir, 'tokenizer.json'), tok.tokenizerJson)
  await fs.writeFile(path.join(folder.dir, 'tokenizer_config.json'), tok.tokenizerConfig)
  const group = path.join(root, 'group')
  const res = await run(importBaseCommand(), [folder.dir, '--out', group, '--no-progress'])
  expect(res.code, res.stderr).toBe(EXIT.ok)
  return { group, stderr: res.stderr }
}

describe('inspect scans the base model external data for NaN/Inf', () => {
  it('a clean import inspects clean', async () => {
    const { group, stderr } = await imported(false)
    expect(stderr).not.toMatch(/NaN/)
    const res = await run(inspectCommand(), [group])
    expect(res.code, res.stderr).toBe(EXIT.ok)
    expect(res.stdout).toContain('base ')
  })

  it('one NaN weight: a warning at import naming the tensor; inspect exits 3 naming the file and the tensor', async () => {
    const { group, stderr } = await imported(true)
    expect(stderr).toMatch(/warning: .*NaN/)
    expect(stderr).toContain(VICTIM)
    // Opening the group to load it does not read the weights; inspect does.
    await expect(openBundle(group)).resolves.toBeTruthy()
    const res = await run(inspectCommand(), [group])
    expect(res.code, res.stderr).toBe(EXIT.badInput)
    // The importer stores down_proj transposed, as l1.down: HF's value 5 is its value 5 × 16.
    expect(res.stderr).toContain(
      'base.onnx.data (initializer.l1.down): tensor "l1.down" of base.onnx holds 1 non-finite value (value 80 is NaN)'
    )
    const json = await run(inspectCommand(), [group, '--json'])
    expect(json.code).toBe(EXIT.badInput)
    const { error } = JSON.parse(json.stdout) as { error: { file: string; field: string } }
    expect(error).toMatchObject({ file: 'base.onnx.data', field: 'initializer.l1.down' })
  })
})
