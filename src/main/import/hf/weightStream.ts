/**
 * Checkpoint tensors → the base model's external-data file (`base.onnx.data`), streamed: each graph
 * weight is read, converted to float32 and written in file order, in bounded memory whatever the
 * checkpoint's size (docs/import.md "Speed and memory").
 *
 * - A weight stored as the graph wants it (`copy`: embeddings, GPT-2's Conv1D matrices) goes
 *   through in blocks of rows: it is never whole in memory, so a 262k-row embedding costs a block,
 *   not a 0.7 GB array.
 * - Any other weight (transposed, joined, Gemma's 1 + w) is built whole in an output buffer from
 *   row blocks of its sources: 16-bit sources are widened while they are transposed, in one walk.
 * - Every value is checked for NaN and infinity in the same walk that converts it (convert.ts);
 *   only a block that holds one is counted, per tensor.
 * - Two output buffers: one is written to the file (in the I/O threads) while the next weight or
 *   block is filled in the other. Each is reused from weight to weight; a new array per weight
 *   would cost a page fault per 4 KiB on first touch, more than the conversion itself.
 * - The file's SHA-256 is computed from the buffers as they go out (in file order, on a worker
 *   thread, digestThread.ts, while the I/O threads write them), so the bundle validation that
 *   follows does not read the file back to hash it (bundle/digests.ts `remember`), and the
 *   hashing runs beside the conversion rather than after it.
 * - The buffers are written past the page cache (O_DIRECT) where the filesystem allows it, laid
 *   out so that every write starts on a block boundary (directWrites.ts); else buffered.
 */
import type { promises as fs, BigIntStats } from 'node:fs'
import type { BaseModelLayout } from '../../engine'
import { throwIfAborted } from '../errors'
import type { ProgressMeter } from '../progress'
import {
  bf16TransposerFor,
  bf16WidenerFor,
  countNonFinite,
  countNonFinite16,
  transposeWidenHalf,
  widenHalf,
  type Bf16Transposer,
  type Bf16Widener,
  type NonFiniteCount
} from '../safetensors'
import { DigestThread } from './digestThread'
import {
  DIRECT_BLOCK,
  DirectOutputFile,
  allocateOutputBuffer,
  type OutputBuffer,
  type WriteOutcome
} from './directWrites'
import { readTensorRaw, type HfFolder } from './folder'
import { transposeInto, type PlannedWeight, type WeightPlan } from './weights'

/** Float32 values per block of a weight written as stored (16 MB). */
export const COPY_BLOCK_ELEMENTS = 4 * 1024 * 1024

/** Largest read of stored bytes at once when a tensor is transposed (rows of it). */
export const READ_BLOCK_BYTES = 32 * 1024 * 1024

const numelOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1)

/** Per-tensor NaN / ±Inf counts, accumulated over blocks. */
export class NonFiniteTally {
  readonly #byTensor = new Map<string, { nan: number; posInf: number; negInf: number }>()

  add(tensor: string, c: NonFiniteCount | null): void {
    if (!c) return
    const t = this.#byTensor.get(tensor) ?? { nan: 0, posInf: 0, negInf: 0 }
    t.nan += c.nan
    t.posInf += c.posInf
    t.negInf += c.negInf
    this.#byTensor.set(tensor, t)
  }

  /** One line per tensor holding non-finite values, naming its file. */
  messages(fileOf: (tensor: string) => string, sizeOf: (tensor: string) => number): string[] {
    return [...this.#byTensor].map(([tensor, c]) => {
      const parts = [
        c.nan ? `${c.nan} NaN` : '',
        c.posInf ? `${c.posInf} +Inf` : '',
        c.negInf ? `${c.negInf} -Inf` : ''
      ].filter(Boolean)
      return `${fileOf(tensor)}: tensor "${tensor}": ${parts.join(', ')} of ${sizeOf(tensor)} values`
    })
  }

  get first(): string | undefined {
    return this.#byTensor.keys().next().value
  }
}

interface OutputSlot {
  /** Where its writes are laid out from: the start of a page-aligned buffer. */
  readonly base: Uint8Array
  /** Values it holds after the largest head a write may need. */
  readonly capacity: number
  /** The values of the write being filled, where `acquire` laid them out. */
  values: Float32Array
  /** The write and hashing of this buffer in flight, if any (never rejects: failures are recorded). */
  writing: Promise<void> | null
  /** The SIMD bfloat16 kernels bound to this buffer's memory, if it is one (simdWiden.ts). */
  readonly widen: Bf16Widener | null
  readonly transpose: Bf16Transposer | null
  /** Where a transposed source's rows are read for `transpose`: the end of the same memory. */
  readonly scratch: Uint8Array
}

