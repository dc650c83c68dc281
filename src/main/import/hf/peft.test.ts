import { spawnSync } from 'node:child_process'
import { existsSync, promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CheckpointError } from '../errors'
import { openHfFolder, readTensor, type HfFolder } from './folder'
import {
  loraScaleFor,
  mergePeftTensor,
  parsePeftConfig,
  planPeftMerge,
  readPeftAdapter,
  type PeftMergePlan
} from './peft'
import { randomTensors, writeHfFolder } from '../../../../test/fixtures/hf/writeHfFolder'
import {
  randomLora,
  writePeftAdapter,
  type FixtureLora,
  type PeftFixture
} from '../../../../test/fixtures/hf/writePeftAdapter'

let tmp: string
let n = 0
const fresh = (): string => path.join(tmp, `case-${n++}`)
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-peft-'))
})
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true })
})

const llamaBase = randomTensors(
  {
    'model.embed_tokens.weight': [32, 8],
    'model.layers.0.self_attn.q_proj.weight': [8, 8],
    'model.layers.0.self_attn.v_proj.weight': [4, 8],
    'model.layers.0.mlp.up_proj.weight': [16, 8],
    'model.norm.weight': [8],
    'lm_head.weight': [32, 8]
  },
  21
)
// The original GPT-2 file: no `transformer.` prefix, Conv1D weights stored (in, out).
const gpt2Base = randomTensors(
  { 'wte.weight': [32, 8], 'h.0.attn.c_attn.weight': [8, 24], 'ln_f.weight': [8] },
  22
)

async function baseFolder(tensors: ReturnType<typeof randomTensors>): Promise<HfFolder> {
  const written = await writeHfFolder(fresh(), { config: { model_type: 'x' }, tensors })
  return openHfFolder(written.dir)
}

/** Independent float64 merge: the dense (out × in) product first, then W + scale·delta (or its transpose). */
function referenceMerge(
  w: Float32Array,
  l: FixtureLora,
  scale: number,
  transposed: boolean
): Float64Array {
  const { a, b, rank, inDim, outDim } = l
  const delta = new Float64Array(outDim * inDim)
  for (let i = 0; i < inDim; i++) {
    for (let o = 0; o < outDim; o++) {
      let s = 0
      for (let k = 0; k < rank; k++) s += b[o * rank + k]! * a[k * inDim + i]!
      delta[o * inDim + i] = s
    }
  }
  const out = Float64Array.from(w)
  for (let o = 0; o < outDim; o++) {
    for (let i = 0; i < inDim; i++) {
      if (transposed) out[i * outDim + o]! += scale * delta[o * inDim + i]!
      else out[o * inDim + i]! += scale * delta[o * inDim + i]!
    }
  }
  return out
}

/** Every element within float32 rounding of the float64 reference, and the merge changed W. */
function expectClose(got: Float32Array, want: Float64Array, before: Float32Array): void {
  expect(got.length).toBe(want.length)
  let worst = 0
  let changed = 0
  for (let i = 0; i < got.length; i++) {
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(Math.abs(want[i]!), 1e-30))
    if (got[i] !== before[i]) changed++
  }
  expect(worst).toBeLessThanOrEqual(2 ** -23)
  expect(changed).toBeGreaterThan(got.length / 2)
}

async function mergeAll(
  folder: HfFolder,
  adapterDir: string,
  plan?: PeftMergePlan
): Promise<Map<string, Float32Array>> {
  const adapter = await readPeftAdapter(adapterDir)
  const p = plan ?? planPeftMerge(adapter, folder.tensors)
  const out = new Map<string, Float32Array>()
  for (const name of folder.tensors.keys()) {
    const base = await readTensor(folder, name)
    const entry = p.get(name)
    out.set(name, entry ? await mergePeftTensor(adapter, entry, base) : base)
  }
  return out
}

