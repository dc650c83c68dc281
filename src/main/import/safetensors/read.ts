/**
 * Streaming safetensors reader. Opening reads only the header; a tensor is read from its own offset
 * with large positioned reads (never the whole file), converted to float32 as it arrives: F32 lands
 * directly in the output array, F16 and BF16 go through a reused pair of chunk buffers (the next
 * chunk is read while this one is converted). No per-element allocation anywhere.
 */
import os from 'node:os'
import type { Stats } from 'node:fs'
import type { promises as fs } from 'node:fs'
import { checkpointFail, throwIfAborted, type CheckpointErrorDetails } from '../errors'
import { openRegularFile, statRegularFile } from '../files'
import { READABLE_DTYPES, bytesPerElement, isReadableDtype, type ReadableDtype } from './dtypes'
import { widenHalf } from './convert'
import { parseHeaderJson, parseHeaderLength, type SafetensorsTensorInfo } from './header'

/** Bytes per positioned read: large enough that syscalls cost nothing, small enough to cancel fast. */
export const READ_CHUNK_BYTES = 16 * 1024 * 1024

export interface SafetensorsFile {
  /** Path the file was opened from (absolute when the caller gave an absolute path). */
  path: string
  /** How errors name the file (defaults to `path`; folders pass the name relative to the folder). */
  label: string
  /** File size in bytes at open time. */
  size: number
  /** Byte length of the JSON header. */
  headerLength: number
  /** Absolute offset of the data region (8 + headerLength). */
  dataStart: number
  /** The header's `__metadata__` strings (empty when absent). */
  metadata: Record<string, string>
  /** Every tensor the header lists, readable or not, in header order. */
  tensors: ReadonlyMap<string, SafetensorsTensorInfo>
  /** Identity at open time: a read refuses a file replaced or resized since. */
  readonly identity: Stats
}

export interface OpenSafetensorsOptions {
  /** How errors name the file; defaults to the path. */
  label?: string
  signal?: AbortSignal
}

export interface ReadTensorOptions {
  signal?: AbortSignal
  /** Called after each chunk with the number of bytes that chunk read from the file (a delta). */
  onBytes?: (bytes: number) => void
  /** Read only rows `start` (inclusive) to `end` (exclusive) of the first dimension. */
  rows?: { start: number; end: number }
  /**
   * Write into this array (its length must be the element count read) instead of a new one. Reusing
   * one array across tensors is several times faster than a new one per tensor, whose pages are
   * all faulted in on first touch (bench/safetensors.ts measures both).
   */
  into?: Float32Array
}

const littleEndian = os.endianness() === 'LE'
/** V8's limit on a typed array's length (64-bit builds). */
const MAX_ELEMENTS_PER_ARRAY = 2 ** 32 - 1

/** Opens a safetensors file and validates its header; tensor data is not read. */
export async function openSafetensors(
  filePath: string,
  options: OpenSafetensorsOptions = {}
): Promise<SafetensorsFile> {
  const label = options.label ?? filePath
  const where = { file: label }
  throwIfAborted(options.signal, label)
  const identity = await statRegularFile(filePath, where)
  const handle = await openRegularFile(filePath, where, identity)
  try {
    const first8 = new Uint8Array(8)
    const got = await readAtMost(handle, first8, 0, 8, 0, where)
    const headerLength = parseHeaderLength(first8.subarray(0, got), identity.size, label)
    const headerBytes = new Uint8Array(headerLength)
    await readExactly(handle, headerBytes, 0, headerLength, 8, where)
    const dataStart = 8 + headerLength
    const { metadata, tensors } = parseHeaderJson(headerBytes, dataStart, identity.size, label)
    return {
      path: filePath,
      label,
      size: identity.size,
      headerLength,
      dataStart,
      metadata,
      tensors,
      identity
    }
  } finally {
    await handle.close().catch(() => undefined)
  }
}

/** The error for a dtype this reader does not convert: names the file, tensor and dtype. */
export function unsupportedDtype(label: string, info: SafetensorsTensorInfo): never {
  checkpointFail(
    'dtype_unsupported',
    { file: label, tensor: info.name, field: 'dtype' },
    `dtype ${info.dtype} is not supported; supported dtypes are ${READABLE_DTYPES.join(', ')} ` +
      '(quantised and integer weights cannot be imported; save the model in float32, float16 or bfloat16)'
  )
}