/**
 * Positioned writes in file order from a few reused float32 buffers, each written while the caller
 * fills another. A failed write is thrown by the next `acquire` or by `drain`.
 */
class WritePipeline {
  readonly #file: DirectOutputFile
  readonly #slots: OutputSlot[]
  readonly #digest: DigestThread
  #failure: { error: unknown } | null = null

  /**
   * `shift` moves each buffer's base off its page boundary (a test seam: writes refused); the last
   * `scratchBytes` of each buffer are its scratch, not output.
   */
  constructor(
    file: DirectOutputFile,
    buffers: readonly OutputBuffer[],
    digest: DigestThread,
    shift = 0,
    scratchBytes = 0
  ) {
    this.#file = file
    this.#digest = digest
    // Smallest first, so a small block does not take the buffer a large weight needs. Shared, so
    // that the digest thread reads the bytes where they are.
    this.#slots = buffers
      .map(({ buffer, memory }) => ({
        base: new Uint8Array(buffer, shift),
        capacity: Math.floor((buffer.byteLength - shift - DIRECT_BLOCK - scratchBytes) / 4),
        values: new Float32Array(0),
        writing: null,
        widen: memory ? bf16WidenerFor(memory) : null,
        transpose: memory ? bf16TransposerFor(memory) : null,
        scratch: new Uint8Array(buffer, buffer.byteLength - scratchBytes, scratchBytes)
      }))
      .sort((a, b) => a.capacity - b.capacity)
  }

  get bufferBytes(): number {
    return this.#slots.reduce((n, s) => n + s.base.buffer.byteLength, 0)
  }

  /**
   * A buffer of at least `n` values that no write is reading, waiting for one if need be, with
   * `values` laid out for a write at byte `position` of the file.
   */
  async acquire(n: number, position: number): Promise<OutputSlot> {
    const fits = this.#slots.filter((s) => s.capacity >= n)
    if (fits.length === 0) throw new Error(`no output buffer holds ${n} values`)
    if (position % 4 !== 0) throw new Error(`float32 values at byte ${position}: not 4-aligned`)
    for (;;) {
      this.#throwFailure()
      const free = fits.find((s) => s.writing === null)
      if (free) {
        const at = free.base.byteOffset + DirectOutputFile.headOf(position)
        free.values = new Float32Array(free.base.buffer, at, n)
        return free
      }
      await Promise.race(fits.map((s) => s.writing))
    }
  }

  /**
   * Starts writing the `n` values `acquire` laid out in `slot` at byte `position`; returns at
   * once. Calls come in file order.
   */
  write(slot: OutputSlot, n: number, position: number): void {
    const bytes = slot.base.subarray(DirectOutputFile.headOf(position)).subarray(0, n * 4)
    let written: Promise<void>
    try {
      written = this.#file.write(slot.base, position, n * 4)
    } catch (err) {
      written = Promise.reject(err)
    }
    // Hashed on the digest thread while the I/O threads write the same bytes (neither changes
    // them); the buffer is free again once both are done, failed or not.
    slot.writing = Promise.allSettled([written, this.#digest.add(bytes, position)]).then(
      (results) => {
        for (const r of results) if (r.status === 'rejected') this.#failure ??= { error: r.reason }
        slot.writing = null
      }
    )
  }

  /** Waits for every write; throws the first failure. */
  async drain(): Promise<void> {
    await this.settle()
    this.#throwFailure()
  }

  /** Waits for every write, never throwing (before the file is closed on an error path). */
  async settle(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.writing))
  }

  #throwFailure(): void {
    if (this.#failure) throw this.#failure.error
  }
}

export interface WeightStreamOptions {
  folder: HfFolder
  plan: WeightPlan
  meter: ProgressMeter
  tally: NonFiniteTally
  signal?: AbortSignal
  /** Block sizes (default COPY_BLOCK_ELEMENTS and READ_BLOCK_BYTES; tests make them tiny). */
  blocks?: { copyElements: number; readBytes: number }
  /** The digest thread's code (default its own; tests make it fail). */
  digestSource?: string
  /**
   * Test seams of the direct-write path (the writes themselves are always real): buffers whose
   * base is moved 16 bytes off the page (a filesystem that checks alignment refuses their direct
   * writes), an open that refuses O_DIRECT.
   */
  directWrites?: {
    misalignBuffers?: boolean
    openDirect?: (file: string) => Promise<fs.FileHandle>
  }
}

