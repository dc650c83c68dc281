/**
 * Writes of `base.onnx.data` that bypass the page cache (O_DIRECT) where the filesystem allows it,
 * and ordinary buffered writes where it does not (docs/import.md "Speed and memory").
 *
 * Why: on the machines measured (docs/benchmarks.md "Import speed: writes past the page cache") the
 * kernel's cost of taking new page-cache pages for a 2.4 GB float32 output was most of a BF16
 * import's time; written with O_DIRECT the same bytes go to the disk with a tenth of the CPU.
 *
 * O_DIRECT wants the buffer's address, the file offset and the length aligned to the device's
 * block (512 B or 4 KiB; DIRECT_BLOCK covers both). So:
 * - output buffers are the memory of a shared WebAssembly.Memory, whose base V8 reserves
 *   page-aligned (a SharedArrayBuffer or a Node Buffer of this size starts 16 bytes into a page
 *   and is refused); whether that holds is checked by behaviour, not assumed: a write the kernel
 *   refuses (EINVAL) is written again through the ordinary descriptor, and so is every later one;
 * - a write at file offset `p` is laid out in its buffer at `p % DIRECT_BLOCK`, the head before it
 *   holding the bytes of that block already written by the previous weight (held back, below) or
 *   the zeros the gap reads as, so every direct write starts on a block boundary;
 * - the bytes past a write's last block boundary are held back and go out as the head of the next
 *   write when it starts in that block, else (and at the end) through the ordinary descriptor.
 * Where O_DIRECT is unavailable (no such flag on the platform, the filesystem refuses it at open
 * or at the first write, buffers that could not be aligned) everything goes through the ordinary
 * descriptor: the same bytes, and `outcome` says why.
 */
import { constants, promises as fs, type BigIntStats } from 'node:fs'

/** Alignment of buffer addresses, file offsets and lengths of direct writes. */
export const DIRECT_BLOCK = 4096

const WASM_PAGE_BYTES = 65536
/** The most pages a 32-bit WebAssembly memory may have (4 GiB). */
const WASM_MAX_PAGES = 65536

/** The one WebAssembly constructor used (the node typings do not declare the namespace). */
type WasmMemoryConstructor = new (descriptor: {
  initial: number
  maximum: number
  shared: boolean
}) => { readonly buffer: unknown }
const WasmMemory = (globalThis as { WebAssembly?: { Memory?: WasmMemoryConstructor } }).WebAssembly
  ?.Memory

export interface OutputBuffer {
  readonly buffer: SharedArrayBuffer
  /** Whether its base is page-aligned (a WebAssembly memory); else writes go buffered. */
  readonly aligned: boolean
  /** The WebAssembly.Memory the buffer is, when it is one (kernels bind to it: simdWiden.ts). */
  readonly memory: object | null
}

/**
 * A shared buffer of at least `bytes`, page-aligned where a WebAssembly memory of that size can be
 * had (`aligned: false` otherwise).
 */
export function allocateOutputBuffer(bytes: number): OutputBuffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE_BYTES))
  if (WasmMemory && pages <= WASM_MAX_PAGES) {
    try {
      const memory = new WasmMemory({ initial: pages, maximum: pages, shared: true })
      const buffer: unknown = memory.buffer
      if (buffer instanceof SharedArrayBuffer) return { buffer, aligned: true, memory }
    } catch {
      // Address space refused: a plain shared buffer, written buffered.
    }
  }
  return { buffer: new SharedArrayBuffer(bytes), aligned: false, memory: null }
}

export interface WriteOutcome {
  /** Whether every full block went out with O_DIRECT. */
  direct: boolean
  /** Why not, when not. */
  note: string | null
}

export interface DirectFileOptions {
  /** Whether the buffers given to `write` are page-aligned (allocateOutputBuffer's `aligned`). */
  buffersAligned: boolean
  /** Opens the file for direct writes (default: O_WRONLY | O_DIRECT); tests make it refuse. */
  openDirect?: (file: string) => Promise<fs.FileHandle>
}

const isEinval = (err: unknown): boolean => (err as NodeJS.ErrnoException | null)?.code === 'EINVAL'

/** Held-back bytes of one block: `bytes` (a whole block, zeros past `length`) at `start`. */
interface HeldBlock {
  start: number
  length: number
  bytes: Uint8Array
}

/**
 * One output file written front to back by `write` (concurrent calls allowed: each covers its own
 * blocks), then `finish`. The file is created empty (truncated if it exists).
 */
