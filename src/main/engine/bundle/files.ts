/**
 * Reading a file a bundle names, safely: only a regular file is read, never more than a size
 * limit, and never in a way that blocks. A FIFO opened for reading waits for a writer, and it
 * waits in one of libuv's four pool threads; four such files stalled every file operation of the
 * host. Files are opened non-blocking (a FIFO opens at once), checked with `fstat` on the open
 * handle (no swap between check and read), and refused unless regular. Reasons never quote the
 * file's content: a bundle's file may be a symlink to something the user never meant to show.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  promises as fs,
  readFileSync,
  type Stats
} from 'node:fs'
import path from 'node:path'

const MiB = 1024 * 1024

/** Largest JSON file of a bundle (a manifest, lens.json, a tokenizer and its config). */
export const MAX_JSON_BYTES = 256 * MiB
/** Largest graph file read whole (protobuf's own limit is 2 GiB; weights live beside it). */
export const MAX_GRAPH_BYTES = 2048 * MiB - 1

/** A bundle file that cannot be read: `reason` completes "<file>: …". */
export class BundleFileError extends Error {
  constructor(
    readonly reason: string,
    readonly code?: string
  ) {
    super(reason)
    this.name = 'BundleFileError'
  }
}

// O_NONBLOCK makes open() of a FIFO return at once; it changes nothing for regular files.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

/** What `st` is when it is not a regular file ("a folder, not a file"), else null. */
export function notRegularFile(st: Stats): string | null {
  if (st.isFile()) return null
  if (st.isDirectory()) return 'is a folder, not a file'
  if (st.isFIFO()) return 'is a FIFO (named pipe), not a regular file'
  if (st.isSocket()) return 'is a socket, not a regular file'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'is a device, not a regular file'
  return 'is not a regular file'
}

function openFailure(err: unknown): BundleFileError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new BundleFileError('missing file', code)
  if (code === 'EACCES' || code === 'EPERM')
    return new BundleFileError('not readable (permission denied)', code)
  if (code === 'ELOOP') return new BundleFileError('a symlink loop', code)
  if (code === 'ENXIO') return new BundleFileError('is a socket, not a regular file', code)
  return new BundleFileError(`cannot be opened (${code ?? 'error'})`, code)
}

function sizeLimitFailure(size: number, maxBytes: number): BundleFileError {
  const mb = (n: number): string => `${Math.round((n / MiB) * 10) / 10} MiB`
  return new BundleFileError(`holds ${mb(size)}, more than the ${mb(maxBytes)} such a file may`)
}

/** The bytes of the regular file `abs`; throws a BundleFileError otherwise. */
export async function readRegularFile(abs: string, maxBytes: number): Promise<Buffer> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(abs, READ_FLAGS)
  } catch (err) {
    throw openFailure(err)
  }
  try {
    const st = await handle.stat()
    const not = notRegularFile(st)
    if (not) throw new BundleFileError(not)
    if (st.size > maxBytes) throw sizeLimitFailure(st.size, maxBytes)
    return await handle.readFile()
  } finally {
    await handle.close()
  }
}

/** `readRegularFile` for the few synchronous readers. */
export function readRegularFileSync(abs: string, maxBytes: number): Buffer {
  let fd: number
  try {
    fd = openSync(abs, READ_FLAGS)
  } catch (err) {
    throw openFailure(err)
  }
  try {
    const st = fstatSync(fd)
    const not = notRegularFile(st)
    if (not) throw new BundleFileError(not)
    if (st.size > maxBytes) throw sizeLimitFailure(st.size, maxBytes)
    return readFileSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** The size of the regular file `abs` (a FIFO or a folder is refused, nothing is read). */
export async function regularFileSize(abs: string): Promise<number> {
  let st: Stats
  try {
    st = await fs.stat(abs)
  } catch (err) {
    throw openFailure(err)
  }
  const not = notRegularFile(st)
  if (not) throw new BundleFileError(not)
  return st.size
}

/**
 * A JSON parse failure without the text: V8's message quotes the start of the file ("Unexpected
 * token 'h', "hello wor"... is not valid JSON"); only the position is kept.
 */
export function jsonFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : ''
  const at = /position (\d+)/.exec(message)
  if (at) return `not valid JSON (at character ${at[1]})`
  if (/end of JSON input/i.test(message)) return 'not valid JSON (it ends too soon)'
  return 'not valid JSON'
}

/** True when `p` is `root` or inside it (both absolute, resolved). */
export function isInsideFolder(root: string, p: string): boolean {
  const r = path.relative(root, p)
  return r === '' || (!r.startsWith('..') && !path.isAbsolute(r))
}

/**
 * `rel` (a path a bundle file names) as an absolute path inside `root`, following symlinks:
 * throws a BundleFileError when the name or its real path leads outside `root`.
 */
export async function resolveInsideFolder(root: string, rel: string): Promise<string> {
  const abs = path.resolve(root, rel)
  if (!isInsideFolder(root, abs)) throw new BundleFileError('escapes the bundle folder')
  let real: string
  let realRoot: string
  try {
    ;[real, realRoot] = await Promise.all([fs.realpath(abs), fs.realpath(root)])
  } catch (err) {
    throw openFailure(err)
  }
  if (!isInsideFolder(realRoot, real))
    throw new BundleFileError('resolves outside the bundle folder (symlink)')
  return abs
}