/** How many rows of a (rows, …) tensor fit `budget` units at `perRow` units a row (at least 1). */
const rowsPerBlock = (budget: number, perRow: number): number =>
  Math.max(1, Math.floor(budget / Math.max(1, perRow)))

export interface WrittenWeights {
  /** Bytes the streamer's buffers held. */
  bufferBytes: number
  /** SHA-256 (hex) of the file's bytes, computed as they were written; null if unknown. */
  sha256: string | null
  /** The file's fstat after its last write: the identity the digest belongs to. */
  written: BigIntStats
  /** Whether the writes bypassed the page cache, and why not when not. */
  writes: WriteOutcome
}

/**
 * Writes `layout`'s external-data file at `dataPath` from the checkpoint, weight by weight in file
 * order (gaps between weights stay zero), and returns its digest and the bytes its buffers held.
 */
export async function writeCheckpointWeights(
  dataPath: string,
  layout: BaseModelLayout,
  options: WeightStreamOptions
): Promise<WrittenWeights> {
  const byName = new Map(options.plan.weights.map((w) => [w.name, w]))
  const streamer = new WeightStreamer(options)
  const shift = options.directWrites?.misalignBuffers ? 16 : 0
  const scratch = streamer.transposeScratchBytes()
  // Room for a block's head before the values, for the shift, and the scratch after them.
  const buffers = streamer
    .outputCapacities()
    .map((n) => allocateOutputBuffer(n * 4 + DIRECT_BLOCK + shift + scratch))
  const file = await DirectOutputFile.create(dataPath, {
    buffersAligned: buffers.every((b) => b.aligned),
    openDirect: options.directWrites?.openDirect
  })
  let digest: DigestThread | undefined
  let pipeline: WritePipeline | undefined
  try {
    digest = new DigestThread(dataPath, { source: options.digestSource })
    pipeline = new WritePipeline(file, buffers, digest, shift, scratch)
    for (const laidOut of layout.weights) {
      const w = byName.get(laidOut.name)
      if (!w) throw new Error(`weight ${laidOut.name}: not in the import plan`)
      const n = numelOf(w.dims)
      if (n * 4 !== laidOut.length) {
        throw new Error(
          `weight ${w.name}: ${n} values, expected ${laidOut.length / 4} for [${laidOut.dims.join(', ')}]`
        )
      }
      await streamer.write(w, laidOut.offset, pipeline)
    }
    await pipeline.drain()
    const written = await file.finish(layout.dataSize)
    return {
      bufferBytes: pipeline.bufferBytes + streamer.readBufferBytes,
      sha256: await digest.finish(layout.dataSize),
      written,
      writes: file.outcome
    }
  } finally {
    await pipeline?.settle()
    await digest?.close()
    await file.close()
  }
}

class WeightStreamer {
  readonly #o: WeightStreamOptions
  readonly #copyElements: number
  readonly #readBytes: number
  /** Stored bytes of the block being converted. */
  readonly #raw: Uint8Array

  constructor(options: WeightStreamOptions) {
    this.#o = options
    this.#copyElements = options.blocks?.copyElements ?? COPY_BLOCK_ELEMENTS
    this.#readBytes = options.blocks?.readBytes ?? READ_BLOCK_BYTES
    let rawBytes = 0
    for (const w of options.plan.weights) {
      for (const s of w.sources) rawBytes = Math.max(rawBytes, this.#rawBlockBytes(w, s.tensor))
    }
    this.#raw = new Uint8Array(rawBytes)
  }

  get readBufferBytes(): number {
    return this.#raw.byteLength
  }

  #entry(tensor: string) {
    return this.#o.folder.tensors.get(tensor)!
  }

