/**
 * Reads rows of one float32 weight of a model graph in a bundle, wherever the graph keeps it
 * (inline raw data, or ONNX external data), without loading the model into ONNX Runtime. The
 * importers need a few rows of a base's weights (GPT-2's learned position at a lens's slot).
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { onnx } from 'onnx-proto'
import { AppError } from '@shared/ipc/errors'

/** Rows `start .. start + count − 1` of initializer `name` (2-D, float32) of the model in `modelFile`. */
export async function readWeightRows(
  modelFile: string,
  name: string,
  start: number,
  count: number
): Promise<Float32Array> {
  const fail = (message: string): never => {
    throw new AppError('bundle_invalid', `${modelFile}: initializer ${name}: ${message}`, {
      file: modelFile,
      field: `initializer.${name}`
    })
  }
  const model = onnx.ModelProto.decode(await fs.readFile(modelFile))
  const t = model.graph?.initializer?.find((i) => i.name === name)
  if (!t) return fail('not in the graph')
  const dims = (t.dims ?? []).map(Number)
  if (dims.length !== 2) return fail(`has ${dims.length} dimensions, expected 2`)
  if (t.dataType !== onnx.TensorProto.DataType.FLOAT) return fail('is not float32')
  const [rows, width] = dims as [number, number]
  if (!Number.isInteger(start) || start < 0 || count < 0 || start + count > rows) {
    return fail(`rows ${start}..${start + count - 1} are outside its ${rows}`)
  }
  const byteStart = start * width * 4
  const byteLength = count * width * 4
  const out = new Float32Array(count * width)
  const bytes = new Uint8Array(out.buffer)
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value]))
    const location = kv.get('location')
    if (!location || path.isAbsolute(location) || location.split(/[\\/]/).includes('..')) {
      return fail('external data without a location inside the bundle')
    }
    const handle = await fs.open(path.join(path.dirname(modelFile), location), 'r')
    try {
      const offset = Number(kv.get('offset') ?? 0) + byteStart
      const { bytesRead } = await handle.read(bytes, 0, byteLength, offset)
      if (bytesRead !== byteLength) fail('external data ends early')
    } finally {
      await handle.close()
    }
  } else if (t.rawData && t.rawData.length >= byteStart + byteLength) {
    bytes.set(t.rawData.subarray(byteStart, byteStart + byteLength))
  } else if (t.floatData && t.floatData.length >= (start + count) * width) {
    out.set(t.floatData.slice(start * width, (start + count) * width))
  } else {
    fail('holds fewer values than its dimensions say')
  }
  // Stored little-endian; a big-endian host would need a swap (the engine supports none).
  return out
}
