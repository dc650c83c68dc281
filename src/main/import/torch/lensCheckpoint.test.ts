/**
 * The lens-checkpoint reader against real `torch.save` files (scripts/fixtures/
 * make_lens_checkpoints.py wrote them with torch 1.13 and recorded what torch holds in
 * expected.json): every tensor bit for bit, every refusal's message, and that nothing but the
 * lens tensors is ever read.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { TorchArchive } from './archive'
import { CheckpointError } from '../errors'
import { findCheckpoint, readLensCheckpoint } from './lensCheckpoint'
import { PyDict, PyTuple, TensorRef, unpickle, type PickleValue } from './pickle'
import type { F32Tensor, LensCheckpoint } from './types'

const FIXTURES = fileURLToPath(
  new URL('../../../../test/fixtures/lens-checkpoints/', import.meta.url)
)
const fixture = (name: string): string => path.join(FIXTURES, name)

interface ExpectedTensor {
  shape: number[]
  sourceDtype: string
  f32: string
}
interface ExpectedReadable {
  step: number
  hiddenSize: number
  config: Record<string, unknown>
  decoder: {
    patchAllLayers: boolean | number
    perLayerProjections: boolean
    embedPos: number
    promptIds: number[]
  }
  encoder: { outputLayer: number; addCurrentToken: boolean; useProjectionLayer: boolean }
  nonContiguous: boolean
  tensors: Record<string, ExpectedTensor>
  neverRead?: string[]
}
const expected = JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as {
  readable: Record<string, ExpectedReadable>
  refused: Record<string, { message: string; reason: string }>
}

const scratch = mkdtempSync(path.join(tmpdir(), 'lens-ckpt-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

function tensorsOf(r: LensCheckpoint): Record<string, F32Tensor> {
  const out: Record<string, F32Tensor | null> = {
    'decoder.projection.weight': r.decoder.projection.weight,
    'decoder.projection.bias': r.decoder.projection.bias,
    'decoder.promptLeft': r.decoder.promptLeft,
    'decoder.promptRight': r.decoder.promptRight,
    'encoder.softPrompt': r.encoder.softPrompt,
    'encoder.softPromptPostfix': r.encoder.softPromptPostfix,
    'encoder.projection.weight': r.encoder.projection?.weight ?? null,
    'encoder.projection.bias': r.encoder.projection?.bias ?? null,
    'encoder.specialLastTokenVector': r.encoder.specialLastTokenVector
  }
  return Object.fromEntries(Object.entries(out).filter(([, t]) => t !== null)) as Record<
    string,
    F32Tensor
  >
}

async function refusal(file: string, options = {}): Promise<CheckpointError> {
  try {
    await readLensCheckpoint(file, options)
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError)
    return err as CheckpointError
  }
  throw new Error(`${file} was read; a refusal was expected`)
}

/** Storage keys an unpickled subtree references (to show the optimizer's are never read). */
function storageKeys(value: PickleValue | undefined, out = new Set<string>()): Set<string> {
  if (value instanceof TensorRef) out.add(value.storage.key)
  else if (Array.isArray(value)) value.forEach((v) => storageKeys(v, out))
  else if (value instanceof PyTuple) value.items.forEach((v) => storageKeys(v, out))
  else if (value instanceof PyDict) for (const [, v] of value.entries()) storageKeys(v, out)
  return out
}

