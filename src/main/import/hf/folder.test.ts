import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CheckpointError } from '../errors'
import { encodeTensorValues, scanTensorValues } from '../safetensors'
import { openHfFolder, readHfFolderFile, readTensor, streamTensors, type HfFolder } from './folder'
import { BAD_CHECKPOINTS, writeRawSafetensors } from '../../../../test/fixtures/hf/badCheckpoints'
import {
  randomTensors,
  tokenizerFile,
  writeHfFolder,
  type HfFixtureModel
} from '../../../../test/fixtures/hf/writeHfFolder'

let tmp: string
let n = 0
const fresh = async (): Promise<string> => {
  const d = path.join(tmp, `case-${n++}`)
  await fs.mkdir(d, { recursive: true })
  return d
}
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-hf-folder-'))
})
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

const model: HfFixtureModel & { tensors: ReturnType<typeof randomTensors> } = {
  config: { model_type: 'llama', hidden_size: 8, vocab_size: 32, num_hidden_layers: 1 },
  tensors: randomTensors(
    {
      'model.embed_tokens.weight': [32, 8],
      'model.layers.0.self_attn.q_proj.weight': [8, 8],
      'model.layers.0.mlp.up_proj.weight': [16, 8],
      'model.layers.0.input_layernorm.weight': [8],
      'model.norm.weight': [8],
      'lm_head.weight': [32, 8]
    },
    3
  )
}

/** The float32 values a dtype stores for `x` (exact decode, independent of the reader). */
function stored(dtype: 'F32' | 'F16' | 'BF16', x: Float32Array): Float32Array {
  if (dtype === 'F32') return x
  const bits = new Uint16Array(encodeTensorValues(dtype, x).slice().buffer)
  const out = new Float32Array(bits.length)
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!
    if (dtype === 'BF16') out[i] = new Float32Array(new Uint32Array([h << 16]).buffer)[0]!
    else {
      const s = h & 0x8000 ? -1 : 1
      const e = (h >> 10) & 0x1f
      const m = h & 0x3ff
      out[i] = e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15)
    }
  }
  return out
}

async function failure(p: Promise<unknown>): Promise<CheckpointError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(err).toBeInstanceOf(CheckpointError)
  return err as CheckpointError
}

async function expectAllTensors(folder: HfFolder, dtype: 'F32' | 'F16' | 'BF16'): Promise<void> {
  expect([...folder.tensors.keys()].sort()).toEqual([...model.tensors.keys()].sort())
  let total = 0
  for (const [name, t] of model.tensors) {
    const entry = folder.tensors.get(name)!
    expect(entry).toMatchObject({ dtype, shape: [...t.shape] })
    total += entry.byteLength
    expect(await readTensor(folder, name)).toEqual(stored(dtype, t.data))
  }
  expect(folder.totalBytes).toBe(total)
}