export class DirectOutputFile {
  readonly #file: string
  readonly #ordinary: fs.FileHandle
  readonly #direct: fs.FileHandle | null
  /** Why writes go buffered; null while they go direct. */
  #note: string | null
  #held: HeldBlock | null = null
  /** Where the last write ended: writes must come in file order. */
  #end = 0

  private constructor(
    file: string,
    ordinary: fs.FileHandle,
    direct: fs.FileHandle | null,
    note: string | null
  ) {
    this.#file = file
    this.#ordinary = ordinary
    this.#direct = direct
    this.#note = note
  }

  static async create(file: string, options: DirectFileOptions): Promise<DirectOutputFile> {
    const ordinary = await fs.open(file, 'w')
    let direct: fs.FileHandle | null = null
    let note: string | null = null
    const flag = constants.O_DIRECT
    if (!options.buffersAligned) {
      note = 'output buffers could not be page-aligned'
    } else if (flag === undefined) {
      note = 'O_DIRECT is not available on this platform'
    } else {
      try {
        direct = await (options.openDirect ?? ((f) => fs.open(f, constants.O_WRONLY | flag)))(file)
      } catch (err) {
        note = `the filesystem refused O_DIRECT at open (${(err as NodeJS.ErrnoException).code ?? String(err)})`
      }
    }
    return new DirectOutputFile(file, ordinary, direct, note)
  }

  get outcome(): WriteOutcome {
    return { direct: this.#note === null, note: this.#note }
  }

  /**
   * Where in its buffer a write at file offset `position` must put its first byte (the head
   * before it is the rest of that block, filled by `write`).
   */
  static headOf(position: number): number {
    return position % DIRECT_BLOCK
  }

  /**
   * Writes `length` bytes at file offset `position`, laid out in `base` (a view starting at a
   * page-aligned address) from `headOf(position)`; overwrites the head before them. Resolves once
   * `base` is free again. Calls come in file order (each `position` at or after the previous
   * write's end); the bytes past the last block boundary are held back until the next write or
   * `finish`.
   */
  write(base: Uint8Array, position: number, length: number): Promise<void> {
    if (position < this.#end) {
      throw new Error(`${this.#file}: write at ${position} behind the end written (${this.#end})`)
    }
    const head = DirectOutputFile.headOf(position)
    const start = position - head
    const end = position + length
    this.#end = end
    const region = base.subarray(0, head + length)
    const pending: Promise<void>[] = []
    const held = this.#held
    this.#held = null
    if (held && held.start === start) {
      region.set(held.bytes.subarray(0, head))
    } else {
      region.fill(0, 0, head)
      if (held) pending.push(this.#writeOrdinary(held.bytes.subarray(0, held.length), held.start))
    }
    const blocksEnd = end - (end % DIRECT_BLOCK)
    if (blocksEnd < end) {
      const bytes = new Uint8Array(DIRECT_BLOCK)
      bytes.set(region.subarray(blocksEnd - start))
      this.#held = { start: blocksEnd, length: end - blocksEnd, bytes }
    }
    if (blocksEnd > start)
      pending.push(this.#writeBlocks(region.subarray(0, blocksEnd - start), start))
    return Promise.all(pending).then(() => undefined)
  }

  /**
   * After every write has settled: the held-back tail, the file cut to `size`, and its fstat
   * (the identity a digest of it belongs to).
   */
  async finish(size: number): Promise<BigIntStats> {
    const held = this.#held
    this.#held = null
    if (held) await this.#writeOrdinary(held.bytes.subarray(0, held.length), held.start)
    await this.#ordinary.truncate(size)
    return this.#ordinary.stat({ bigint: true })
  }

  async close(): Promise<void> {
    try {
      await this.#direct?.close()
    } finally {
      await this.#ordinary.close()
    }
  }

  async #writeBlocks(bytes: Uint8Array, position: number): Promise<void> {
    let at = 0
    while (this.#direct && this.#note === null && at < bytes.byteLength) {
      try {
        const { bytesWritten } = await this.#direct.write(
          bytes,
          at,
          bytes.byteLength - at,
          position + at
        )
        at += bytesWritten
      } catch (err) {
        if (!isEinval(err)) throw err
        // Refused by the filesystem (or an address it will not take): from here on buffered.
        this.#note ??= 'the filesystem refused an O_DIRECT write (EINVAL)'
      }
    }
    if (at < bytes.byteLength) await this.#writeOrdinary(bytes.subarray(at), position + at)
  }

  async #writeOrdinary(bytes: Uint8Array, position: number): Promise<void> {
    for (let at = 0; at < bytes.byteLength;) {
      const { bytesWritten } = await this.#ordinary.write(
        bytes,
        at,
        bytes.byteLength - at,
        position + at
      )
      at += bytesWritten
    }
  }
}