  #bytesPerElement(tensor: string): number {
    return this.#entry(tensor).dtype === 'F32' ? 4 : 2
  }

  /** The rows a copied weight is written in at once. */
  #copyRows(tensor: string): { rows: number; perRow: number; perBlock: number } {
    const shape = this.#entry(tensor).shape
    const rows = shape[0] ?? 1
    const perRow = shape.length === 0 ? 1 : numelOf(shape.slice(1))
    return { rows, perRow, perBlock: rowsPerBlock(this.#copyElements, perRow) }
  }

  /** The rows of a transposed source read at once. */
  #transposeRows(tensor: string, cols: number): number {
    return rowsPerBlock(this.#readBytes, cols * this.#bytesPerElement(tensor))
  }

  /** Stored bytes of the largest block of `tensor` that needs the read buffer. */
  #rawBlockBytes(w: PlannedWeight, tensor: string): number {
    const bpe = this.#bytesPerElement(tensor)
    const shape = this.#entry(tensor).shape
    if (w.transform === 'transpose' || w.transform === 'concat-transposed') {
      const [rows, cols] = shape as [number, number]
      return Math.min(rows, this.#transposeRows(tensor, cols)) * cols * bpe
    }
    // Float32 lands in the output buffer directly; 16-bit values are read, then widened.
    if (bpe === 4) return 0
    if (w.transform === 'copy') {
      const { rows, perRow, perBlock } = this.#copyRows(tensor)
      return Math.min(rows, perBlock) * perRow * bpe
    }
    return numelOf(shape) * bpe
  }

  /**
   * Bytes of the largest row block of a 16-bit source that is transposed: read into the output
   * buffer's own memory for the SIMD kernel (an even number).
   */
  transposeScratchBytes(): number {
    let bytes = 0
    for (const w of this.#o.plan.weights) {
      if (w.transform !== 'transpose' && w.transform !== 'concat-transposed') continue
      for (const s of w.sources) {
        if (this.#bytesPerElement(s.tensor) === 2)
          bytes = Math.max(bytes, this.#rawBlockBytes(w, s.tensor))
      }
    }
    return bytes
  }

  /**
   * Output buffer sizes (values): the largest weight built whole, and a second one as large as the
   * next largest (or a copy block), so that two weights in a row can be written and filled at
   * once without holding two of the largest.
   */
  outputCapacities(): [number, number] {
    const whole: number[] = []
    let block = 1
    for (const w of this.#o.plan.weights) {
      if (w.transform === 'copy') {
        const { rows, perRow, perBlock } = this.#copyRows(w.sources[0]!.tensor)
        block = Math.max(block, Math.min(rows, perBlock) * perRow)
      } else {
        whole.push(numelOf(w.dims))
      }
    }
    whole.sort((a, b) => b - a)
    return [Math.max(whole[0] ?? 0, block), Math.max(whole[1] ?? 0, block)]
  }

  async write(w: PlannedWeight, offset: number, pipeline: WritePipeline): Promise<void> {
    const signal = this.#o.signal
    throwIfAborted(signal, w.sources[0]?.tensor ?? w.name)
    if (w.transform === 'copy') {
      const tensor = w.sources[0]!.tensor
      const { rows, perRow, perBlock } = this.#copyRows(tensor)
      const scalar = this.#entry(tensor).shape.length === 0
      for (let start = 0; start < rows; start += perBlock) {
        throwIfAborted(signal, tensor)
        const end = Math.min(rows, start + perBlock)
        const n = (end - start) * perRow
        const position = offset + start * perRow * 4
        const slot = await pipeline.acquire(n, position)
        await this.#readConverted(
          tensor,
          slot.values,
          slot.widen,
          scalar ? undefined : { start, end }
        )
        pipeline.write(slot, n, position)
      }
      this.#o.meter.tensorDone()
      return
    }
    const n = numelOf(w.dims)
    const slot = await pipeline.acquire(n, offset)
    const out = slot.values
    switch (w.transform) {
      case 'gemma-gain': {
        await this.#readConverted(w.sources[0]!.tensor, out, slot.widen)
        // Float32 addition is correctly rounded: this equals torch's float32 `1.0 + w`.
        for (let i = 0; i < n; i++) out[i] = 1 + out[i]!
        this.#o.meter.tensorDone()
        break
      }
      case 'concat': {
        let at = 0
        for (const s of w.sources) {
          const len = numelOf(s.shape)
          await this.#readConverted(s.tensor, out.subarray(at, at + len), slot.widen)
          at += len
          this.#o.meter.tensorDone()
        }
        break
      }
      case 'transpose':
      case 'concat-transposed': {
        // (out_i, in) sources side by side → (in, Σ out_i); one source is a plain transpose.
        const width = w.transform === 'transpose' ? w.sources[0]!.shape[0]! : w.dims[1]!
        let col = 0
        for (const s of w.sources) {
          await this.#transposeInto(s.tensor, s.shape, out, width, col, slot)
          col += s.shape[0]!
          this.#o.meter.tensorDone()
        }
        break
      }
    }
    pipeline.write(slot, n, offset)
  }

  /**
   * Reads `tensor` (or its rows) as float32 into `out`, counting non-finite values. With `widen`
   * (out lies in a WebAssembly memory), bfloat16 values are read into the upper half of `out`'s
   * own bytes and widened there in place: no read buffer, no copy out of one.
   */
  async #readConverted(
    tensor: string,
    out: Float32Array,
    widen: Bf16Widener | null,
    rows?: { start: number; end: number }
  ): Promise<void> {
    const { folder, meter, tally, signal } = this.#o
    const onBytes = (b: number): void => meter.bytes(b)
    const dtype = this.#entry(tensor).dtype
    if (dtype === 'F32') {
      const into = new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
      await readTensorRaw(folder, tensor, into, { rows, signal, onBytes })
      tally.add(tensor, countNonFinite(out))
      return
    }
    if (dtype === 'BF16' && widen) {
      const n = out.length
      const upper = new Uint8Array(out.buffer, out.byteOffset + 2 * n, 2 * n)
      const raw = await readTensorRaw(folder, tensor, upper, { rows, signal, onBytes })
      // The widened values count exactly as their 16-bit patterns would (NaN stays NaN, ±Inf ±Inf).
      if (widen(upper.byteOffset, out.byteOffset, raw.count)) {
        tally.add(tensor, countNonFinite(out.subarray(0, raw.count)))
      }
      return
    }
    const raw = await readTensorRaw(folder, tensor, this.#raw, { rows, signal, onBytes })
    const half = raw.dtype === 'F16' ? 'F16' : 'BF16'
    const src = new Uint16Array(raw.bytes.buffer, raw.bytes.byteOffset, raw.count)
    const dst = new Uint32Array(out.buffer, out.byteOffset, out.length)
    if (widenHalf(src, dst, half)) tally.add(tensor, countNonFinite16(src, half))
  }

  /** Reads a (rows, cols) source in row blocks, transposed into `out` (width `outCols`) at `col`. */
  async #transposeInto(
    tensor: string,
    shape: number[],
    out: Float32Array,
    outCols: number,
    col: number,
    slot: OutputSlot
  ): Promise<void> {
    const { folder, meter, tally, signal } = this.#o
    const onBytes = (b: number): void => meter.bytes(b)
    const [rows, cols] = shape as [number, number]
    const perBlock = this.#transposeRows(tensor, cols)
    const out32 = new Uint32Array(out.buffer, out.byteOffset, out.length)
    // bfloat16 rows read into the output's own memory, for the SIMD kernel (simdWiden.ts).
    const simd = this.#entry(tensor).dtype === 'BF16' ? slot.transpose : null
    for (let start = 0; start < rows; start += perBlock) {
      throwIfAborted(signal, tensor)
      const end = Math.min(rows, start + perBlock)
      const raw = await readTensorRaw(folder, tensor, simd ? slot.scratch : this.#raw, {
        rows: { start, end },
        signal,
        onBytes
      })
      const n = end - start
      if (simd) {
        const src = raw.bytes.byteOffset
        if (simd(src, n, cols, out.byteOffset, outCols, col + start)) {
          const values = new Uint16Array(raw.bytes.buffer, src, raw.count)
          tally.add(tensor, countNonFinite16(values, 'BF16'))
        }
      } else if (raw.dtype === 'F32') {
        const block = new Float32Array(raw.bytes.buffer, raw.bytes.byteOffset, raw.count)
        transposeInto(block, n, cols, out, outCols, col + start)
        tally.add(tensor, countNonFinite(block))
      } else {
        const half = raw.dtype === 'F16' ? 'F16' : 'BF16'
        const src = new Uint16Array(raw.bytes.buffer, raw.bytes.byteOffset, raw.count)
        if (transposeWidenHalf(src, n, cols, out32, outCols, col + start, half)) {
          tally.add(tensor, countNonFinite16(src, half))
        }
      }
    }
  }
}