describe('readLensCheckpoint on the family fixtures', () => {
  for (const [name, exp] of Object.entries(expected.readable)) {
    it(`${name}: config, shapes and every tensor bit for bit`, async () => {
      const r = await readLensCheckpoint(fixture(name))
      expect(r.step).toBe(exp.step)
      expect(r.hiddenSize).toBe(exp.hiddenSize)
      expect(r.config).toMatchObject(exp.config)
      expect(r.config.decoder.patchAllLayers).toBe(exp.decoder.patchAllLayers)
      expect(r.config.decoder.perLayerProjections).toBe(exp.decoder.perLayerProjections)
      expect(r.decoder.projection.perLayer).toBe(exp.decoder.perLayerProjections)
      expect(r.decoder.embedPos).toBe(exp.decoder.embedPos)
      expect(r.decoder.promptIds).toEqual(exp.decoder.promptIds)
      expect(r.config.encoder.outputLayer).toBe(exp.encoder.outputLayer)
      expect(r.encoder.addCurrentToken).toBe(exp.encoder.addCurrentToken)
      expect(r.encoder.projection !== null).toBe(exp.encoder.useProjectionLayer)

      const got = tensorsOf(r)
      expect(Object.keys(got).sort()).toEqual(Object.keys(exp.tensors).sort())
      for (const [key, want] of Object.entries(exp.tensors)) {
        const t = got[key]!
        expect(t.shape, key).toEqual(want.shape)
        expect(t.sourceDtype, key).toBe(want.sourceDtype)
        const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
        expect(bytes.equals(Buffer.from(want.f32, 'base64')), `${key} bit-exact`).toBe(true)
      }
    })
  }

  it('reads exactly data.pkl, version and the lens storages: optimizer and RNG storages never', async () => {
    for (const name of ['gpt2.pt', 'qwen.pt', 'gemma2.pt', 'gemma3.pt']) {
      const r = await readLensCheckpoint(fixture(name))
      const archive = await TorchArchive.open(fixture(name))
      const pkl = await archive.readRecord('data.pkl', 1 << 24)
      await archive.close()
      const root = unpickle(pkl, { file: name, record: 'data.pkl' }).value as PyDict
      const outside = new Set([
        ...storageKeys(root.get('optim')),
        ...storageKeys(root.get('rng_states')),
        ...storageKeys(root.get('scheduler'))
      ])
      expect(outside.size, name).toBeGreaterThan(0)
      for (const record of r.stats.recordsRead) {
        expect(outside.has(record.replace(/^data\//, '')), `${name} read ${record}`).toBe(false)
      }
      // Bytes read = the pickle + version + exactly the elements of the lens tensors.
      const elementBytes = { float32: 4, float16: 2, bfloat16: 2 }
      const tensorBytes = Object.values(tensorsOf(r)).reduce(
        (sum, t) => sum + t.data.length * elementBytes[t.sourceDtype],
        0
      )
      const idsBytes = (r.decoder.promptIds?.length ?? 0) * 8
      expect(r.stats.bytesRead, name).toBe(pkl.length + 2 + tensorBytes + idsBytes)
      expect(r.stats.placeholderTypes).toEqual([
        'numpy.core.multiarray.scalar',
        'numpy.dtype',
        'numpy.ndarray'
      ])
    }
  })

  it('a 32 GiB storage referenced only by optimizer state is never read', async () => {
    const r = await readLensCheckpoint(fixture('huge-optimizer-storage.pt'))
    expect(expected.readable['huge-optimizer-storage.pt']!.neverRead).toEqual(['huge'])
    expect(r.stats.recordsRead).not.toContain('data/huge')
    expect(r.stats.bytesRead).toBeLessThan(20_000)
  })

  it('keeps the whole config as JSON, with unread objects marked', async () => {
    const r = await readLensCheckpoint(fixture('gemma3.pt'))
    const json = r.configJson as Record<string, unknown>
    expect(json.model_name).toBe('google/gemma-3-1b-pt')
    expect(json.orig_model_name).toBe('google/gemma-3-1b-it')
    expect(
      (json.trainable_components as Record<string, Record<string, unknown>>).decoder!
        .patch_all_layers
    ).toBe(2)
    expect(r.config.origModelName).toBe('google/gemma-3-1b-it')
  })

  it('strips the _orig_mod. prefix torch.compile writes (gemma2) and accepts decoder/encoder or dec/enc', async () => {
    const a = await readLensCheckpoint(fixture('gemma2.pt'))
    const b = await readLensCheckpoint(fixture('gpt2.pt'))
    expect(a.decoder.projection.perLayer).toBe(true)
    expect(b.decoder.projection.perLayer).toBe(false)
  })
})

describe('layer counts and the base', () => {
  it('patch_all_layers true with per-layer projections implies the layer count', async () => {
    const r = await readLensCheckpoint(fixture('gemma2.pt'))
    expect(r.layers).toBe(4)
    expect(r.decoder.patchLayers).toBe(4)
    expect(r.encoder.outputLayer).toBe(2)
  })

  it('without a known layer count, -1 stays -1 and patch-all stays unresolved', async () => {
    const r = await readLensCheckpoint(fixture('gpt2.pt'))
    expect(r.layers).toBeNull()
    expect(r.decoder.patchLayers).toBeNull()
    expect(r.encoder.outputLayer).toBe(-1)
  })

  it('resolves against a matching base', async () => {
    const r = await readLensCheckpoint(fixture('gpt2.pt'), { base: { hiddenSize: 16, layers: 4 } })
    expect(r.layers).toBe(4)
    expect(r.decoder.patchLayers).toBe(4)
    expect(r.encoder.outputLayer).toBe(3)
  })

  it.each([
    [
      'gpt2.pt',
      { hiddenSize: 32, layers: 4 },
      'models.dec.proj.weight: has hidden size 16 but the base has 32'
    ],
    [
      'gemma2.pt',
      { hiddenSize: 24, layers: 6 },
      'models.decoder._orig_mod.proj_weight: holds 4 projections but patch_all_layers is true and the base has 6 layers'
    ],
    ['gemma3.pt', { hiddenSize: 32, layers: 3 }, 'config.layer_l: is 3 but the base has 3 layers'],
    [
      'qwen.pt',
      { hiddenSize: 32, layers: 2 },
      'config.trainable_components.decoder.patch_all_layers: is 3 but the base has 2 layers'
    ]
  ])('%s against base %o is refused', async (name, base, message) => {
    const err = await refusal(fixture(name), { base })
    expect(err.problem).toBe('invalid')
    expect(err.message).toBe(`${fixture(name)}: ${message}`)
  })
})

describe('refusals', () => {
  // The exact message after "<absolute file>: ".
  const messages: Record<string, string> = {
    'evil-os-system.pt':
      'evil-os-system/data.pkl byte 3406: the pickle names posix.system: "posix" can run commands, load code or reach the system. ' +
      "Python's loader (torch.load) would import it and could call it, so the file is refused and nothing in it is used",
    'evil-eval.pt':
      'evil-eval/data.pkl byte 497: the pickle names builtins.eval (written as __builtin__.eval): a Python builtin that can run code or reach the system. ' +
      "Python's loader (torch.load) would import it and could call it, so the file is refused and nothing in it is used",
    'evil-popen.pt':
      'evil-popen/data.pkl byte 5016: the pickle names subprocess.Popen (written as commands.Popen): "subprocess" can run commands, load code or reach the system. ' +
      "Python's loader (torch.load) would import it and could call it, so the file is refused and nothing in it is used",
    'storage-past-end.pt':
      'gpt2/data/0: the record claims 50000000 bytes at offset 12944, past the end of the 28041-byte file',
    'zip-bomb.pt':
      'zip-bomb/data/999: the record is compressed (method 8, 8157 bytes claiming 8388608); torch.save stores every record uncompressed, so compressed records are refused (zip-bomb guard)',
    'truncated.pt':
      'not a readable zip archive: End of central directory record signature not found. Either not a zip file, or file is truncated.',
    'view-past-storage.pt':
      'models.dec.proj.bias: the view (offset 0, shape [16], strides [1]) reaches element 15 of a storage of 4',
    'storage-short-entry.pt':
      'storage-short-entry/data/claims: the pickle says 16 float32 elements (64 bytes) but the record holds 8 bytes',
    'refuse-subtract-pos.pt':
      'config.trainable_components.decoder.subtract_add_pos_embeddings: is true: the decoder subtracts a learned positional embedding from the activation, which the Workbench does not reproduce',
    'refuse-no-patching.pt':
      "config.trainable_components.decoder.patch_all_layers: is false with per_layer_projections: the predecessor's decoder then has no projection for the activation and fails when it analyses, so there is nothing to reproduce",
    'refuse-trained-base.pt':
      "models.dec.base.transformer.wte.weight: the lens carries trained base-model weights (base_model / embedding_head / pos_embeddings were trainable); the Workbench runs the group's unchanged base",
    'refuse-output-layer.pt':
      'config.trainable_components.encoder.output_layer: is 7 but its per-layer projections imply 4 layers',
    'refuse-nan.pt': 'models.dec.proj_bias: element 35 is NaN: the lens weights cannot be trusted',
    'refuse-float64.pt':
      'models.enc.soft_prompt_embeddings: is float64; lens tensors are read as float32, float16 or bfloat16',
    'refuse-legacy-format.pt':
      'this is the legacy (pre-1.6, non-zip) torch.save format; re-save it with a current torch (torch.save(torch.load(f), f2)) in a trusted Python environment',
    'refuse-big-endian.pt':
      'refuse-big-endian/byteorder: the storages are big-endian; only little-endian checkpoints are read'
  }

  it('covers every refused fixture the script wrote', () => {
    expect(Object.keys(messages).sort()).toEqual(Object.keys(expected.refused).sort())
  })

  for (const [name, want] of Object.entries(expected.refused)) {
    it(`${name} is refused (${want.reason})`, async () => {
      const err = await refusal(fixture(name))
      expect(err.problem).toBe(want.reason)
      expect(err.code).toBe('bundle_invalid')
      expect(err.file).toBe(fixture(name))
      expect(err.message).toContain(want.message)
      expect(err.message).toBe(`${fixture(name)}: ${messages[name]}`)
    })
  }

  it('a missing file, a folder and a FIFO are refused before anything opens them', async () => {
    expect((await refusal(path.join(scratch, 'nope.pt'))).message).toContain('ENOENT')
    expect((await refusal(scratch)).message).toBe(`${scratch}: is a folder, not a checkpoint file`)
    if (process.platform === 'win32') {
      console.log('skipped FIFO case: mkfifo is POSIX only')
      return
    }
    const fifo = path.join(scratch, 'pipe.pt')
    execFileSync('mkfifo', [fifo])
    const err = await refusal(fifo)
    expect(err.message).toBe(`${fifo}: is a FIFO (named pipe), not a regular file`)
  })

  it('an empty file and a non-zip file', async () => {
    const empty = path.join(scratch, 'empty.pt')
    writeFileSync(empty, '')
    expect((await refusal(empty)).message).toBe(`${empty}: the file is empty`)
    const text = path.join(scratch, 'text.pt')
    writeFileSync(text, 'hello, not a checkpoint')
    expect((await refusal(text)).message).toBe(
      `${text}: not a zip archive (a torch.save checkpoint starts with "PK")`
    )
  })
})

describe('progress and cancel', () => {
  it('reports pickle then tensor progress ending at the total', async () => {
    const seen: { phase: string; bytesRead: number; bytesTotal: number }[] = []
    await readLensCheckpoint(fixture('gemma3.pt'), { onProgress: (p) => seen.push(p) })
    expect(seen[0]!.phase).toBe('pickle')
    const last = seen[seen.length - 1]!
    expect(last.phase).toBe('tensors')
    expect(last.bytesRead).toBe(last.bytesTotal)
    expect(last.bytesTotal).toBeGreaterThan(0)
  })

  it('an aborted signal cancels before and during the read', async () => {
    const before = new AbortController()
    before.abort()
    const a = await refusal(fixture('gpt2.pt'), { signal: before.signal })
    expect(a.problem).toBe('cancelled')
    expect(a.code).toBe('cancelled')

    const during = new AbortController()
    const b = await refusal(fixture('gemma3.pt'), {
      signal: during.signal,
      onProgress: (p: { phase: string }) => {
        if (p.phase === 'tensors') during.abort()
      }
    })
    expect(b.problem).toBe('cancelled')
  })
})

describe('findCheckpoint', () => {
  it('a file is itself', async () => {
    const found = await findCheckpoint(fixture('gpt2.pt'))
    expect(found).toEqual({ path: fixture('gpt2.pt'), skipped: [], note: null })
  })

  it('a folder gives its newest *.pt, and falls back past an unreadable newest, saying so', async () => {
    const dir = mkdtempSync(path.join(scratch, 'run-'))
    const older = path.join(dir, 'checkpoint_step100.pt')
    const newer = path.join(dir, 'checkpoint_step200.pt')
    const broken = path.join(dir, 'checkpoint_step300.pt')
    copyFileSync(fixture('gpt2.pt'), older)
    copyFileSync(fixture('qwen.pt'), newer)
    copyFileSync(fixture('truncated.pt'), broken)
    writeFileSync(path.join(dir, 'notes.txt'), 'not a checkpoint')
    utimesSync(older, 1000, 1000)
    utimesSync(newer, 2000, 2000)
    utimesSync(broken, 3000, 3000)

    const found = await findCheckpoint(dir)
    expect(found.path).toBe(newer)
    expect(found.skipped.map((s) => s.path)).toEqual([broken])
    expect(found.note).toMatch(
      /^newest checkpoint checkpoint_step300\.pt is unreadable \(.*truncated.*\); using checkpoint_step200\.pt$/
    )
    const lens = await readLensCheckpoint(found.path)
    expect(lens.config.modelName).toBe('Qwen/Qwen2.5-0.5B-Instruct')

    rmSync(broken)
    const again = await findCheckpoint(dir)
    expect(again.path).toBe(newer)
    expect(again.note).toBe('using the newest of 2 checkpoints: checkpoint_step200.pt')
  })

  it('skips a FIFO named *.pt without opening it', async () => {
    if (process.platform === 'win32') {
      console.log('skipped: mkfifo is POSIX only')
      return
    }
    const dir = mkdtempSync(path.join(scratch, 'fifo-'))
    execFileSync('mkfifo', [path.join(dir, 'z_newest.pt')])
    copyFileSync(fixture('gpt2.pt'), path.join(dir, 'a.pt'))
    const found = await findCheckpoint(dir)
    expect(found.path).toBe(path.join(dir, 'a.pt'))
    expect(found.skipped).toEqual([
      { path: path.join(dir, 'z_newest.pt'), reason: 'is a FIFO (named pipe), not a regular file' }
    ])
  })

  it('refuses a folder with no readable checkpoint', async () => {
    const dir = mkdtempSync(path.join(scratch, 'empty-'))
    await expect(findCheckpoint(dir)).rejects.toThrow(
      `${dir}: no *.pt checkpoint files in this folder`
    )
    copyFileSync(fixture('truncated.pt'), path.join(dir, 'only.pt'))
    await expect(findCheckpoint(dir)).rejects.toThrow(
      /none of the 1 \*\.pt files opens as a torch checkpoint/
    )
  })
})
