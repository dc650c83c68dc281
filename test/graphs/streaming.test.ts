/**
 * A base model written the way an importer writes it: the graph planned without weights, the
 * external-data file filled one weight at a time from the checkpoint through the weight plan. It
 * must equal the model built in memory, bit for bit, and load and run from its folder.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { onnx } from 'onnx-proto'
import { afterAll, describe, expect, it } from 'vitest'
import { BaseModel } from '../../src/main/engine/baseModel'
import { Session } from '../../src/main/engine/ort'
import {
  EXTERNAL_ALIGNMENT,
  buildBaseModel,
  planBaseModel
} from '../../src/main/engine/graph/transformer'
import { writeStreamedModel } from '../../src/main/engine/bundle/write'
import { readHfArchitecture } from '../../src/main/import/hf/config'
import { materializeWeight, planHfWeights } from '../../src/main/import/hf/weights'
import { randomHfModel, type HfDims } from '../reference/hf/random'

const DIMS: HfDims = { hiddenSize: 32, layers: 3, heads: 4, kvHeads: 2, headDim: 12, vocabSize: 61 }

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe('streamed base model', () => {
  it('lays every weight out 64-byte aligned, in order, without overlap', () => {
    const arch = readHfArchitecture(randomHfModel('gemma2', DIMS).config, 'config.json')
    const layout = planBaseModel(arch.spec, 'base.onnx.data')
    let end = 0
    for (const w of layout.weights) {
      expect(w.offset % EXTERNAL_ALIGNMENT).toBe(0)
      expect(w.offset).toBeGreaterThanOrEqual(end)
      expect(w.length).toBe(w.dims.reduce((a, b) => a * b, 1) * 4)
      end = w.offset + w.length
    }
    expect(layout.dataSize).toBe(end)
    // The graph itself holds no weight values: only the rope tables and the embedding scale.
    const inline = (onnx.ModelProto.decode(layout.model).graph!.initializer ?? []).filter(
      (t) => t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL
    )
    expect(inline.map((t) => t.name).sort()).toEqual(['emb_scale', 'rope.global.inv_freq'])
  })

  it('writes tensor by tensor what the in-memory build computes, and runs from disk', async () => {
    const ckpt = randomHfModel('qwen3', DIMS, { seed: 3, tieWordEmbeddings: true })
    const arch = readHfArchitecture(ckpt.config, 'config.json')
    const plan = planHfWeights(
      arch.spec,
      false,
      [...ckpt.tensors].map(([name, t]) => ({ name, shape: t.shape })),
      'model.safetensors'
    )
    const byName = new Map(plan.weights.map((w) => [w.name, w]))
    const reads: string[] = []
    const read = (n: string): Float32Array => {
      reads.push(n)
      return ckpt.tensors.get(n)!.data
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tw-stream-'))
    dirs.push(dir)
    const order: string[] = []
    const ref = await writeStreamedModel(
      dir,
      { id: 'base', file: 'base.onnx' },
      arch.spec,
      (w) => materializeWeight(byName.get(w.name)!, read),
      (w) => order.push(w.name)
    )
    expect(ref).toMatchObject({
      architecture: 'qwen3',
      kvHeads: 2,
      headDim: 12,
      graphDtype: 'float32'
    })
    expect(order).toEqual(plan.weights.map((w) => w.name))
    // Every checkpoint tensor read once; the tied embedding stored once.
    expect(new Set(reads).size).toBe(reads.length)
    expect(reads.length).toBe(ckpt.tensors.size)

    const weights = new Map<string, Float32Array>()
    for (const w of plan.weights)
      weights.set(w.name, await materializeWeight(w, (n) => ckpt.tensors.get(n)!.data))
    const layout = planBaseModel(arch.spec, 'base.onnx.data')
    const data = await readFile(path.join(dir, 'base.onnx.data'))
    expect(data.byteLength).toBe(layout.dataSize)
    for (const w of layout.weights) {
      const stored = new Float32Array(
        data.buffer.slice(data.byteOffset + w.offset, data.byteOffset + w.offset + w.length)
      )
      expect(stored).toEqual(weights.get(w.name))
    }
    expect((await stat(path.join(dir, 'base.onnx'))).size).toBe(layout.model.byteLength)

    const fromDisk = await Session.create(path.join(dir, 'base.onnx'), {
      provider: 'cpu',
      threads: 1
    })
    const inMemory = await Session.create(buildBaseModel(arch.spec, weights).model, {
      provider: 'cpu',
      threads: 1
    })
    try {
      const ids = [3, 1, 4, 1, 5, 9, 2, 6]
      const a = await new BaseModel(fromDisk, 32).activations(ids, 2)
      const b = await new BaseModel(inMemory, 32).activations(ids, 2)
      expect(a).toEqual(b)
    } finally {
      await fromDisk.release()
      await inMemory.release()
    }
  })
})
