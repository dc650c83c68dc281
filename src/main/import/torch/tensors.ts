/**
 * Reads the elements of a tensor view from its storage record, widening float16 / bfloat16 to
 * float32 exactly. Contiguous views stream straight into the output array; other views read the
 * storage span they touch and gather. Every bound (view inside the storage, storage inside its
 * record, record inside the file) is checked before a byte is read.
 */
import type { TorchArchive } from './archive'
import { CheckpointError } from '../errors'
import type { TensorRef, TorchDtype } from './pickle'

export type FloatDtype = 'float32' | 'float16' | 'bfloat16'
export const FLOAT_DTYPES: readonly FloatDtype[] = ['float32', 'float16', 'bfloat16']

/** Largest tensor (elements) the reader materialises: 2^31 − 1 float32 values, 8 GiB. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1

export interface TensorReadOptions {
  signal?: AbortSignal
  /** Called with the number of bytes each chunk read. */
  onBytes?: (bytes: number) => void
}

export function elementCount(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) {
    n *= d
    if (!Number.isSafeInteger(n)) return Number.POSITIVE_INFINITY
  }
  return n
}

/** Bytes the storage record must be read for this view (what progress totals count). */
export function bytesToRead(ref: TensorRef): number {
  const n = elementCount(ref.shape)
  if (n === 0) return 0
  const [first, last] = span(ref)
  return (last - first + 1) * ref.storage.elementSize
}

function span(ref: TensorRef): [number, number] {
  let last = ref.offset
  for (let i = 0; i < ref.shape.length; i++) last += (ref.shape[i]! - 1) * ref.stride[i]!
  return [ref.offset, last]
}

function isContiguous(ref: TensorRef): boolean {
  let expected = 1
  for (let i = ref.shape.length - 1; i >= 0; i--) {
    if (ref.shape[i] !== 1 && ref.stride[i] !== expected) return false
    expected *= ref.shape[i]!
  }
  return true
}

/** Checks the view and its storage against the archive without reading anything. */
export function checkView(archive: TorchArchive, ref: TensorRef, where: string): void {
  const fail = (
    reason: 'invalid' | 'too_large' | 'unsupported',
    msg: string,
    at = where
  ): never => {
    throw CheckpointError.at(reason, archive.file, at, msg)
  }
  const n = elementCount(ref.shape)
  if (n > MAX_TENSOR_ELEMENTS)
    fail(
      'too_large',
      `${ref.shape.join('×')} elements exceed the ${MAX_TENSOR_ELEMENTS} the reader holds`
    )
  const { storage } = ref
  if (storage.elementSize === 0)
    fail('unsupported', `storage type ${storage.storageType} is not one the reader knows`)
  const record = `data/${storage.key}`
  const size = archive.recordSize(record)
  if (size === undefined)
    fail('invalid', `its storage record ${archive.recordName(record)} is missing`)
  const claimed = storage.numel * storage.elementSize
  if (!Number.isSafeInteger(claimed) || claimed !== size) {
    fail(
      'invalid',
      `the pickle says ${storage.numel} ${storage.dtype} elements (${claimed} bytes) but the ` +
        `record holds ${size} bytes`,
      archive.recordName(record)
    )
  }
  if (n === 0) return
  const [, last] = span(ref)
  if (!Number.isSafeInteger(last) || last >= storage.numel) {
    fail(
      'invalid',
      `the view (offset ${ref.offset}, shape [${ref.shape.join(', ')}], strides ` +
        `[${ref.stride.join(', ')}]) reaches element ${last} of a storage of ${storage.numel}`
    )
  }
}

let halfTable: Float32Array | undefined

/** float16 bits → float32 value, for all 65,536 patterns (subnormals, infinities, NaNs). */
function halfToFloat(): Float32Array {
  if (halfTable) return halfTable
  const table = new Float32Array(65536)
  const bits = new Uint32Array(table.buffer)
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16
    const exp = (h >> 10) & 0x1f
    const frac = h & 0x3ff
    if (exp === 0) {
      // zero or subnormal: frac × 2^-24, exact in float32
      table[h] = (frac / 16777216) * (sign ? -1 : 1)
      if (frac === 0) bits[h] = sign
    } else if (exp === 31) {
      bits[h] = sign | 0x7f800000 | (frac << 13)
    } else {
      bits[h] = sign | ((exp - 15 + 127) << 23) | (frac << 13)
    }
  }
  halfTable = table
  return table
}