describe('openHfFolder layouts', () => {
  const matrix = [
    { layout: 'plain', shards: 1, dtype: 'F32' },
    { layout: 'plain', shards: 3, dtype: 'BF16' },
    { layout: 'hf-cache', shards: 1, dtype: 'BF16' },
    { layout: 'hf-cache', shards: 3, dtype: 'F16' }
  ] as const

  it.each(matrix)('$layout, $shards shard(s), $dtype', async ({ layout, shards, dtype }) => {
    const root = await fresh()
    const written = await writeHfFolder(root, model, { layout, shards, dtype })
    const folder = await openHfFolder(written.dir)
    expect(folder.layout).toBe(layout)
    expect(folder.config).toEqual(model.config)
    expect(folder.shards.map((s) => s.file)).toEqual(written.weightFiles)
    expect(folder.index !== undefined).toBe(shards > 1)
    if (shards > 1) expect(folder.index!.metadata.total_size).toBe(folder.totalBytes)
    await expectAllTensors(folder, dtype)
    if (layout === 'hf-cache') {
      // Files are symlinks into blobs/, resolved inside the repository folder.
      const link = await fs.readlink(path.join(written.dir, written.weightFiles[0]!))
      expect(link.startsWith('../../blobs/')).toBe(true)
      expect(folder.root).toBe(await fs.realpath(written.repoDir!))
      expect(folder.revision).toBe(written.revision)
      expect(folder.shards[0]!.path.startsWith(path.join(folder.root, 'blobs'))).toBe(true)
      // The repository folder itself opens the snapshot refs/main names.
      const viaRepo = await openHfFolder(written.repoDir!)
      expect(viaRepo.dir).toBe(path.join(written.repoDir!, 'snapshots', written.revision!))
      await expectAllTensors(viaRepo, dtype)
    }
  })

  it('finds the tokenizer, generation config, special tokens map and chat template', async () => {
    const root = await fresh()
    const written = await writeHfFolder(root, model, {
      tokenizer: 'qwen3',
      generationConfig: { bos_token_id: 1, eos_token_id: [2, 3], do_sample: false },
      specialTokensMap: { eos_token: '<|im_end|>' },
      chatTemplate: '{{ messages[0].content }}',
      layout: 'hf-cache'
    })
    const folder = await openHfFolder(written.dir)
    expect(Object.keys(folder.files).sort()).toEqual([
      'chatTemplate',
      'config',
      'generationConfig',
      'specialTokensMap',
      'tokenizer',
      'tokenizerConfig'
    ])
    const tok = await readHfFolderFile(folder, 'tokenizer')
    expect(tok).toBe(await fs.readFile(tokenizerFile('qwen3', 'tokenizer.json'), 'utf8'))
    expect(JSON.parse((await readHfFolderFile(folder, 'generationConfig'))!)).toMatchObject({
      eos_token_id: [2, 3]
    })
    expect(await readHfFolderFile(folder, 'chatTemplate')).toBe('{{ messages[0].content }}')
    expect(folder.fileNames).toMatchObject({
      chatTemplate: 'chat_template.jinja',
      tokenizer: 'tokenizer.json'
    })
    const bare = await openHfFolder((await writeHfFolder(await fresh(), model)).dir)
    expect(Object.keys(bare.files)).toEqual(['config'])
    expect(await readHfFolderFile(bare, 'tokenizer')).toBeUndefined()
  })

  it('reads chat_template.json when there is no .jinja', async () => {
    const written = await writeHfFolder(await fresh(), model, {
      extraFiles: { 'chat_template.json': JSON.stringify({ chat_template: 'x' }) }
    })
    const folder = await openHfFolder(written.dir)
    expect(folder.fileNames.chatTemplate).toBe('chat_template.json')
  })

  it('lists buffers of other dtypes (GPT-2 attn.bias masks) without reading them', async () => {
    const written = await writeHfFolder(await fresh(), model)
    const header: Record<string, unknown> = {}
    const parts: Uint8Array[] = []
    let offset = 0
    for (const [name, t] of model.tensors) {
      const bytes = encodeTensorValues('F32', t.data).slice()
      header[name] = {
        dtype: 'F32',
        shape: [...t.shape],
        data_offsets: [offset, offset + bytes.length]
      }
      parts.push(bytes)
      offset += bytes.length
    }
    header['h.0.attn.bias'] = {
      dtype: 'BOOL',
      shape: [1, 1, 4, 4],
      data_offsets: [offset, offset + 16]
    }
    parts.push(new Uint8Array(16).fill(1))
    await writeRawSafetensors(
      path.join(written.dir, 'model.safetensors'),
      header,
      Buffer.concat(parts)
    )
    const folder = await openHfFolder(written.dir)
    expect(folder.tensors.get('h.0.attn.bias')).toMatchObject({
      dtype: 'BOOL',
      shape: [1, 1, 4, 4]
    })
    const err = await failure(readTensor(folder, 'h.0.attn.bias'))
    expect(err.problem).toBe('dtype_unsupported')
  })

  it('streams every tensor through one reused scratch array', async () => {
    const folder = await openHfFolder(
      (await writeHfFolder(await fresh(), model, { shards: 2, dtype: 'BF16' })).dir
    )
    const seen: string[] = []
    const buffers = new Set<ArrayBufferLike>()
    let bytes = 0
    for await (const { entry, values } of streamTensors(folder, undefined, {
      onBytes: (b) => (bytes += b)
    })) {
      seen.push(entry.name)
      buffers.add(values.buffer)
      expect(values).toEqual(stored('BF16', model.tensors.get(entry.name)!.data as Float32Array))
    }
    expect(seen.sort()).toEqual([...model.tensors.keys()].sort())
    expect(buffers.size).toBe(1)
    expect(bytes).toBe(folder.totalBytes)
    const some = []
    for await (const t of streamTensors(folder, ['model.norm.weight'])) some.push(t.values.length)
    expect(some).toEqual([8])
    await expect(streamTensors(folder, ['nope']).next()).rejects.toThrow(
      /"nope": not in this checkpoint/
    )
  })

  it('reports progress bytes and cancels', async () => {
    const folder = await openHfFolder(
      (await writeHfFolder(await fresh(), model, { shards: 2 })).dir
    )
    let bytes = 0
    for (const name of folder.tensors.keys())
      await readTensor(folder, name, { onBytes: (b) => (bytes += b) })
    expect(bytes).toBe(folder.totalBytes)
    const ac = new AbortController()
    ac.abort()
    const err = await failure(readTensor(folder, 'lm_head.weight', { signal: ac.signal }))
    expect(err.code).toBe('cancelled')
    const missing = await failure(readTensor(folder, 'no.such.weight'))
    expect(missing).toMatchObject({ problem: 'missing_tensor', tensor: 'no.such.weight' })
  })
})

