/**
 * The safetensors header, parsed and validated without touching tensor data: an 8-byte
 * little-endian length, then that many bytes of UTF-8 JSON mapping each tensor name to
 * `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the data region that follows
 * the header), plus an optional `__metadata__` map of strings.
 */
import { checkpointFail } from '../errors'
import { isPlainObject } from '../files'
import { SAFETENSORS_DTYPE_BITS, isSafetensorsDtype, type SafetensorsDtype } from './dtypes'

/** The same ceiling the reference implementation sets; real headers are well under 1 MB. */
export const MAX_HEADER_BYTES = 100_000_000
/** No real tensor has more dimensions; a bound keeps a hostile shape from costing anything. */
export const MAX_RANK = 16

/** One tensor as the header describes it, with offsets made absolute in the file. */
export interface SafetensorsTensorInfo {
  name: string
  dtype: SafetensorsDtype
  shape: number[]
  /** Number of elements (1 for a scalar, 0 when a dimension is 0). */
  numel: number
  /** Absolute byte offset of the tensor's first byte in the file. */
  offset: number
  byteLength: number
}

export interface ParsedHeader {
  metadata: Record<string, string>
  tensors: Map<string, SafetensorsTensorInfo>
}

/**
 * Reads the header length from the first 8 bytes and checks it against the file size.
 * `label` names the file in errors.
 */
export function parseHeaderLength(first8: Uint8Array, fileSize: number, label: string): number {
  const where = { file: label }
  if (fileSize < 8 || first8.length < 8) {
    checkpointFail(
      'truncated',
      where,
      `file is ${fileSize} bytes, too short for a safetensors header`
    )
  }
  const view = new DataView(first8.buffer, first8.byteOffset, 8)
  const length = view.getBigUint64(0, true)
  if (length < 2n) {
    checkpointFail(
      'header_invalid',
      where,
      `header length ${length} is too small for a JSON object`
    )
  }
  if (length > BigInt(MAX_HEADER_BYTES)) {
    checkpointFail(
      'header_invalid',
      where,
      `header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`
    )
  }
  const n = Number(length)
  if (8 + n > fileSize) {
    checkpointFail(
      'truncated',
      where,
      `header claims ${n} bytes but the file has only ${fileSize - 8} after the length (truncated?)`
    )
  }
  return n
}

/**
 * Parses and validates the header JSON. `dataStart` is 8 + header length; `fileSize` bounds every
 * tensor. Checks: JSON object, `__metadata__` a map of strings, known dtypes, shapes of non-negative
 * integers, `begin ≤ end` inside the data region, byte length = numel × dtype size, no overlaps.
 */
export function parseHeaderJson(
  bytes: Uint8Array,
  dataStart: number,
  fileSize: number,
  label: string
): ParsedHeader {
  const where = { file: label }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    checkpointFail('header_invalid', where, 'header is not valid UTF-8')
  }
  if (!text.startsWith('{')) {
    checkpointFail(
      'header_invalid',
      where,
      'header does not start with "{" (not a safetensors file?)'
    )
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    checkpointFail('header_invalid', where, `header is not valid JSON: ${(err as Error).message}`)
  }
  if (!isPlainObject(raw)) checkpointFail('header_invalid', where, 'header must be a JSON object')

  const dataLength = fileSize - dataStart
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>
  const tensors = new Map<string, SafetensorsTensorInfo>()
  const spans: { name: string; begin: number; end: number }[] = []

  for (const [name, entry] of Object.entries(raw)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) {
        checkpointFail('header_invalid', { ...where, field: '__metadata__' }, 'must be an object')
      }
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') {
          checkpointFail(
            'header_invalid',
            { ...where, field: `__metadata__.${k}` },
            'metadata values must be strings'
          )
        }
        metadata[k] = v
      }
      continue
    }
    const at = { ...where, tensor: name }
    if (!isPlainObject(entry)) checkpointFail('header_invalid', at, 'entry must be an object')

    const dtype = entry.dtype
    if (typeof dtype !== 'string' || !isSafetensorsDtype(dtype)) {
      checkpointFail(
        'header_invalid',
        { ...at, field: 'dtype' },
        `unknown dtype ${JSON.stringify(dtype)}; the format defines ${Object.keys(SAFETENSORS_DTYPE_BITS).join(', ')}`
      )
    }

    const shape = entry.shape
    if (!Array.isArray(shape) || shape.length > MAX_RANK) {
      checkpointFail(
        'shape_invalid',
        { ...at, field: 'shape' },
        `shape must be a list of at most ${MAX_RANK} non-negative integers`
      )
    }
    let numel = 1
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        checkpointFail(
          'shape_invalid',
          { ...at, field: 'shape' },
          `shape ${JSON.stringify(shape)} holds ${JSON.stringify(d)}, not a non-negative integer`
        )
      }
      numel *= d
      if (!Number.isSafeInteger(numel)) {
        checkpointFail(
          'shape_invalid',
          { ...at, field: 'shape' },
          `shape ${JSON.stringify(shape)} has more elements than any file can hold`
        )
      }
    }

    const offsets = entry.data_offsets
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      checkpointFail(
        'offsets_invalid',
        { ...at, field: 'data_offsets' },
        `data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`
      )
    }
    const [begin, end] = offsets as [number, number]
    if (begin > end) {
      checkpointFail(
        'offsets_invalid',
        { ...at, field: 'data_offsets' },
        `begin ${begin} is after end ${end}`
      )
    }
    const bits = SAFETENSORS_DTYPE_BITS[dtype]
    const expectedBits = numel * bits
    if (!Number.isSafeInteger(expectedBits) || expectedBits % 8 !== 0) {
      checkpointFail(
        'shape_invalid',
        { ...at, field: 'shape' },
        `${numel} elements of ${dtype} (${bits} bits each) do not fill whole bytes`
      )
    }
    const expectedBytes = expectedBits / 8
    if (end - begin !== expectedBytes) {
      checkpointFail(
        'offsets_invalid',
        { ...at, field: 'data_offsets' },
        `spans ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${expectedBytes} (the header's dtype, shape or offsets are wrong)`
      )
    }
    if (end > dataLength) {
      checkpointFail(
        'truncated',
        { ...at, field: 'data_offsets' },
        `needs data bytes up to ${end} but the file holds only ${dataLength} after its header (truncated, or the offsets are wrong)`
      )
    }
    tensors.set(name, {
      name,
      dtype,
      shape: shape.slice() as number[],
      numel,
      offset: dataStart + begin,
      byteLength: end - begin
    })
    if (end > begin) spans.push({ name, begin, end })
  }

  // Overlap: after sorting by start, each span must begin at or after the furthest end seen so far.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let furthest: { name: string; end: number } | undefined
  for (const s of spans) {
    if (furthest && s.begin < furthest.end) {
      checkpointFail(
        'overlap',
        { ...where, tensor: s.name, field: 'data_offsets' },
        `bytes ${s.begin}–${s.end} overlap tensor "${furthest.name}" (which ends at ${furthest.end})`
      )
    }
    if (!furthest || s.end > furthest.end) furthest = { name: s.name, end: s.end }
  }
  return { metadata, tensors }
}
