/**
 * The zip side of a `torch.save` checkpoint: `<prefix>/data.pkl`, `<prefix>/data/<key>` raw
 * storages, `<prefix>/version`, maybe `<prefix>/byteorder`. yauzl parses the central directory
 * and local headers; records are then read by offset in bounded chunks, so a checkpoint is never
 * read whole and a storage nobody asks for is never read at all.
 *
 * torch.save stores every record uncompressed, so any compressed record is refused when the
 * archive is opened: that is the zip-bomb guard, and no legitimate checkpoint trips it.
 */
import {
  close as closeFd,
  constants as fsConstants,
  createReadStream,
  fstat,
  open as openFd,
  promises as fs,
  read,
  type Stats
} from 'node:fs'
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import yauzl from 'yauzl'
import { CheckpointError, throwIfAborted } from '../errors'

export interface ArchiveLimits {
  /** Central-directory records; a lens checkpoint with optimizer state has tens to thousands. */
  maxEntries: number
  /** Bytes of one record name. */
  maxNameBytes: number
  /** Bytes of `data.pkl` (the object graph without tensor data). */
  maxPickleBytes: number
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxEntries: 65_536,
  maxNameBytes: 1024,
  maxPickleBytes: 256 * 1024 * 1024
}

/** Records are read in chunks of at most this many bytes (progress and cancel in between). */
const CHUNK_BYTES = 8 * 1024 * 1024
/** `version` and `byteorder` are a few bytes. */
const SMALL_RECORD_BYTES = 64

const openAsync = promisify(openFd)
const fstatAsync = promisify(fstat)
const closeAsync = promisify(closeFd)
const readAsync = promisify(read)

const ZIP_MAGIC = 0x04034b50
const EMPTY_ZIP_MAGIC = 0x06054b50

/**
 * yauzl reads through this: every read is checked against the file before it reaches fs.read,
 * because a corrupt directory can name offsets beyond 2^53 (fs.read throws on those, and inside
 * a callback that would crash the process) or beyond the end of the file.
 */
class BoundedFdReader extends yauzl.RandomAccessReader {
  constructor(
    readonly fd: number,
    readonly size: number
  ) {
    super()
  }

  override read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (err: Error | null, bytesRead?: number) => void
  ): void {
    const inside =
      Number.isSafeInteger(position) &&
      Number.isSafeInteger(length) &&
      position >= 0 &&
      length >= 0 &&
      position + length <= this.size &&
      offset >= 0 &&
      offset + length <= buffer.length
    if (!inside) {
      setImmediate(() =>
        callback(
          new Error(
            `a read of ${length} bytes at offset ${position} lies outside the ${this.size}-byte file`
          )
        )
      )
      return
    }
    read(this.fd, buffer, offset, length, position, (err, bytesRead) => callback(err, bytesRead))
  }

  override _readStreamForRange(start: number, end: number): Readable {
    if (!(
      Number.isSafeInteger(start) &&
      Number.isSafeInteger(end) &&
      0 <= start &&
      start <= end &&
      end <= this.size
    )) {
      throw new Error(`range ${start}..${end} lies outside the ${this.size}-byte file`)
    }
    return createReadStream('', { fd: this.fd, start, end: end - 1, autoClose: false })
  }

  override close(callback: (err: Error | null) => void): void {
    closeFd(this.fd, callback)
  }
}

/** Refuses anything that is not a regular file (FIFO, device, socket, folder) by its kind. */
export function describeNonRegular(stats: Stats): string | null {
  if (stats.isFile()) return null
  if (stats.isDirectory()) return 'is a folder, not a checkpoint file'
  if (stats.isFIFO()) return 'is a FIFO (named pipe), not a regular file'
  if (stats.isSocket()) return 'is a socket, not a regular file'
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'is a device, not a regular file'
  return 'is not a regular file'
}

export async function statRegularFile(file: string): Promise<Stats> {
  let stats: Stats
  try {
    stats = await fs.stat(file)
  } catch (err) {
    throw CheckpointError.at('unreadable', file, undefined, (err as Error).message)
  }
  const bad = describeNonRegular(stats)
  if (bad) throw CheckpointError.at('unreadable', file, undefined, bad)
  return stats
}

