/**
 * NaN and infinity in a lens's weights: validation (what `inspect` runs) finds them in tensor
 * files and in the lens graphs' initializers and says where; anything that still produces a
 * non-finite value at run time is an error naming the lens and the stage, never a row.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { onnx } from 'onnx-proto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDemoBundle, openBundle } from './index'
import { analyzeText } from './analysis'
import { GroupLenses } from './lenses'
import { openGroupParts } from './loading'

let root: string
let demoDir: string
let n = 0

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'talkative-nonfinite-'))
  demoDir = await ensureDemoBundle(path.join(root, 'cache'))
})
afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function copyDemo(): Promise<string> {
  const dir = path.join(root, `case-${n++}`)
  await cp(demoDir, dir, { recursive: true })
  return dir
}

const LENS = 'lenses/words-l1'

describe('validation scans lens weights for NaN and infinity', () => {
  it('an infinity in encoder_prefix.f32 names the file, the field and the value', async () => {
    const dir = await copyDemo()
    const file = path.join(dir, LENS, 'encoder_prefix.f32')
    const bytes = await readFile(file)
    bytes.writeFloatLE(Infinity, 4 * 7)
    await writeFile(file, bytes)
    await expect(openBundle(dir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: `${LENS}/encoder_prefix.f32`,
      field: 'encoder.prefix',
      message: expect.stringMatching(/value 7 is Infinity/)
    })
  })

  it("a NaN in the lens head's initializers names the graph and the initializer", async () => {
    const dir = await copyDemo()
    const file = path.join(dir, LENS, 'encoder_head.onnx')
    const model = onnx.ModelProto.decode(await readFile(file))
    const weights = model.graph!.initializer!.find(
      (t) => t.dataType === onnx.TensorProto.DataType.FLOAT
    )
    expect(weights, 'the demo head has float weights').toBeDefined()
    if (weights!.rawData && weights!.rawData.byteLength >= 4) {
      const raw = Buffer.from(weights!.rawData)
      raw.writeFloatLE(NaN, 0)
      weights!.rawData = raw
    } else weights!.floatData![0] = NaN
    await writeFile(file, onnx.ModelProto.encode(model).finish())
    await expect(openBundle(dir)).rejects.toMatchObject({
      code: 'bundle_invalid',
      file: `${LENS}/encoder_head.onnx`,
      field: `initializer.${weights!.name}`,
      message: expect.stringMatching(/value 0 is NaN/)
    })
  })
})

describe('a non-finite value at run time is an error, not an empty or null row', () => {
  it('names the lens and the stage', async () => {
    const parts = await openGroupParts(await copyDemo(), { provider: 'cpu', threads: 1 })
    try {
      const lenses = new GroupLenses(parts)
      const lens = await lenses.get('words-l1')
      // Weights that turned non-finite after validation (or a stage that overflows).
      const poisoned = { ...lens, encoderPrefix: lens.encoderPrefix.map(() => Infinity) }
      const run = analyzeText(
        parts,
        async () => poisoned,
        { lensId: 'words-l1', text: 'The cat sat.', options: { bestOfK: 1, salience: false } },
        {}
      )
      await expect(run).rejects.toMatchObject({
        code: 'bundle_invalid',
        file: `${LENS}/lens.json`,
        field: expect.stringMatching(/^encoder and lens head/),
        message: expect.stringMatching(/lens "words-l1".*non-finite/)
      })
      await lenses.settled()
    } finally {
      await Promise.all(parts.sessions.map((s) => s.release()))
    }
  })
})