/** Looks a tensor up by name, failing with `missing_tensor` naming the file. */
export function tensorInfo(file: SafetensorsFile, name: string): SafetensorsTensorInfo {
  const info = file.tensors.get(name)
  if (!info) {
    checkpointFail('missing_tensor', { file: file.label, tensor: name }, 'not in this file')
  }
  return info
}

/** The element range a read covers: the whole tensor, or rows start..end of its first dimension. */
function elementRange(
  info: SafetensorsTensorInfo,
  rows: ReadTensorOptions['rows'],
  where: CheckpointErrorDetails
): { firstElement: number; count: number } {
  if (!rows) return { firstElement: 0, count: info.numel }
  const n = info.shape[0]
  if (info.shape.length === 0 || n === undefined) {
    checkpointFail('shape_invalid', where, 'a scalar has no rows to read')
  }
  const { start, end } = rows
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    start < 0 ||
    end < start ||
    end > n
  ) {
    checkpointFail('shape_invalid', where, `rows ${start}–${end} are outside 0–${n}`)
  }
  const perRow = n === 0 ? 0 : info.numel / n
  return { firstElement: start * perRow, count: (end - start) * perRow }
}

/** The tensor's dtype when this reader can read it on this machine; else a checkpoint error. */
function readableDtypeOf(file: SafetensorsFile, info: SafetensorsTensorInfo): ReadableDtype {
  if (!isReadableDtype(info.dtype)) unsupportedDtype(file.label, info)
  if (!littleEndian) {
    checkpointFail(
      'unreadable',
      { file: file.label, tensor: info.name },
      'safetensors data is little-endian; this machine is not'
    )
  }
  return info.dtype
}

/**
 * Reads one tensor (or a range of its rows) as float32. F32, F16 and BF16 convert exactly; any
 * other dtype is refused with the file, tensor and dtype named.
 */
export async function readSafetensorsTensor(
  file: SafetensorsFile,
  name: string,
  options: ReadTensorOptions = {}
): Promise<Float32Array> {
  const info = tensorInfo(file, name)
  const where = { file: file.label, tensor: name }
  const dtype = readableDtypeOf(file, info)
  const bpe = bytesPerElement(dtype)
  const { firstElement, count } = elementRange(info, options.rows, where)
  if (!options.into && count > MAX_ELEMENTS_PER_ARRAY) {
    checkpointFail(
      'shape_invalid',
      where,
      `${count} elements are more than one float32 array can hold; read it in row ranges`
    )
  }
  let out: Float32Array
  try {
    out = options.into ?? new Float32Array(count)
  } catch (err) {
    checkpointFail(
      'unreadable',
      where,
      `cannot allocate ${Math.round((count * 4) / 1e6)} MB for it: ${(err as Error).message}`
    )
  }
  if (out.length !== count) {
    checkpointFail(
      'shape_invalid',
      where,
      `output array holds ${out.length} values, the read gives ${count}`
    )
  }
  if (count === 0) return out

  throwIfAborted(options.signal, file.label)
  const handle = await openRegularFile(file.path, { file: file.label }, file.identity)
  try {
    const position = info.offset + firstElement * bpe
    const byteLength = count * bpe
    if (dtype === 'F32') {
      await readFloat32(handle, out, position, byteLength, options, where)
    } else {
      await readHalf(handle, out, dtype, position, byteLength, options, where)
    }
  } finally {
    await handle.close().catch(() => undefined)
  }
  return out
}

export interface RawTensorBytes {
  dtype: ReadableDtype
  /** Elements read. */
  count: number
  /** The stored little-endian bytes: a window of the `into` array, count × element size long. */
  bytes: Uint8Array
}

/**
 * Reads one tensor's stored bytes (or a range of its rows) unconverted into `into` (at its start),
 * with the same checks as readSafetensorsTensor: a dtype it cannot convert, a range outside the
 * tensor, a file replaced since it was opened, or a file that ends early are checkpoint errors.
 * For callers that convert while they rearrange (the importer's transposes, convert.ts).
 */