export class TorchArchive {
  readonly file: string
  readonly fileSize: number
  /** The folder every record sits in (the file's stem when torch wrote it). */
  readonly prefix: string
  /** The archive's `version` record, when it has one. */
  formatVersion: number | null = null
  /** Bytes read from the file so far (records only; the central directory is not counted). */
  bytesRead = 0
  /** Records read so far, by name relative to the prefix. */
  readonly recordsRead = new Set<string>()

  /** Owned by the archive's reader once open: `zip.close()` closes it. */
  readonly #fd: number
  readonly #zip: yauzl.ZipFile
  readonly #records: Map<string, yauzl.Entry>
  readonly #dataStart = new Map<string, number>()

  private constructor(
    file: string,
    fileSize: number,
    fd: number,
    zip: yauzl.ZipFile,
    prefix: string,
    records: Map<string, yauzl.Entry>
  ) {
    this.file = file
    this.fileSize = fileSize
    this.#fd = fd
    this.#zip = zip
    this.prefix = prefix
    this.#records = records
  }

  /**
   * Opens the archive: checks it is a regular file, reads the central directory within the
   * limits, refuses compressed or encrypted records and records past the end of the file, and
   * reads `byteorder` / `version`.
   */
  static async open(
    file: string,
    options: { signal?: AbortSignal; limits?: Partial<ArchiveLimits> } = {}
  ): Promise<TorchArchive> {
    const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...options.limits }
    await statRegularFile(file)
    throwIfAborted(options.signal, file)
    let fd: number
    try {
      // O_NONBLOCK: if the path was swapped for a FIFO after the stat, open must not hang.
      fd = await openAsync(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0))
    } catch (err) {
      throw CheckpointError.at('unreadable', file, undefined, (err as Error).message)
    }
    let zip: yauzl.ZipFile | undefined
    try {
      const stats = await fstatAsync(fd)
      const bad = describeNonRegular(stats)
      if (bad) throw CheckpointError.at('unreadable', file, undefined, bad)
      await refuseNonZip(fd, file, stats.size)
      try {
        zip = await yauzl.fromRandomAccessReaderPromise(
          new BoundedFdReader(fd, stats.size),
          stats.size,
          {
            lazyEntries: true,
            autoClose: false,
            decodeStrings: true,
            validateEntrySizes: true,
            strictFileNames: true
          }
        )
      } catch (err) {
        throw CheckpointError.at(
          'unreadable',
          file,
          undefined,
          `not a readable zip archive: ${(err as Error).message}`
        )
      }
      // Errors closing the fd arrive as events; without a listener they would crash the process.
      zip.on('error', () => undefined)
      if (zip.entryCount > limits.maxEntries) {
        throw CheckpointError.at(
          'too_large',
          file,
          undefined,
          `the archive lists ${zip.entryCount} records; the limit is ${limits.maxEntries}`
        )
      }
      const entries = await readDirectory(zip, file, stats.size, limits, options.signal)
      const prefix = findPrefix(entries, file)
      const records = new Map<string, yauzl.Entry>()
      for (const [name, entry] of entries) {
        if (name.startsWith(`${prefix}/`)) records.set(name.slice(prefix.length + 1), entry)
      }
      const archive = new TorchArchive(file, stats.size, fd, zip, prefix, records)
      const byteorder = await archive.#readSmallText('byteorder')
      if (byteorder !== null && byteorder !== 'little') {
        throw CheckpointError.at(
          byteorder === 'big' ? 'unsupported' : 'invalid',
          file,
          archive.recordName('byteorder'),
          byteorder === 'big'
            ? 'the storages are big-endian; only little-endian checkpoints are read'
            : `unknown byte order "${byteorder.slice(0, 16)}"`
        )
      }
      const versionText =
        (await archive.#readSmallText('version')) ?? (await archive.#readSmallText('.data/version'))
      const version = versionText === null ? null : Number(versionText)
      if (versionText !== null && !(Number.isInteger(version) && (version as number) >= 0)) {
        throw CheckpointError.at(
          'invalid',
          file,
          archive.recordName('version'),
          `not a version number: "${versionText.slice(0, 16)}"`
        )
      }
      archive.formatVersion = version
      return archive
    } catch (err) {
      if (zip) await closeZip(zip)
      else await closeAsync(fd).catch(() => undefined)
      throw err
    }
  }

  /** The full record name inside the zip, for messages. */
  recordName(relative: string): string {
    return `${this.prefix}/${relative}`
  }

  /** Size in bytes of a record, or undefined when the archive has none by that name. */
  recordSize(relative: string): number | undefined {
    return this.#records.get(relative)?.uncompressedSize
  }

  /** Reads a whole record into memory; refuses one larger than `maxBytes`. */
  async readRecord(relative: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    const size = this.#requireRecord(relative).uncompressedSize
    if (size > maxBytes) {
      throw CheckpointError.at(
        'too_large',
        this.file,
        this.recordName(relative),
        `${size} bytes; the limit is ${maxBytes}`
      )
    }
    const out = Buffer.alloc(size)
    await this.readRange(relative, 0, size, (chunk, at) => chunk.copy(out, at), signal)
    return out
  }

  /**
   * Streams bytes [start, end) of a record to `sink` in chunks (each chunk's offset is relative
   * to `start`). The chunk buffer is reused: the sink must copy what it keeps.
   */
  async readRange(
    relative: string,
    start: number,
    end: number,
    sink: (chunk: Buffer, offset: number) => void,
    signal?: AbortSignal
  ): Promise<void> {
    const entry = this.#requireRecord(relative)
    const name = this.recordName(relative)
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end)) {
      throw CheckpointError.at('invalid', this.file, name, `bad byte range ${start}..${end}`)
    }
    if (end > entry.uncompressedSize) {
      throw CheckpointError.at(
        'invalid',
        this.file,
        name,
        `needs bytes up to ${end} but the record holds ${entry.uncompressedSize}`
      )
    }
    const dataStart = await this.#fileDataStart(relative, entry)
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(1, end - start)))
    let done = 0
    while (start + done < end) {
      throwIfAborted(signal, this.file)
      const want = Math.min(chunk.length, end - start - done)
      const { bytesRead } = await readAsync(this.#fd, chunk, 0, want, dataStart + start + done)
      if (bytesRead <= 0) {
        throw CheckpointError.at(
          'unreadable',
          this.file,
          name,
          'the file ended early (changed while reading?)'
        )
      }
      sink(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead), done)
      done += bytesRead
      this.bytesRead += bytesRead
    }
    this.recordsRead.add(relative)
  }

  async close(): Promise<void> {
    await closeZip(this.#zip)
  }

  #requireRecord(relative: string): yauzl.Entry {
    const entry = this.#records.get(relative)
    if (!entry) {
      throw CheckpointError.at(
        'invalid',
        this.file,
        this.recordName(relative),
        'no such record in the archive'
      )
    }
    return entry
  }

  async #fileDataStart(relative: string, entry: yauzl.Entry): Promise<number> {
    const known = this.#dataStart.get(relative)
    if (known !== undefined) return known
    let start: number
    try {
      start = (await this.#zip.readLocalFileHeaderPromise(entry, { minimal: true })).fileDataStart
    } catch (err) {
      throw CheckpointError.at(
        'unreadable',
        this.file,
        this.recordName(relative),
        (err as Error).message
      )
    }
    // yauzl checks this too; kept so the bound never depends on a library detail.
    if (start + entry.compressedSize > this.fileSize) {
      throw CheckpointError.at(
        'unreadable',
        this.file,
        this.recordName(relative),
        'record data runs past the end of the file'
      )
    }
    this.#dataStart.set(relative, start)
    return start
  }

  async #readSmallText(relative: string): Promise<string | null> {
    if (!this.#records.has(relative)) return null
    const bytes = await this.readRecord(relative, SMALL_RECORD_BYTES)
    return bytes.toString('latin1').trim()
  }
}

