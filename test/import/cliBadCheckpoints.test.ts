/**
 * `talkative import base` on broken checkpoints (test/fixtures/hf/badCheckpoints.ts, plus a config
 * that disagrees with the tensors): exit code 3, one stderr line naming the file (and the tensor or
 * field at fault), and nothing left next to the target. The command runs in process for every
 * case, and as the real spawned command line for two of them.
 */
import { spawn } from 'node:child_process'
import { promises as fs } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { BAD_CHECKPOINTS } from '../fixtures/hf/badCheckpoints'
import { byteTokenizer } from '../fixtures/hf/byteTokenizer'
import { writeHfFolder } from '../fixtures/hf/writeHfFolder'
import { randomHfModel } from '../reference/hf/random'
import { EXIT } from '../../src/cli/commands/generate'
import { importBaseCommand } from '../../src/cli/commands/importBase'
import { ROOT } from '../../src/cli/commands/spawnCli'

const tok = byteTokenizer({ specials: ['<s>', '</s>'], bos: '<s>', eos: '</s>' })
const model = randomHfModel(
  'llama',
  { hiddenSize: 16, layers: 2, heads: 2, kvHeads: 1, vocabSize: tok.size },
  { seed: 5 }
)

const roots: string[] = []
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true })
})
afterEach(() => {
  vi.restoreAllMocks()
  process.exitCode = undefined
})

async function fresh(): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tw-cli-bad-'))
  roots.push(root)
  return root
}

async function addTokenizer(dir: string): Promise<void> {
  await fs.writeFile(path.join(dir, 'tokenizer.json'), tok.tokenizerJson)
  await fs.writeFile(path.join(dir, 'tokenizer_config.json'), tok.tokenizerConfig)
}

/** Runs the command in this process; returns its exit code and what it wrote to stderr. */
async function runInProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = ''
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()
    return true
  })
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
  await importBaseCommand().parseAsync(args, { from: 'user' })
  const code = Number(process.exitCode ?? 0)
  vi.restoreAllMocks()
  return { code, stderr }
}

/** A folder with the model's config and weights, tokenizer files added; `edit` breaks it. */
type Broken = { dir: string; file: string; names: string[] }

const CONFIG_DISAGREES = 'configDisagreesWithShapes'

async function broken(kind: string, root: string): Promise<Broken> {
  if (kind === CONFIG_DISAGREES) {
    const config = { ...model.config, intermediate_size: 40 }
    const folder = await writeHfFolder(path.join(root, 'hf'), { config, tensors: model.tensors })
    await addTokenizer(folder.dir)
    return { dir: folder.dir, file: 'model.safetensors', names: ['mlp', '40'] }
  }
  const { folder, expect: want } = await BAD_CHECKPOINTS[kind]!(path.join(root, 'hf'), model)
  await addTokenizer(folder.dir)
  const names = [want.tensor, want.field].filter((n): n is string => n !== undefined)
  return { dir: folder.dir, file: want.file, names }
}

const KINDS = [...Object.keys(BAD_CHECKPOINTS).filter((k) => k !== 'nonFinite'), CONFIG_DISAGREES]

describe('talkative import base on a bad checkpoint', () => {
  it.each(KINDS)('%s: exit 3, the file named, nothing left behind', async (kind) => {
    const root = await fresh()
    const bad = await broken(kind, root)
    const { code, stderr } = await runInProcess([
      bad.dir,
      '--out',
      path.join(root, 'group'),
      '--no-progress'
    ])
    expect(code, stderr).toBe(EXIT.badInput)
    expect(stderr).toMatch(/^talkative: /)
    expect(stderr).toContain(path.basename(bad.file))
    for (const n of bad.names) expect(stderr).toContain(n)
    expect(await readdir(root)).toEqual(['hf'])
  })

  it('NaN/Inf weights: imported with a warning naming the tensor; refused with --refuse-non-finite', async () => {
    const root = await fresh()
    const { folder, expect: want } = await BAD_CHECKPOINTS.nonFinite!(path.join(root, 'hf'), model)
    await addTokenizer(folder.dir)
    const refused = await runInProcess([
      folder.dir,
      '--out',
      path.join(root, 'refused'),
      '--no-progress',
      '--refuse-non-finite'
    ])
    expect(refused.code, refused.stderr).toBe(EXIT.badInput)
    expect(refused.stderr).toContain(want.tensor!)
    expect(refused.stderr).toContain(want.file)
    expect(await readdir(root)).toEqual(['hf'])

    const warned = await runInProcess([folder.dir, '--out', path.join(root, 'g'), '--no-progress'])
    expect(warned.code, warned.stderr).toBe(EXIT.ok)
    expect(warned.stderr).toMatch(/warning: .*NaN/)
    expect(warned.stderr).toContain(want.tensor!)
    expect((await readdir(root)).sort()).toEqual(['g', 'hf'])
  })

  it.each(['missingShard', CONFIG_DISAGREES])(
    'the spawned command line exits 3 (%s)',
    async (kind) => {
      const root = await fresh()
      const bad = await broken(kind, root)
      const done = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            path.join(ROOT, 'bin/talkative.cjs'),
            'import',
            'base',
            bad.dir,
            '--out',
            path.join(root, 'group')
          ],
          {
            cwd: ROOT,
            env: {
              ...process.env,
              TALKATIVE_CACHE_DIR: path.join(root, 'cache'),
              TSX_TSCONFIG_PATH: path.join(ROOT, 'tsconfig.node.json')
            }
          }
        )
        let stderr = ''
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
        child.on('close', (code) => resolve({ code, stderr }))
      })
      expect(done.code, done.stderr).toBe(EXIT.badInput)
      expect(done.stderr).toContain(path.basename(bad.file))
      expect((await readdir(root)).filter((n) => n !== 'cache')).toEqual(['hf'])
    },
    120_000
  )
})
