/**
 * The streamed weight writer against the plain path (materializeWeight over readTensor): the same
 * bytes at every weight's offset, zero gaps, the same non-finite counts per tensor, for F32, F16 and
 * BF16 checkpoints of every transform (copy, transpose, concat-transposed, concat, Gemma's 1 + w),
 * with blocks so small that every tensor is read and written in many pieces.
 */
import { createHash } from 'node:crypto'
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { planBaseModel } from '../../engine'
import { randomHfModel, type HfDims } from '../../../../test/reference/hf/random'
import type { HfFamily } from '../../../../test/reference/hf/types'
import { writeHfFolder } from '../../../../test/fixtures/hf/writeHfFolder'
import { planHfFolder } from '../../../../test/fixtures/hf/planHfFolder'
import { ProgressMeter } from '../progress'
import { countNonFinite, type ReadableDtype } from '../safetensors'
import { readTensor } from './folder'
import { NonFiniteTally, writeCheckpointWeights } from './weightStream'
import { materializeWeight } from './weights'

const DIMS: HfDims = { hiddenSize: 24, layers: 2, heads: 4, kvHeads: 2, headDim: 6, vocabSize: 53 }

let root: string
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-weight-stream-'))
})
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true })
})

const CASES: [HfFamily, ReadableDtype, { copyElements: number; readBytes: number }][] = [
  ['llama', 'BF16', { copyElements: 7, readBytes: 50 }],
  ['qwen2', 'F16', { copyElements: 100, readBytes: 1 }],
  ['gemma3_text', 'BF16', { copyElements: 24 * 3, readBytes: 24 * 2 * 5 }],
  ['gpt2', 'F32', { copyElements: 13, readBytes: 4 }],
  ['mistral', 'F32', { copyElements: 1 << 20, readBytes: 1 << 20 }]
]

describe('writeCheckpointWeights', () => {
  it.each(CASES)(
    '%s %s: byte for byte what materializeWeight gives',
    async (family, dtype, blocks) => {
      const dims: HfDims =
        family === 'gpt2' ? { hiddenSize: 24, layers: 2, heads: 4, vocabSize: 53 } : DIMS
      const model = randomHfModel(family, dims, { seed: 3, tieWordEmbeddings: family !== 'llama' })
      // Non-finite values in a copied, a transposed and a joined tensor (NaN, +Inf, −Inf).
      const names = [...model.tensors.keys()]
      const poison: [string, number, number][] = [
        [
          names.find((n) => n.endsWith('wte.weight') || n.endsWith('embed_tokens.weight'))!,
          30,
          NaN
        ],
        [names.find((n) => /(q_proj|c_attn)\.weight$/.test(n))!, 5, Infinity],
        [names.find((n) => /(down_proj|c_proj)\.weight$/.test(n))!, 17, -Infinity],
        [names.find((n) => /(down_proj|c_proj)\.weight$/.test(n))!, 18, NaN]
      ]
      for (const [n, at, v] of poison) model.tensors.get(n)!.data[at] = v
      const dir = path.join(root, `${family}-${dtype}`)
      await writeHfFolder(dir, model, { dtype })
      const { folder, arch, plan } = await planHfFolder(dir)
      const layout = planBaseModel(arch.spec, 'base.onnx.data')
      const tally = new NonFiniteTally()
      const meter = new ProgressMeter({ tensorsTotal: 0, bytesTotal: 0, report: () => undefined })
      const dataPath = path.join(dir, 'base.onnx.data')
      const written = await writeCheckpointWeights(dataPath, layout, {
        folder,
        plan,
        meter,
        tally,
        blocks
      })
      const data = await fs.readFile(dataPath)
      expect(data.byteLength).toBe(layout.dataSize)
      // The digest computed as the bytes went out is the file's, for the file as it stands.
      expect(written.sha256).toBe(createHash('sha256').update(data).digest('hex'))
      const st = await fs.stat(dataPath, { bigint: true })
      expect([written.written.ino, written.written.size, written.written.ctimeNs]).toEqual([
        st.ino,
        st.size,
        st.ctimeNs
      ])

      const byName = new Map(plan.weights.map((w) => [w.name, w]))
      const covered = new Uint8Array(data.byteLength)
      for (const w of layout.weights) {
        const want = await materializeWeight(byName.get(w.name)!, (n) => readTensor(folder, n))
        const got = new Uint8Array(data.buffer, data.byteOffset + w.offset, w.length)
        expect(Buffer.compare(got, new Uint8Array(want.buffer, want.byteOffset, w.length))).toBe(0)
        covered.fill(1, w.offset, w.offset + w.length)
      }
      for (let i = 0; i < data.byteLength; i++) if (!covered[i]) expect(data[i]).toBe(0)
      expect(meter.bytesDone).toBe(
        plan.weights
          .flatMap((w) => w.sources)
          .reduce((n, s) => n + folder.tensors.get(s.tensor)!.byteLength, 0)
      )

      // The same per-tensor counts as scanning each whole tensor once.
      const fileOf = (): string => 'model.safetensors'
      const sizeOf = (t: string): number => folder.tensors.get(t)!.shape.reduce((a, b) => a * b, 1)
      const expected = new NonFiniteTally()
      for (const w of plan.weights) {
        for (const s of w.sources)
          expected.add(s.tensor, countNonFinite(await readTensor(folder, s.tensor)))
      }
      const messages = tally.messages(fileOf, sizeOf)
      expect(messages.sort()).toEqual(expected.messages(fileOf, sizeOf).sort())
      expect(messages.length).toBeGreaterThanOrEqual(2)
    }
  )
})

describe('writeCheckpointWeights when the digest thread fails', () => {
  it('rejects naming the file instead of waiting, and leaves no write running', async () => {
    const model = randomHfModel('llama', DIMS, { seed: 4, tieWordEmbeddings: false })
    const dir = path.join(root, 'digest-fails')
    await writeHfFolder(dir, model, { dtype: 'BF16' })
    const { folder, arch, plan } = await planHfFolder(dir)
    const dataPath = path.join(dir, 'base.onnx.data')
    const meter = new ProgressMeter({ tensorsTotal: 0, bytesTotal: 0, report: () => undefined })
    const run = writeCheckpointWeights(dataPath, planBaseModel(arch.spec, 'base.onnx.data'), {
      folder,
      plan,
      meter,
      tally: new NonFiniteTally(),
      blocks: { copyElements: 7, readBytes: 50 },
      digestSource: `require('node:worker_threads').parentPort.on('message', (m) => { if (m.kind === 'add') throw new Error('out of memory') })`
    })
    await expect(run).rejects.toThrow(
      `${dataPath}: the thread computing its SHA-256 failed: out of memory`
    )
    // The file was closed: it can be removed and its folder with it.
    await fs.rm(dir, { recursive: true })
  })
})