/** Closes the archive and its fd (yauzl's reader owns the fd once the archive is open). */
function closeZip(zip: yauzl.ZipFile): Promise<void> {
  if (!zip.isOpen) return Promise.resolve()
  return new Promise((resolve) => {
    zip.once('close', () => resolve())
    zip.once('error', () => resolve())
    zip.close()
  })
}

/** Gives the older torch formats (a bare pickle stream, a tar) a message of their own. */
async function refuseNonZip(fd: number, file: string, size: number): Promise<void> {
  const head = Buffer.alloc(Math.min(size, 512))
  if (head.length > 0) await readAsync(fd, head, 0, head.length, 0)
  if (head.length >= 4) {
    const magic = head.readUInt32LE(0)
    if (magic === ZIP_MAGIC || magic === EMPTY_ZIP_MAGIC) return
  }
  if (head.length >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) {
    throw CheckpointError.at(
      'unsupported',
      file,
      undefined,
      'this is the legacy (pre-1.6, non-zip) torch.save format; re-save it with a current torch ' +
        '(torch.save(torch.load(f), f2)) in a trusted Python environment'
    )
  }
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') {
    throw CheckpointError.at(
      'unsupported',
      file,
      undefined,
      'this is the legacy tar torch.save format; re-save it with a current torch'
    )
  }
  throw CheckpointError.at(
    'unreadable',
    file,
    undefined,
    size === 0
      ? 'the file is empty'
      : 'not a zip archive (a torch.save checkpoint starts with "PK")'
  )
}

