import { promises as fs } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomHfModel } from '../../../test/reference/hf/random'
import { writeHfGroup } from '../../../test/fixtures/lens/hfGroup'
import { cliHarness, ROOT, type CliHarness } from './spawnCli'

// `talkative import lens` as a user runs it (bin/talkative.cjs): a real torch.save checkpoint into
// a group of its base; bad, unsafe and mismatched checkpoints exit 3 naming the file and the key or
// field at fault, and leave the group as it was.
let cli: CliHarness
let gpt2Group: string
let gemma3Group: string

const FIXTURES = path.join(ROOT, 'test/fixtures/lens-checkpoints')
const fixture = (name: string): string => path.join(FIXTURES, name)

beforeAll(async () => {
  cli = await cliHarness('talkative-import-lens-cli-')
  // Bases shaped as the e2e fixtures' training configs name them (test/fixtures/lens-checkpoints/e2e).
  gpt2Group = await writeHfGroup(
    path.join(cli.work, 'gpt2-group'),
    randomHfModel('gpt2', { hiddenSize: 16, layers: 4, heads: 4, vocabSize: 64 }, { seed: 5 }),
    { groupId: 'gpt2-group', baseName: 'openai-community/gpt2' }
  )
  gemma3Group = await writeHfGroup(
    path.join(cli.work, 'gemma3-group'),
    randomHfModel(
      'gemma3_text',
      { hiddenSize: 32, layers: 6, heads: 4, kvHeads: 2, headDim: 8, vocabSize: 64 },
      { seed: 6 }
    ),
    { groupId: 'gemma3-group', baseName: 'google/gemma-3-1b-pt' }
  )
}, 120_000)

afterAll(() => {
  cli?.cleanup()
})

const talkative = (...args: string[]): ReturnType<CliHarness['run']> => cli.run(...args)

async function manifestOf(dir: string): Promise<string> {
  return fs.readFile(path.join(dir, 'manifest.json'), 'utf8')
}

describe('talkative import lens', () => {
  it('imports a torch.save checkpoint into its group, which inspect then validates', async () => {
    const r = await talkative(
      'import',
      'lens',
      fixture('e2e/gpt2.pt'),
      '--into',
      gpt2Group,
      '--id',
      'gpt2-l2',
      '--json'
    )
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as Record<string, unknown>
    expect(out).toMatchObject({ lensId: 'gpt2-l2', layer: 2, explanationTokens: 4, orig: 'base' })
    const manifest = JSON.parse(await manifestOf(gpt2Group)) as { lenses: string[] }
    expect(manifest.lenses).toEqual(['lenses/gpt2-l2'])

    const inspect = await talkative('inspect', gpt2Group)
    expect(inspect.code, inspect.stderr).toBe(0)
    expect(inspect.stdout).toContain('gpt2-l2')
  }, 120_000)

  // Each refusal: the file, the key or field named, exit 3, nothing written.
  it.each([
    ['evil-os-system.pt', 'posix.system'],
    ['storage-past-end.pt', 'gpt2/data/0'],
    ['zip-bomb.pt', 'zip-bomb/data/999'],
    ['refuse-subtract-pos.pt', 'subtract_add_pos_embeddings'],
    ['gpt2.pt', 'config.model_name']
  ])(
    '%s exits 3 naming %s',
    async (file, named) => {
      const before = await manifestOf(gemma3Group)
      const r = await talkative('import', 'lens', fixture(file), '--into', gemma3Group)
      expect(r.code, r.stderr).toBe(3)
      expect(r.stderr).toContain(file)
      expect(r.stderr).toContain(named)
      expect(await manifestOf(gemma3Group)).toBe(before)
      expect(await fs.readdir(gemma3Group)).not.toContain('lenses')
    },
    60_000
  )

  it('a lens trained on another model (orig_model_name) without --orig exits 3 asking for it', async () => {
    const r = await talkative('import', 'lens', fixture('e2e/gemma3.pt'), '--into', gemma3Group)
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toContain('config.orig_model_name')
    expect(r.stderr).toContain('google/gemma-3-1b-it')
    expect(r.stderr).toContain('--orig')
  }, 60_000)

  it('a missing group or --into is a usage error', async () => {
    const noGroup = await talkative('import', 'lens', fixture('e2e/gpt2.pt'))
    expect(noGroup.code).toBe(2)
    expect(noGroup.stderr).toContain('--into')
    const notAGroup = await talkative('import', 'lens', fixture('e2e/gpt2.pt'), '--into', cli.work)
    expect(notAGroup.code).toBe(3)
    expect(notAGroup.stderr).toContain('manifest.json')
  }, 60_000)
})