export async function readSafetensorsRaw(
  file: SafetensorsFile,
  name: string,
  into: Uint8Array,
  options: Omit<ReadTensorOptions, 'into'> = {}
): Promise<RawTensorBytes> {
  const info = tensorInfo(file, name)
  const where = { file: file.label, tensor: name }
  const dtype = readableDtypeOf(file, info)
  const bpe = bytesPerElement(dtype)
  const { firstElement, count } = elementRange(info, options.rows, where)
  const byteLength = count * bpe
  if (into.byteLength < byteLength) {
    checkpointFail(
      'shape_invalid',
      where,
      `read buffer holds ${into.byteLength} bytes, the read gives ${byteLength}`
    )
  }
  const bytes = into.subarray(0, byteLength)
  if (count === 0) return { dtype, count, bytes }
  throwIfAborted(options.signal, file.label)
  const handle = await openRegularFile(file.path, { file: file.label }, file.identity)
  try {
    const position = info.offset + firstElement * bpe
    for (let done = 0; done < byteLength;) {
      throwIfAborted(options.signal, where.file)
      const n = Math.min(READ_CHUNK_BYTES, byteLength - done)
      await readExactly(handle, bytes, done, n, position + done, where)
      done += n
      options.onBytes?.(n)
    }
  } finally {
    await handle.close().catch(() => undefined)
  }
  return { dtype, count, bytes }
}

async function readFloat32(
  handle: fs.FileHandle,
  out: Float32Array,
  position: number,
  byteLength: number,
  options: ReadTensorOptions,
  where: CheckpointErrorDetails
): Promise<void> {
  const bytes = new Uint8Array(out.buffer, out.byteOffset, byteLength)
  for (let done = 0; done < byteLength;) {
    throwIfAborted(options.signal, where.file)
    const n = Math.min(READ_CHUNK_BYTES, byteLength - done)
    await readExactly(handle, bytes, done, n, position + done, where)
    done += n
    options.onBytes?.(n)
  }
}

/**
 * 16-bit data is read straight into the upper half of the output's own bytes and widened forward
 * in place: element i's four output bytes [4i, 4i+4) never reach an unread input element, which
 * sits at [2N + 2j, 2N + 2j + 2) for j > i, because 4i + 4 <= 2N + 2i + 2 whenever i < N. So no
 * chunk buffers are needed, and the read of chunk k+1 (into its own input bytes) runs while chunk
 * k is widened (whose output ends at or before where chunk k+1 begins).
 */
async function readHalf(
  handle: fs.FileHandle,
  out: Float32Array,
  dtype: 'F16' | 'BF16',
  position: number,
  byteLength: number,
  options: ReadTensorOptions,
  where: CheckpointErrorDetails
): Promise<void> {
  const count = out.length
  const out32 = new Uint32Array(out.buffer, out.byteOffset, count)
  const input = new Uint8Array(out.buffer, out.byteOffset + 2 * count, byteLength)
  const input16 = new Uint16Array(out.buffer, out.byteOffset + 2 * count, count)
  const readChunk = (done: number): Promise<number> => {
    const n = Math.min(READ_CHUNK_BYTES, byteLength - done)
    return readExactly(handle, input, done, n, position + done, where).then(() => n)
  }
  let pending: Promise<number> | undefined = readChunk(0)
  try {
    for (let done = 0; done < byteLength;) {
      const n: number = await pending!
      pending = undefined
      throwIfAborted(options.signal, where.file)
      const next = done + n
      if (next < byteLength) pending = readChunk(next)
      // Element by element in order, so the in-place widening above holds (convert.ts's loops).
      widenHalf(input16.subarray(done / 2, next / 2), out32.subarray(done / 2, next / 2), dtype)
      done = next
      options.onBytes?.(n)
    }
  } finally {
    // Never return while a read still writes into the output (or races the handle's close).
    if (pending) await pending.catch(() => undefined)
  }
}

async function readAtMost(
  handle: fs.FileHandle,
  target: Uint8Array,
  offset: number,
  length: number,
  position: number,
  where: CheckpointErrorDetails
): Promise<number> {
  let done = 0
  while (done < length) {
    let bytesRead: number
    try {
      ;({ bytesRead } = await handle.read(target, offset + done, length - done, position + done))
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      checkpointFail(
        'unreadable',
        where,
        `read failed at byte ${position + done}: ${e.code ?? ''} ${e.message}`
      )
    }
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}

async function readExactly(
  handle: fs.FileHandle,
  target: Uint8Array,
  offset: number,
  length: number,
  position: number,
  where: CheckpointErrorDetails
): Promise<void> {
  const got = await readAtMost(handle, target, offset, length, position, where)
  if (got < length) {
    checkpointFail(
      'truncated',
      where,
      `file ends at byte ${position + got}, before the ${length} bytes wanted from byte ${position}`
    )
  }
}