async function readDirectory(
  zip: yauzl.ZipFile,
  file: string,
  fileSize: number,
  limits: ArchiveLimits,
  signal: AbortSignal | undefined
): Promise<Map<string, yauzl.Entry>> {
  const entries = new Map<string, yauzl.Entry>()
  const next = (): Promise<yauzl.Entry | null> =>
    new Promise((resolve, reject) => {
      const onEntry = (entry: yauzl.Entry): void => {
        cleanup()
        resolve(entry)
      }
      const onEnd = (): void => {
        cleanup()
        resolve(null)
      }
      const onError = (err: Error): void => {
        cleanup()
        reject(CheckpointError.at('unreadable', file, undefined, `zip directory: ${err.message}`))
      }
      const cleanup = (): void => {
        zip.off('entry', onEntry)
        zip.off('end', onEnd)
        zip.off('error', onError)
      }
      zip.on('entry', onEntry)
      zip.on('end', onEnd)
      zip.on('error', onError)
      try {
        zip.readEntry()
      } catch (err) {
        // yauzl throws (rather than emits) when a corrupt directory offset is not even a safe
        // file position.
        onError(err as Error)
      }
    })
  for (let entry = await next(); entry !== null; entry = await next()) {
    throwIfAborted(signal, file)
    const name = entry.fileName
    if (Buffer.byteLength(name) > limits.maxNameBytes) {
      throw CheckpointError.at(
        'too_large',
        file,
        `${name.slice(0, 80)}…`,
        `record name is ${Buffer.byteLength(name)} bytes; the limit is ${limits.maxNameBytes}`
      )
    }
    if (entries.size >= limits.maxEntries) {
      throw CheckpointError.at(
        'too_large',
        file,
        undefined,
        `more than ${limits.maxEntries} records`
      )
    }
    if (name.endsWith('/')) continue
    if (entries.has(name)) {
      throw CheckpointError.at('invalid', file, name, 'the archive lists this record twice')
    }
    if (entry.isEncrypted()) {
      throw CheckpointError.at(
        'unsupported',
        file,
        name,
        'the record is encrypted; torch.save never encrypts'
      )
    }
    if (entry.compressionMethod !== 0) {
      throw CheckpointError.at(
        'unsafe',
        file,
        name,
        `the record is compressed (method ${entry.compressionMethod}, ` +
          `${entry.compressedSize} bytes claiming ${entry.uncompressedSize}); torch.save stores ` +
          'every record uncompressed, so compressed records are refused (zip-bomb guard)'
      )
    }
    if (entry.relativeOffsetOfLocalHeader + entry.compressedSize > fileSize) {
      throw CheckpointError.at(
        'unreadable',
        file,
        name,
        `the record claims ${entry.compressedSize} bytes at offset ` +
          `${entry.relativeOffsetOfLocalHeader}, past the end of the ${fileSize}-byte file`
      )
    }
    entries.set(name, entry)
  }
  return entries
}

function findPrefix(entries: Map<string, yauzl.Entry>, file: string): string {
  const pickles = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n))
  if (pickles.length === 0) {
    throw CheckpointError.at(
      'unreadable',
      file,
      undefined,
      'no "<name>/data.pkl" record: this zip is not a torch.save checkpoint'
    )
  }
  if (pickles.length > 1) {
    throw CheckpointError.at(
      'invalid',
      file,
      undefined,
      `several pickles (${pickles.slice(0, 3).join(', ')}): ambiguous archive`
    )
  }
  return pickles[0]!.slice(0, -'/data.pkl'.length)
}