async function adapterFailure(fixture: PeftFixture, base = llamaBase): Promise<CheckpointError> {
  const dir = fresh()
  await writePeftAdapter(dir, fixture)
  const folder = await baseFolder(base)
  const err = await readPeftAdapter(dir)
    .then((adapter) => planPeftMerge(adapter, folder.tensors))
    .then(
      () => undefined,
      (e: unknown) => e
    )
  expect(err).toBeInstanceOf(CheckpointError)
  expect((err as CheckpointError).problem).toBe('adapter_invalid')
  return err as CheckpointError
}

describe('PEFT LoRA merge', () => {
  it('merges W + (alpha/r)·B·A into the named tensors and leaves the others untouched', async () => {
    const q = randomLora(8, 8, 4, 1)
    const up = randomLora(8, 16, 4, 2)
    const dir = fresh()
    await writePeftAdapter(dir, {
      config: { r: 4, lora_alpha: 8 },
      loras: { 'model.layers.0.self_attn.q_proj': q, 'model.layers.0.mlp.up_proj': up },
      dtype: 'BF16'
    })
    const adapter = await readPeftAdapter(dir)
    expect(adapter.config).toMatchObject({
      r: 4,
      loraAlpha: 8,
      baseModelNameOrPath: 'test-org/tiny-model'
    })
    expect([...adapter.loras.keys()].sort()).toEqual([
      'model.layers.0.mlp.up_proj',
      'model.layers.0.self_attn.q_proj'
    ])
    const folder = await baseFolder(llamaBase)
    const merged = await mergeAll(folder, dir)
    // The adapter was stored in BF16: the reference uses the same stored factors.
    const storedA = await readTensorFromAdapter(
      dir,
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'
    )
    const storedB = await readTensorFromAdapter(
      dir,
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight'
    )
    const qStored = { ...q, a: storedA, b: storedB }
    const qName = 'model.layers.0.self_attn.q_proj.weight'
    expectClose(
      merged.get(qName)!,
      referenceMerge(llamaBase.get(qName)!.data, qStored, 2, false),
      llamaBase.get(qName)!.data
    )
    for (const name of ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']) {
      expect(merged.get(name)).toEqual(llamaBase.get(name)!.data)
    }
  })

  it('reads an adapter from the Hugging Face cache layout (symlinks into blobs/)', async () => {
    const q = randomLora(8, 8, 4, 14)
    const dir = await writePeftAdapter(fresh(), {
      loras: { 'model.layers.0.self_attn.q_proj': q },
      layout: 'hf-cache'
    })
    expect(dir).toMatch(/models--test-org--tiny-adapter\/snapshots\/[0-9a-f]{40}$/)
    const merged = await mergeAll(await baseFolder(llamaBase), dir)
    const name = 'model.layers.0.self_attn.q_proj.weight'
    expectClose(
      merged.get(name)!,
      referenceMerge(llamaBase.get(name)!.data, q, 2, false),
      llamaBase.get(name)!.data
    )
  })

  it('scales by alpha/√r with use_rslora and honours rank_pattern / alpha_pattern', async () => {
    const q = randomLora(8, 8, 4, 3)
    const v = randomLora(8, 4, 2, 4)
    const dir = fresh()
    await writePeftAdapter(dir, {
      config: {
        r: 4,
        lora_alpha: 16,
        use_rslora: true,
        rank_pattern: { v_proj: 2 },
        alpha_pattern: { 'self_attn.v_proj': 3 }
      },
      loras: { 'model.layers.0.self_attn.q_proj': q, 'model.layers.0.self_attn.v_proj': v }
    })
    const adapter = await readPeftAdapter(dir)
    expect(adapter.loras.get('model.layers.0.self_attn.q_proj')!.scale).toBe(16 / 2)
    expect(adapter.loras.get('model.layers.0.self_attn.v_proj')).toMatchObject({
      rank: 2,
      alpha: 3,
      scale: 3 / Math.SQRT2
    })
    const merged = await mergeAll(await baseFolder(llamaBase), dir)
    const vName = 'model.layers.0.self_attn.v_proj.weight'
    expectClose(
      merged.get(vName)!,
      referenceMerge(llamaBase.get(vName)!.data, v, 3 / Math.SQRT2, false),
      llamaBase.get(vName)!.data
    )
    const qName = 'model.layers.0.self_attn.q_proj.weight'
    expectClose(
      merged.get(qName)!,
      referenceMerge(llamaBase.get(qName)!.data, q, 8, false),
      llamaBase.get(qName)!.data
    )
  })

  it('GPT-2 Conv1D with fan_in_fan_out: the delta is transposed; adapter keys with transformer. match the bare file', async () => {
    const attn = randomLora(8, 24, 4, 5)
    const dir = fresh()
    await writePeftAdapter(dir, {
      config: { fan_in_fan_out: true, lora_alpha: 4 },
      loras: { 'transformer.h.0.attn.c_attn': attn }
    })
    const merged = await mergeAll(await baseFolder(gpt2Base), dir)
    const name = 'h.0.attn.c_attn.weight'
    expectClose(
      merged.get(name)!,
      referenceMerge(gpt2Base.get(name)!.data, attn, 1, true),
      gpt2Base.get(name)!.data
    )
  })

  it('embeddings: lora_embedding_A/B add (B·A)ᵀ', async () => {
    const emb = randomLora(32, 8, 4, 6, 'embedding')
    const dir = fresh()
    await writePeftAdapter(dir, { loras: { 'model.embed_tokens': emb } })
    const merged = await mergeAll(await baseFolder(llamaBase), dir)
    const name = 'model.embed_tokens.weight'
    expectClose(
      merged.get(name)!,
      referenceMerge(llamaBase.get(name)!.data, emb, 2, true),
      llamaBase.get(name)!.data
    )
  })

  it('modules_to_save: the saved tensor replaces the base tensor before the delta', async () => {
    const lmHead = randomTensors({ lm: [32, 8] }, 30).get('lm')!.data
    const q = randomLora(8, 8, 4, 7)
    const dir = fresh()
    await writePeftAdapter(dir, {
      config: { modules_to_save: ['lm_head'] },
      loras: { 'model.layers.0.self_attn.q_proj': q },
      replacements: { 'lm_head.weight': { shape: [32, 8], data: lmHead } }
    })
    const merged = await mergeAll(await baseFolder(llamaBase), dir)
    expect(merged.get('lm_head.weight')).toEqual(lmHead)
  })

  it('matches names through a canonicaliser where prefixes differ in the middle (Gemma-3 layouts)', async () => {
    const base = randomTensors(
      { 'language_model.model.layers.0.self_attn.q_proj.weight': [8, 8] },
      23
    )
    const q = randomLora(8, 8, 4, 8)
    const dir = fresh()
    await writePeftAdapter(dir, { loras: { 'model.language_model.layers.0.self_attn.q_proj': q } })
    const folder = await baseFolder(base)
    const adapter = await readPeftAdapter(dir)
    expect(() => planPeftMerge(adapter, folder.tensors)).toThrow(/no tensor/)
    const canonicalName = (name: string): string =>
      name.replace(/^(model\.language_model\.|language_model\.model\.)/, '')
    const plan = planPeftMerge(adapter, folder.tensors, { canonicalName })
    const merged = await mergeAll(folder, dir, plan)
    const name = 'language_model.model.layers.0.self_attn.q_proj.weight'
    expectClose(
      merged.get(name)!,
      referenceMerge(base.get(name)!.data, q, 2, false),
      base.get(name)!.data
    )
  })

  // PyTorch as an independent implementation of the same formula (Debian's python3-torch).
  const torchPython = '/usr/bin/python3'
  const hasTorch =
    existsSync(torchPython) && spawnSync(torchPython, ['-c', 'import torch']).status === 0
  it.skipIf(!hasTorch)(
    'agrees with PyTorch (W + scale·(B@A), transposed for fan_in_fan_out)',
    async () => {
      const cases = [
        {
          name: 'model.layers.0.mlp.up_proj.weight',
          module: 'model.layers.0.mlp.up_proj',
          lora: randomLora(8, 16, 4, 9),
          t: false,
          base: llamaBase
        },
        {
          name: 'h.0.attn.c_attn.weight',
          module: 'transformer.h.0.attn.c_attn',
          lora: randomLora(8, 24, 4, 10),
          t: true,
          base: gpt2Base
        }
      ]
      // One Python process for every case (importing torch is the slow part).
      const io = fresh()
      const merged: Float32Array[] = []
      const args: string[] = []
      for (const [idx, c] of cases.entries()) {
        const dir = fresh()
        await writePeftAdapter(dir, {
          config: { fan_in_fan_out: c.t, lora_alpha: 6 },
          loras: { [c.module]: c.lora }
        })
        merged.push((await mergeAll(await baseFolder(c.base), dir)).get(c.name)!)
        const d = path.join(io, String(idx))
        await fs.mkdir(d, { recursive: true })
        await fs.writeFile(path.join(d, 'w.bin'), new Uint8Array(c.base.get(c.name)!.data.buffer))
        await fs.writeFile(path.join(d, 'a.bin'), new Uint8Array(c.lora.a.buffer))
        await fs.writeFile(path.join(d, 'b.bin'), new Uint8Array(c.lora.b.buffer))
        args.push([d, c.lora.rank, c.lora.inDim, c.lora.outDim, c.t ? 1 : 0, 6 / 4].join(','))
      }
      const script = [
        'import torch, sys',
        'for spec in sys.argv[1:]:',
        "    d, r, i, o, t, s = spec.split(','); r, i, o, t, s = int(r), int(i), int(o), int(t), float(s)",
        "    ld = lambda f: torch.frombuffer(bytearray(open(d + '/' + f, 'rb').read()), dtype=torch.float32).double()",
        "    A = ld('a.bin').reshape(r, i); B = ld('b.bin').reshape(o, r)",
        '    delta = (B @ A) * s',
        "    W = ld('w.bin').reshape((i, o) if t else (o, i))",
        '    W = W + (delta.T if t else delta)',
        "    open(d + '/out.bin', 'wb').write(W.float().numpy().tobytes())"
      ].join('\n')
      const run = spawnSync(torchPython, ['-c', script, ...args], { encoding: 'utf8' })
      expect(run.status, run.stderr).toBe(0)
      for (const [idx, got] of merged.entries()) {
        const bytes = Uint8Array.from(await fs.readFile(path.join(io, String(idx), 'out.bin')))
        const torchOut = new Float32Array(bytes.buffer)
        let worst = 0
        for (let k = 0; k < got.length; k++) {
          worst = Math.max(worst, Math.abs(got[k]! - torchOut[k]!) / Math.abs(torchOut[k]!))
        }
        expect(worst).toBeLessThanOrEqual(2 ** -23)
      }
    }
  )
  if (!hasTorch) console.log('skipped: PyTorch merge cross-check (no torch in /usr/bin/python3)')
})

