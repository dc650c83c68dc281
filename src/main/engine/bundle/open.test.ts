/**
 * Malformed bundles: each is the generated demo group with one thing broken. Validation must
 * name the file and the field, and loading must release every session it created.
 */
import { execFileSync } from 'node:child_process'
import {
  cp,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  symlink,
  truncate,
  unlink,
  writeFile
} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDemoBundle, loadGroup, openBundle } from '../index'
import { GraphBuilder, encodeModel } from '../graph/builder'
import { Session } from '../ort'
import { BASE_INPUTS } from './open'
import { TextTokenizer } from '../tokenizer'

let root: string
let demoDir: string
let n = 0

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'talkative-bundles-'))
  demoDir = await ensureDemoBundle(path.join(root, 'cache'))
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function copyDemo(): Promise<string> {
  const dir = path.join(root, `case-${n++}`, 'bundle')
  await cp(demoDir, dir, { recursive: true })
  return dir
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests poke arbitrary manifest fields
async function editJson(file: string, edit: (j: Record<string, any>) => void): Promise<void> {
  const j = JSON.parse(await readFile(file, 'utf8'))
  edit(j)
  await writeFile(file, JSON.stringify(j))
}

/** An ONNX model with the right input/output names whose graph ONNX Runtime refuses. */
function unloadableModel(inputs: readonly string[], outputs: string[]): Uint8Array {
  const g = new GraphBuilder()
  for (const i of inputs) g.input(i, 'float32', null)
  for (const o of outputs) {
    g.opTo('NoSuchOperator', [inputs[0]!], [o])
    g.output(o, 'float32')
  }
  return encodeModel(g.toGraph('broken'), 'test')
}

const lensJson = (dir: string): string => path.join(dir, 'lenses/words-l1/lens.json')

describe('openBundle rejects malformed bundles, naming file and field', () => {
  it('accepts the demo group', async () => {
    const s = await openBundle(demoDir)
    expect(s.lenses).toHaveLength(2)
    expect(s.weightBytes).toBeGreaterThan(0)
    expect(s.estimatedBytes).toBeGreaterThan(s.weightBytes)
  })

  it('a folder that is not a bundle', async () => {
    await expect(openBundle(path.join(root, 'nowhere'))).rejects.toMatchObject({
      code: 'bundle_invalid',
      field: 'dir'
    })
  })

  it('missing file', async () => {
    const dir = await copyDemo()
    await unlink(path.join(dir, 'lenses/words-l1/encoder_head.onnx'))
    await expect(openBundle(dir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'lenses/words-l1/encoder_head.onnx',
      field: 'encoder.head'
    })
  })

  it('bad JSON', async () => {
    const dir = await copyDemo()
    await writeFile(path.join(dir, 'manifest.json'), '{"schemaVersion": 1,')
    await expect(openBundle(dir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'manifest.json'
    })
  })

  it('schema violation', async () => {
    const dir = await copyDemo()
    await editJson(path.join(dir, 'manifest.json'), (j) => (j.base.hiddenSize = 'wide'))
    await expect(openBundle(dir)).rejects.toMatchObject({
      file: 'manifest.json',
      field: 'base.hiddenSize'
    })
  })

  it('wrong tensor shape', async () => {
    const dir = await copyDemo()
    await editJson(lensJson(dir), (j) => (j.decoder.prefix.shape = [5, 64]))
    await expect(openBundle(dir)).rejects.toMatchObject({
      file: 'lenses/words-l1/lens.json',
      field: 'decoder.prefix.shape'
    })
  })

  it('wrong tensor dtype', async () => {
    const dir = await copyDemo()
    await editJson(lensJson(dir), (j) => (j.encoder.prefix.dtype = 'float16'))
    await expect(openBundle(dir)).rejects.toMatchObject({
      file: 'lenses/words-l1/lens.json',
      field: 'encoder.prefix.dtype'
    })
  })

  it('tensor file of the wrong size', async () => {
    const dir = await copyDemo()
    await truncate(path.join(dir, 'lenses/words-l1/decoder_prefix.f32'), 100)
    await expect(openBundle(dir)).rejects.toMatchObject({
      file: 'lenses/words-l1/decoder_prefix.f32',
      field: 'decoder.prefix.shape'
    })
  })

  it('truncated ONNX', async () => {
    const dir = await copyDemo()
    const file = path.join(dir, 'demo-base.onnx')
    const bytes = await readFile(file)
    await writeFile(file, bytes.subarray(0, Math.floor(bytes.byteLength / 3)))
    await expect(openBundle(dir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'demo-base.onnx',
      field: 'base'
    })
  })

  it('a path that escapes the bundle folder', async () => {
    const dir = await copyDemo()
    await cp(path.join(dir, 'demo-base.onnx'), path.join(dir, '..', 'outside.onnx'))
    await editJson(path.join(dir, 'manifest.json'), (j) => (j.base.file = '../outside.onnx'))
    await expect(openBundle(dir)).rejects.toMatchObject({
      file: 'manifest.json',
      field: 'base.file'
    })
    await editJson(lensJson(dir), (j) => (j.encoder.head = '../../../outside.onnx'))
    await editJson(path.join(dir, 'manifest.json'), (j) => (j.base.file = 'demo-base.onnx'))
    await expect(openBundle(dir)).rejects.toMatchObject({
      file: 'lenses/words-l1/lens.json',
      field: 'encoder.head'
    })
  })

  it('a symlinked manifest.json pointing outside: refused, its content never quoted', async () => {
    const dir = await copyDemo()
    const secret = path.join(dir, '..', 'secret.txt')
    await writeFile(secret, 'TOP-SECRET-CONTENT that must not appear anywhere')
    await unlink(path.join(dir, 'manifest.json'))
    await symlink(secret, path.join(dir, 'manifest.json'))
    const err = (await openBundle(dir).catch((e: unknown) => e)) as Error
    expect(err).toMatchObject({ code: 'bundle_invalid', file: 'manifest.json' })
    expect(err.message).toMatch(/outside the group folder/)
    expect(JSON.stringify(err)).not.toMatch(/SECRET/)
    // A valid manifest elsewhere is refused just the same (the group is not listed as ok).
    await unlink(path.join(dir, 'manifest.json'))
    await cp(path.join(demoDir, 'manifest.json'), path.join(dir, '..', 'manifest.json'))
    await symlink(path.join(dir, '..', 'manifest.json'), path.join(dir, 'manifest.json'))
    await expect(openBundle(dir)).rejects.toMatchObject({ file: 'manifest.json' })
  })

  it('a file that is not JSON: the error says where, never what the file holds', async () => {
    const dir = await copyDemo()
    await writeFile(path.join(dir, 'manifest.json'), 'PRIVATE words, not json at all')
    const err = (await openBundle(dir).catch((e: unknown) => e)) as Error
    expect(err).toMatchObject({ code: 'bundle_invalid', file: 'manifest.json' })
    expect(err.message).toMatch(/not valid JSON/)
    expect(err.message).not.toMatch(/PRIVATE|words/)
  })

  it('a folder where a file is expected names the file, not a bare EISDIR', async () => {
    const dir = await copyDemo()
    await rm(path.join(dir, 'tokenizer.json'))
    await mkdir(path.join(dir, 'tokenizer.json'))
    await expect(openBundle(dir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'tokenizer.json',
      message: expect.stringMatching(/tokenizer\.json.*is a folder, not a file/)
    })
    const other = await copyDemo()
    await rm(path.join(other, 'manifest.json'))
    await mkdir(path.join(other, 'manifest.json'))
    await expect(openBundle(other)).rejects.toMatchObject({
      file: 'manifest.json',
      message: expect.stringMatching(/is a folder, not a file/)
    })
  })

  it.skipIf(process.platform === 'win32')(
    'a FIFO anywhere in a bundle is refused at once, without blocking (POSIX only)',
    async () => {
      const cases = ['manifest.json', 'tokenizer_config.json', 'lenses/words-l1/lens.json']
      for (const rel of cases) {
        const dir = await copyDemo()
        await rm(path.join(dir, rel))
        execFileSync('mkfifo', [path.join(dir, rel)])
        const started = Date.now()
        await expect(openBundle(dir), rel).rejects.toMatchObject({
          code: 'bundle_invalid',
          file: rel,
          message: expect.stringMatching(/FIFO/)
        })
        expect(Date.now() - started, rel).toBeLessThan(20_000)
      }
    }
  )

  it('manifest sizes that the base graph weights disagree with name manifest.json and the field', async () => {
    const layersDir = await copyDemo()
    await editJson(path.join(layersDir, 'manifest.json'), (j) => (j.base.layers = 2 ** 30))
    await expect(openBundle(layersDir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'manifest.json',
      field: 'base.layers',
      message: expect.stringMatching(/blocks of weights/)
    })
    const vocabDir = await copyDemo()
    await editJson(path.join(vocabDir, 'manifest.json'), (j) => (j.base.vocabSize += 7))
    await expect(openBundle(vocabDir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'manifest.json',
      field: 'base.vocabSize',
      message: expect.stringMatching(/token embedding/)
    })
  })

  it('a tokenizer whose ids pass the vocabulary, or that is not a tokenizer, names tokenizer.json', async () => {
    const dir = await copyDemo()
    await editJson(path.join(dir, 'manifest.json'), (j) => (j.base.vocabSize = 5))
    await expect(openBundle(dir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'tokenizer.json',
      message: expect.stringMatching(/vocabSize is 5/)
    })
    const other = await copyDemo()
    await writeFile(path.join(other, 'tokenizer.json'), '{"model": 5}')
    await expect(openBundle(other)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'tokenizer.json',
      field: 'model'
    })
  })

  it('a tokenizer handed on as parsed by its writer gets the same checks, and the file is not read', async () => {
    const dir = await copyDemo()
    const file = path.join(dir, 'tokenizer.json')
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
    // Unreadable as JSON on disk: opening succeeds only if the parsed object is used.
    await writeFile(file, 'not json')
    const summary = await openBundle(dir, { writtenJson: new Map([[file, parsed]]) })
    expect(summary.groupId).toBeTruthy()
    await expect(openBundle(dir)).rejects.toMatchObject({ file: 'tokenizer.json' })
    await expect(
      openBundle(dir, { writtenJson: new Map([[file, { model: 5 }]]) })
    ).rejects.toMatchObject({ code: 'bundle_invalid', file: 'tokenizer.json', field: 'model' })
  })

  it('a special added token past the vocabulary loads, and a text naming it is refused, not embedded', async () => {
    // Gemma-3's tokenizer lists <image_soft_token> at id 262144 of its 262,144-row text model.
    const dir = await copyDemo()
    const vocabSize = (
      JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as {
        base: { vocabSize: number }
      }
    ).base.vocabSize
    const special = { id: vocabSize, content: '<image_soft_token>', single_word: false }
    await editJson(path.join(dir, 'tokenizer.json'), (j) => {
      j.added_tokens.push({
        ...special,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true
      })
    })
    await expect(openBundle(dir)).resolves.toMatchObject({ groupId: 'demo-words' })
    const tok = await TextTokenizer.load(
      path.join(dir, 'tokenizer.json'),
      path.join(dir, 'tokenizer_config.json'),
      1,
      vocabSize
    )
    expect(tok.encode('the cat').ids.length).toBeGreaterThan(0)
    expect(() => tok.encode('the <image_soft_token> cat')).toThrow(
      expect.objectContaining({ code: 'invalid_input', field: 'text' })
    )
    // The same id on an ordinary (non-special) added token is a broken tokenizer.
    const plain = await copyDemo()
    await editJson(path.join(plain, 'tokenizer.json'), (j) => {
      j.added_tokens.push({
        ...special,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: false
      })
    })
    await expect(openBundle(plain)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'tokenizer.json',
      message: expect.stringMatching(/non-special token/)
    })
  })

  it("a lens graph swapped with another lens's fails at run time as a 422 naming the file", async () => {
    const dir = await copyDemo()
    await cp(
      path.join(dir, 'lenses/words-l3/decoder_projection.onnx'),
      path.join(dir, 'lenses/words-l1/decoder_projection.onnx')
    )
    const group = await loadGroup(dir, { provider: 'cpu', threads: 1 })
    try {
      const err = (await group
        .analyze({ lensId: 'words-l1', text: 'The cat sat.', options: { bestOfK: 1 } })
        .then(
          () => null,
          (e: unknown) => e
        )) as Error | null
      // Every static check passes; the run names the file and the field, never a raw engine error.
      expect(err).toMatchObject({
        code: 'bundle_invalid',
        file: 'lenses/words-l1/decoder_projection.onnx',
        field: 'decoder.patchLayers'
      })
      expect(err!.message).not.toContain(dir)
    } finally {
      await group.dispose()
    }
  })

  it('a lens naming a missing donor', async () => {
    const dir = await copyDemo()
    await editJson(lensJson(dir), (j) => (j.orig = 'ghost-model'))
    await expect(openBundle(dir)).rejects.toMatchObject({
      file: 'lenses/words-l1/lens.json',
      field: 'orig'
    })
  })

  it('a lens layer beyond the model', async () => {
    const dir = await copyDemo()
    await editJson(lensJson(dir), (j) => (j.layer = 9))
    await expect(openBundle(dir)).rejects.toMatchObject({
      file: 'lenses/words-l1/lens.json',
      field: 'layer'
    })
  })
})