/** Typed-array views below use the host's byte order; storages are little-endian. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Widens little-endian elements of `dtype` into `out` starting at element `at`. */
function widen(dtype: FloatDtype, src: Buffer, out: Float32Array, at: number): void {
  const count = src.length / (dtype === 'float32' ? 4 : 2)
  if (!HOST_IS_LITTLE_ENDIAN) {
    const table = halfToFloat()
    for (let i = 0; i < count; i++) {
      out[at + i] =
        dtype === 'float32'
          ? src.readFloatLE(i * 4)
          : dtype === 'bfloat16'
            ? new Float32Array(new Uint32Array([src.readUInt16LE(i * 2) << 16]).buffer)[0]!
            : table[src.readUInt16LE(i * 2)]!
    }
    return
  }
  if (dtype === 'float32') {
    src.copy(new Uint8Array(out.buffer, out.byteOffset + at * 4, count * 4))
    return
  }
  // Halves are read through a Uint16Array when the chunk is 2-aligned (always, in practice).
  const halves =
    src.byteOffset % 2 === 0
      ? new Uint16Array(src.buffer, src.byteOffset, count)
      : new Uint16Array(Uint8Array.from(src).buffer)
  if (dtype === 'bfloat16') {
    const bits = new Uint32Array(out.buffer, out.byteOffset + at * 4, count)
    for (let i = 0; i < count; i++) bits[i] = halves[i]! << 16
    return
  }
  const table = halfToFloat()
  for (let i = 0; i < count; i++) out[at + i] = table[halves[i]!]!
}

/** Reads a float32/float16/bfloat16 tensor as float32 (row-major, its own shape). */
export async function readFloatTensor(
  archive: TorchArchive,
  ref: TensorRef,
  where: string,
  options: TensorReadOptions = {}
): Promise<Float32Array> {
  const dtype = ref.storage.dtype
  if (!isFloatDtype(dtype)) {
    throw CheckpointError.at(
      'unsupported',
      archive.file,
      where,
      `is ${dtype}; lens tensors are read as float32, float16 or bfloat16`
    )
  }
  checkView(archive, ref, where)
  const n = elementCount(ref.shape)
  const out = new Float32Array(n)
  if (n === 0) return out
  const size = ref.storage.elementSize
  const record = `data/${ref.storage.key}`
  const [first, last] = span(ref)
  if (isContiguous(ref)) {
    // Chunks may end mid-element (a short read): carry the partial element over.
    let carry = Buffer.alloc(0)
    let written = 0
    await archive.readRange(
      record,
      first * size,
      (first + n) * size,
      (chunk) => {
        const data = carry.length ? Buffer.concat([carry, chunk]) : chunk
        const whole = data.length - (data.length % size)
        widen(dtype, data.subarray(0, whole), out, written)
        written += whole / size
        carry = Buffer.from(data.subarray(whole))
        options.onBytes?.(chunk.length)
      },
      options.signal
    )
    return out
  }
  const spanBytes = Buffer.alloc((last - first + 1) * size)
  await archive.readRange(
    record,
    first * size,
    (last + 1) * size,
    (chunk, at) => {
      chunk.copy(spanBytes, at)
      options.onBytes?.(chunk.length)
    },
    options.signal
  )
  const all = new Float32Array(last - first + 1)
  widen(dtype, spanBytes, all, 0)
  gather(ref, all, first, out)
  return out
}

/** Reads an int64 tensor (the decoder's `prompt_ids`) as numbers; refuses values beyond 2^53. */
export async function readInt64Tensor(
  archive: TorchArchive,
  ref: TensorRef,
  where: string,
  options: TensorReadOptions = {}
): Promise<number[]> {
  if (ref.storage.dtype !== 'int64') {
    throw CheckpointError.at(
      'invalid',
      archive.file,
      where,
      `is ${ref.storage.dtype}; expected int64`
    )
  }
  checkView(archive, ref, where)
  const n = elementCount(ref.shape)
  if (n === 0) return []
  const [first, last] = span(ref)
  const spanBytes = Buffer.alloc((last - first + 1) * 8)
  await archive.readRange(
    `data/${ref.storage.key}`,
    first * 8,
    (last + 1) * 8,
    (chunk, at) => {
      chunk.copy(spanBytes, at)
      options.onBytes?.(chunk.length)
    },
    options.signal
  )
  const all = Array.from({ length: last - first + 1 }, (_, i) => spanBytes.readBigInt64LE(i * 8))
  const picked = new Array<bigint>(n)
  gather(ref, all, first, picked)
  return picked.map((v) => {
    const num = Number(v)
    if (!Number.isSafeInteger(num)) {
      throw CheckpointError.at('invalid', archive.file, where, `holds ${v}, beyond 2^53`)
    }
    return num
  })
}

function gather<T>(
  ref: TensorRef,
  src: ArrayLike<T>,
  first: number,
  out: { [i: number]: T }
): void {
  const rank = ref.shape.length
  const index = new Array<number>(rank).fill(0)
  let srcPos = ref.offset - first
  const total = elementCount(ref.shape)
  for (let k = 0; k < total; k++) {
    out[k] = src[srcPos]!
    for (let d = rank - 1; d >= 0; d--) {
      const size = ref.shape[d]!
      const stride = ref.stride[d]!
      const next = index[d]! + 1
      srcPos += stride
      if (next < size) {
        index[d] = next
        break
      }
      srcPos -= stride * size
      index[d] = 0
    }
  }
}

function isFloatDtype(dtype: TorchDtype): dtype is FloatDtype {
  return (FLOAT_DTYPES as readonly string[]).includes(dtype)
}