async function readTensorFromAdapter(dir: string, key: string): Promise<Float32Array> {
  const { openSafetensors, readSafetensorsTensor } = await import('../safetensors')
  return readSafetensorsTensor(
    await openSafetensors(path.join(dir, 'adapter_model.safetensors')),
    key
  )
}

describe('PEFT adapter refusals', () => {
  const q = (): Record<string, FixtureLora> => ({
    'model.layers.0.self_attn.q_proj': randomLora(8, 8, 4, 11)
  })

  it.each([
    ['peft_type', { peft_type: 'PREFIX_TUNING' }, /only LORA/],
    ['use_dora', { use_dora: true }, /DoRA/],
    ['lora_bias', { lora_bias: true }, /bias/],
    ['init_lora_weights', { init_lora_weights: 'pissa_niter_4' }, /changed the base weights/],
    ['init_lora_weights', { init_lora_weights: 'olora' }, /changed the base weights/],
    ['task_type', { task_type: 'SEQ_CLS' }, /CAUSAL_LM/],
    ['r', { r: 0 }, /positive/],
    ['lora_alpha', { lora_alpha: 'x' }, /positive/],
    ['trainable_token_indices', { trainable_token_indices: [1, 2] }, /token/],
    ['rank_pattern.q_proj', { rank_pattern: { q_proj: -1 } }, /positive/],
    ['rank_pattern.^q.*', { rank_pattern: { '^q.*': 4 } }, /regular-expression/],
    ['modules_to_save', { modules_to_save: ['lm_head'] }, /holds no weights/]
  ] as const)('config %s → refused naming the field', async (field, config, message) => {
    const err = await adapterFailure({ config, loras: q() })
    expect(err.file).toBe('adapter_config.json')
    expect(err.field).toBe(field)
    expect(err.message).toMatch(message)
  })

  it('a rank that disagrees with r, a missing factor, a DoRA vector, an unknown target', async () => {
    const rankWrong = await adapterFailure({ config: { r: 8 }, loras: q() })
    expect(rankWrong).toMatchObject({ file: 'adapter_model.safetensors', field: 'r' })
    expect(rankWrong.message).toMatch(/rank 4 but the config gives 8/)

    const noTarget = await adapterFailure({
      loras: { 'model.layers.7.self_attn.q_proj': randomLora(8, 8, 4, 12) }
    })
    expect(noTarget.tensor).toBe('base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight')
    expect(noTarget.message).toMatch(/is this adapter for this base/)

    const dir = fresh()
    await writePeftAdapter(dir, {
      loras: q(),
      replacements: {
        'model.layers.0.self_attn.q_proj.lora_magnitude_vector': {
          shape: [8],
          data: new Float32Array(8)
        }
      }
    })
    const dora = await readPeftAdapter(dir).catch((e: unknown) => e as CheckpointError)
    expect(dora).toMatchObject({ problem: 'adapter_invalid', field: 'use_dora' })

    const resized = await adapterFailure({
      config: { modules_to_save: ['lm_head'] },
      loras: q(),
      replacements: { 'lm_head.weight': { shape: [40, 8], data: new Float32Array(320) } }
    })
    expect(resized.message).toMatch(/resized vocabulary/)
  })

  it('fan_in_fan_out missing for a Conv1D weight: refused with a hint, not merged wrongly', async () => {
    const err = await adapterFailure(
      { loras: { 'transformer.h.0.attn.c_attn': randomLora(8, 24, 4, 13) } },
      gpt2Base
    )
    expect(err.field).toBe('fan_in_fan_out')
    expect(err.message).toMatch(/fan_in_fan_out missing/)
  })

  it('needs adapter_model.safetensors (a .bin is explained)', async () => {
    const dir = fresh()
    await writePeftAdapter(dir, { loras: q() })
    await fs.rename(
      path.join(dir, 'adapter_model.safetensors'),
      path.join(dir, 'adapter_model.bin')
    )
    const err = (await readPeftAdapter(dir).catch((e: unknown) => e)) as CheckpointError
    expect(err).toMatchObject({ problem: 'missing_file', file: 'adapter_model.safetensors' })
    expect(err.message).toMatch(/safe_serialization=True/)
  })

  it('parsePeftConfig and loraScaleFor are pure', () => {
    const cfg = parsePeftConfig({
      peft_type: 'LORA',
      r: 16,
      lora_alpha: 32,
      alpha_pattern: { down_proj: 8 }
    })
    expect(loraScaleFor(cfg, 'model.layers.3.mlp.down_proj')).toEqual({
      rank: 16,
      alpha: 8,
      scale: 0.5
    })
    expect(loraScaleFor(cfg, 'model.layers.3.mlp.xdown_proj')).toEqual({
      rank: 16,
      alpha: 32,
      scale: 2
    })
    expect(loraScaleFor({ ...cfg, useRslora: true }, 'q')).toEqual({
      rank: 16,
      alpha: 32,
      scale: 8
    })
  })
})
