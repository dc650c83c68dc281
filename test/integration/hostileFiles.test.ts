/**
 * Hostile files in the models folder: FIFOs (more of them than libuv has pool threads), folders
 * where files belong, a manifest symlinked to a file outside the group. A scan must finish, list
 * every healthy group as ok and every other one as broken with an error that names the file
 * inside the group and quotes none of its content.
 */
import { execFileSync } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ModelLibrary } from '../../src/main/devices/library'
import {
  ChatTemplate,
  ensureDemoBundle,
  loadTokenizerConfig,
  openBundle
} from '../../src/main/engine'

const posix = process.platform !== 'win32'

describe.skipIf(!posix)('a models folder with FIFOs, folders and outside symlinks (POSIX)', () => {
  let root: string
  let models: string
  let demo: string

  async function group(name: string): Promise<string> {
    const dir = join(models, name)
    await cp(demo, dir, { recursive: true })
    return dir
  }
  const fifo = (file: string): void => void execFileSync('mkfifo', [file])

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'talkative-hostile-'))
    models = join(root, 'models')
    await mkdir(models)
    demo = await ensureDemoBundle(join(root, 'cache'))
    await group('healthy')
    // Six groups each holding a FIFO: more than the four threads every file operation shares.
    for (const file of ['manifest.json', 'tokenizer.json', 'tokenizer_config.json']) {
      for (const n of [1, 2]) {
        const dir = await group(`fifo-${file.replace(/\W/g, '-')}-${n}`)
        await rm(join(dir, file))
        fifo(join(dir, file))
      }
    }
    fifo(join(models, 'a-bare-fifo'))
    const folderFile = await group('folder-tokenizer')
    await rm(join(folderFile, 'tokenizer.json'))
    await mkdir(join(folderFile, 'tokenizer.json'))
    const linked = await group('linked-manifest')
    await writeFile(join(root, 'private.txt'), 'PRIVATE-NOTES do not show these')
    await unlink(join(linked, 'manifest.json'))
    await symlink(join(root, 'private.txt'), join(linked, 'manifest.json'))
  })
  afterAll(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('scans to the end: the healthy group is ok, every other one broken with a named file', async () => {
    const library = new ModelLibrary({
      folder: models,
      openBundle,
      loadChatTemplate: async (dir) =>
        ChatTemplate.fromSpecials(await loadTokenizerConfig(dir)) as never
    })
    await library.scan()
    const byId = new Map(library.entries().map((e) => [e.folder, e]))
    expect(byId.get('healthy')?.summary).not.toBeNull()
    expect(byId.get('healthy')?.errors).toEqual([])
    for (const file of ['manifest.json', 'tokenizer.json', 'tokenizer_config.json']) {
      for (const n of [1, 2]) {
        const entry = byId.get(`fifo-${file.replace(/\W/g, '-')}-${n}`)
        expect(entry?.summary, file).toBeNull()
        expect(entry?.errors[0], file).toMatchObject({
          file,
          message: expect.stringMatching(/FIFO/)
        })
      }
    }
    expect(byId.get('folder-tokenizer')?.errors[0]).toMatchObject({
      file: 'tokenizer.json',
      message: expect.stringMatching(/is a folder, not a file/)
    })
    const linked = byId.get('linked-manifest')
    expect(linked?.summary).toBeNull()
    expect(linked?.errors[0]).toMatchObject({ file: 'manifest.json' })
    expect(JSON.stringify(library.entries())).not.toMatch(/PRIVATE/)
    // A healthy bundle still opens afterwards: no pool thread is held by a FIFO.
    await expect(openBundle(join(models, 'healthy'))).resolves.toMatchObject({
      groupId: expect.any(String)
    })
    library.close()
  })

  it('reading a chat template never blocks on a FIFO and names the file', async () => {
    const dir = join(models, 'fifo-tokenizer_config-json-1')
    await expect(loadTokenizerConfig(dir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'tokenizer_config.json',
      message: expect.stringMatching(/FIFO/)
    })
    // A FIFO manifest: the default config name applies, the group's config is read as usual.
    const specials = await loadTokenizerConfig(join(models, 'fifo-manifest-json-1'))
    expect(specials.file).toBe('tokenizer_config.json')
  })
})
