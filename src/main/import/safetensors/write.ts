/**
 * Safetensors writer for F32, F16 and BF16, used by test fixtures and benchmarks. Values are taken
 * as float32 first (as PyTorch converts), then rounded to nearest, ties to even, into 16-bit
 * formats. Writes tensor by tensor in chunks, so a fill function can produce a file of any size in
 * bounded memory.
 */
import { promises as fs } from 'node:fs'
import { float32BitsToBfloat16Bits, float32BitsToFloat16Bits, type ReadableDtype } from './dtypes'

/** Produces values `start … start + out.length - 1` (flat, row-major) into `out`. */
export type TensorFill = (start: number, out: Float32Array) => void

export type TensorValues = Float32Array | Float64Array | readonly number[]

export interface WritableTensor {
  dtype: ReadableDtype
  shape: readonly number[]
  data: TensorValues | TensorFill
}

const CHUNK_ELEMENTS = 1 << 20

/** Converts float32 values to the bytes of `dtype` (little-endian). */
export function encodeTensorValues(dtype: ReadableDtype, values: Float32Array): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)
  const out = new Uint16Array(values.length)
  const convert = dtype === 'BF16' ? float32BitsToBfloat16Bits : float32BitsToFloat16Bits
  for (let i = 0; i < bits.length; i++) out[i] = convert(bits[i]!)
  return new Uint8Array(out.buffer)
}

function numelOf(name: string, shape: readonly number[]): number {
  let n = 1
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new Error(`writeSafetensors: tensor "${name}": bad shape ${JSON.stringify(shape)}`)
    }
    n *= d
  }
  return n
}

/**
 * Writes a safetensors file: tensors in the map's order, laid out contiguously; the header is
 * padded with spaces to a multiple of 8 bytes, as the reference implementation does.
 * Returns the file's size.
 */
export async function writeSafetensors(
  filePath: string,
  tensors: ReadonlyMap<string, WritableTensor> | Readonly<Record<string, WritableTensor>>,
  metadata?: Readonly<Record<string, string>>
): Promise<number> {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)
  const header: Record<string, unknown> = {}
  if (metadata) header.__metadata__ = { ...metadata }
  let offset = 0
  const numels: number[] = []
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error('writeSafetensors: "__metadata__" is reserved')
    const numel = numelOf(name, t.shape)
    if (typeof t.data !== 'function' && t.data.length !== numel) {
      throw new Error(
        `writeSafetensors: tensor "${name}" has ${t.data.length} values for shape ${JSON.stringify(t.shape)}`
      )
    }
    const bytes = numel * (t.dtype === 'F32' ? 4 : 2)
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] }
    numels.push(numel)
    offset += bytes
  }
  let json = JSON.stringify(header)
  const jsonBytes = Buffer.byteLength(json, 'utf8')
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8)
  const headerBuf = Buffer.from(json, 'utf8')
  const lengthBuf = Buffer.alloc(8)
  lengthBuf.writeBigUInt64LE(BigInt(headerBuf.length))

  const handle = await fs.open(filePath, 'w')
  try {
    await writeAll(handle, lengthBuf)
    await writeAll(handle, headerBuf)
    const scratch = new Float32Array(
      Math.min(
        CHUNK_ELEMENTS,
        numels.reduce((a, b) => Math.max(a, b), 1)
      )
    )
    for (let t = 0; t < entries.length; t++) {
      const { dtype, data } = entries[t]![1]
      const numel = numels[t]!
      for (let start = 0; start < numel; start += CHUNK_ELEMENTS) {
        const n = Math.min(CHUNK_ELEMENTS, numel - start)
        let chunk: Float32Array
        if (typeof data === 'function') {
          chunk = scratch.subarray(0, n)
          data(start, chunk)
        } else if (data instanceof Float32Array) {
          chunk = data.subarray(start, start + n)
        } else {
          chunk = scratch.subarray(0, n)
          for (let i = 0; i < n; i++) chunk[i] = data[start + i]!
        }
        await writeAll(handle, encodeTensorValues(dtype, chunk))
      }
    }
  } finally {
    await handle.close()
  }
  return 8 + headerBuf.length + offset
}

async function writeAll(handle: fs.FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done)
    done += bytesWritten
  }
}