describe('loading releases sessions on failure', () => {
  it('a donor ONNX Runtime refuses: error names the file, the base session is released', async () => {
    const dir = await copyDemo()
    await writeFile(path.join(dir, 'donor.onnx'), unloadableModel(BASE_INPUTS, ['out_f', 'out_i']))
    await editJson(path.join(dir, 'manifest.json'), (j) => {
      j.donors = [{ ...j.base, id: 'donor', file: 'donor.onnx' }]
    })
    const before = Session.liveCount
    const err = (await loadGroup(dir, { provider: 'cpu' }).catch((e: unknown) => e)) as Error
    expect(err).toMatchObject({ code: 'bundle_invalid', file: 'donor.onnx' })
    // The caller learns the file inside the bundle, not where the bundle lives on this machine.
    expect(err.message).not.toContain(dir)
    expect(Session.liveCount).toBe(before)
  })

  it('a lens head ONNX Runtime refuses: that lens fails, the group keeps working, nothing leaks', async () => {
    const dir = await copyDemo()
    await writeFile(
      path.join(dir, 'lenses/words-l1/encoder_head.onnx'),
      unloadableModel(['hidden', 'target'], ['recon', 'mse'])
    )
    const before = Session.liveCount
    const g = await loadGroup(dir, { provider: 'cpu' })
    const loaded = Session.liveCount
    await expect(g.analyze({ lensId: 'words-l1', text: 'the cat' })).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: 'lenses/words-l1/encoder_head.onnx'
    })
    await expect(g.analyze({ lensId: 'words-l1', text: 'the cat' })).rejects.toMatchObject({
      code: 'bundle_invalid'
    })
    expect(Session.liveCount).toBe(loaded)
    const ok = await g.analyze({ lensId: 'words-l3', text: 'the cat', options: { bestOfK: 2 } })
    expect(ok.rows).toHaveLength(3)
    await g.dispose()
    expect(Session.liveCount).toBe(before)
  })
})