describe('openHfFolder refusals', () => {
  it.each(Object.keys(BAD_CHECKPOINTS))('%s', async (kind) => {
    const { folder, expect: want } = await BAD_CHECKPOINTS[kind]!(await fresh(), model)
    let err: CheckpointError
    if (want.stage === 'open') {
      err = await failure(openHfFolder(folder.dir))
    } else {
      const opened = await openHfFolder(folder.dir)
      if (want.stage === 'read') {
        err = await failure(readTensor(opened, want.tensor!))
      } else {
        const reports = []
        for (const name of opened.tensors.keys()) {
          const r = scanTensorValues(
            opened.tensors.get(name)!.file,
            name,
            await readTensor(opened, name)
          )
          if (r) reports.push(r)
        }
        expect(reports.map((r) => r.tensor)).toEqual([want.tensor])
        expect(reports[0]).toMatchObject({ file: want.file, nan: 1, posInf: 1, negInf: 1 })
        return
      }
    }
    expect(err.problem).toBe(want.problem)
    expect(err.code).toBe('bundle_invalid')
    expect(err.file).toBe(want.file)
    expect(err.message).toContain(want.file)
    if (want.tensor !== undefined) {
      expect(err.tensor).toBe(want.tensor)
      expect(err.message).toContain(`"${want.tensor}"`)
    }
    if (want.field !== undefined) expect(err.field).toBe(want.field)
  })

  it('explains pytorch_model.bin and how to convert it', async () => {
    const { folder } = await BAD_CHECKPOINTS.pytorchBinOnly!(await fresh(), model)
    const err = await failure(openHfFolder(folder.dir))
    expect(err.message).toMatch(/safetensors are needed/)
    expect(err.message).toMatch(/safe_serialization=True/)
  })

  it('says which shard index is missing, and what a PEFT adapter folder is', async () => {
    const written = await writeHfFolder(await fresh(), model, { shards: 2 })
    await fs.rm(path.join(written.dir, 'model.safetensors.index.json'))
    const err = await failure(openHfFolder(written.dir))
    expect(err).toMatchObject({ problem: 'missing_file', file: 'model.safetensors.index.json' })

    const adapterDir = await fresh()
    await fs.writeFile(path.join(adapterDir, 'adapter_config.json'), '{}')
    const peft = await failure(openHfFolder(adapterDir))
    expect(peft.message).toMatch(/PEFT adapter folder/)

    const empty = await failure(openHfFolder(await fresh()))
    expect(empty).toMatchObject({ problem: 'missing_file', file: 'config.json' })
    const none = await failure(openHfFolder(path.join(tmp, 'does-not-exist')))
    expect(none.problem).toBe('missing_file')
  })

  it('refuses a quantisation config nested in text_config, and a config that is not an object', async () => {
    const q = await writeHfFolder(await fresh(), {
      config: {
        model_type: 'gemma3',
        text_config: { quantization_config: { quant_method: 'fp8' } }
      },
      tensors: model.tensors
    })
    const err = await failure(openHfFolder(q.dir))
    expect(err).toMatchObject({ problem: 'quantized', field: 'text_config.quantization_config' })
    expect(err.message).toMatch(/fp8/)
    const bad = await writeHfFolder(await fresh(), model)
    await fs.writeFile(path.join(bad.dir, 'config.json'), '[1]')
    expect(await failure(openHfFolder(bad.dir))).toMatchObject({
      problem: 'config_invalid',
      file: 'config.json'
    })
  })

  it('cache: refuses a snapshot link out of the repository, a bad refs/main, and guesses only one snapshot', async () => {
    const root = await fresh()
    const written = await writeHfFolder(root, model, { layout: 'hf-cache' })
    const repo = written.repoDir!
    // A blob outside the repository, linked from the snapshot.
    const outside = path.join(root, 'stolen.json')
    await fs.writeFile(outside, '{}')
    const tokLink = path.join(written.dir, 'tokenizer.json')
    await fs.symlink(path.relative(written.dir, outside), tokLink)
    expect(await failure(openHfFolder(written.dir))).toMatchObject({
      problem: 'outside_folder',
      file: 'tokenizer.json'
    })
    await fs.rm(tokLink)
    // refs/main naming something that is not a commit hash.
    await fs.writeFile(path.join(repo, 'refs', 'main'), '../../etc')
    expect(await failure(openHfFolder(repo))).toMatchObject({
      problem: 'config_invalid',
      file: 'refs/main'
    })
    // Without refs/main, the only snapshot is used; with two, the user must choose.
    await fs.rm(path.join(repo, 'refs', 'main'))
    expect((await openHfFolder(repo)).revision).toBe(written.revision)
    await fs.mkdir(path.join(repo, 'snapshots', 'f'.repeat(40)))
    expect(await failure(openHfFolder(repo))).toMatchObject({
      problem: 'missing_file',
      file: 'refs/main'
    })
    // The snapshot folder still opens directly.
    await expectAllTensors(await openHfFolder(written.dir), 'F32')
  })

  it('cache: a dangling blob link (an interrupted download) is a missing file', async () => {
    const written = await writeHfFolder(await fresh(), model, { layout: 'hf-cache', shards: 2 })
    const target = await fs.realpath(path.join(written.dir, written.weightFiles[1]!))
    await fs.rm(target)
    const err = await failure(openHfFolder(written.dir))
    expect(err).toMatchObject({ problem: 'missing_shard', file: written.weightFiles[1] })
  })
})
