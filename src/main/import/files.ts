/**
 * File access for checkpoint reading that can neither block nor wander: every file is checked with
 * `stat` to be a regular file before it is opened (a FIFO would block an `open`), opened with
 * `O_NONBLOCK` as a second guard, checked again with `fstat` on the open handle, and every path is
 * resolved with `realpath` and must stay inside the folder the user chose.
 */
import { constants, promises as fs, type Stats } from 'node:fs'
import path from 'node:path'
import { checkpointFail, type CheckpointErrorDetails } from './errors'

/** Open flags: read-only, and never wait on a FIFO that slipped in between `stat` and `open`. */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)

export function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
}

function describeKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a FIFO (named pipe)'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device'
  return 'not a regular file'
}

function ioMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  return e?.code ? `${e.code}: ${e.message}` : String(err)
}

/** `stat` that follows symlinks; a missing file or one that is not a regular file is an error. */
export async function statRegularFile(abs: string, where: CheckpointErrorDetails): Promise<Stats> {
  let st: Stats
  try {
    st = await fs.stat(abs)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR')
      checkpointFail('missing_file', where, 'missing file')
    checkpointFail('unreadable', where, `cannot read: ${ioMessage(err)}`)
  }
  if (!st.isFile()) {
    checkpointFail('not_regular_file', where, `is ${describeKind(st)}, expected a regular file`)
  }
  return st
}

/** Whether a directory exists at `abs` (following symlinks); other kinds of file are an error. */
export async function isDirectory(abs: string, where: CheckpointErrorDetails): Promise<boolean> {
  let st: Stats
  try {
    st = await fs.stat(abs)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return false
    checkpointFail('unreadable', where, `cannot read: ${ioMessage(err)}`)
  }
  if (!st.isDirectory()) {
    checkpointFail('not_regular_file', where, `is ${describeKind(st)}, expected a folder`)
  }
  return true
}

/** Whether anything (file, link, folder) exists at `abs`, without following a final symlink. */
export async function exists(abs: string): Promise<boolean> {
  try {
    await fs.lstat(abs)
    return true
  } catch {
    return false
  }
}

/**
 * Opens a file already checked by `statRegularFile`. When `expected` is given, the open file must be
 * the same one (device, inode, size): a file replaced or resized since its header was read is refused.
 */
export async function openRegularFile(
  abs: string,
  where: CheckpointErrorDetails,
  expected?: Stats
): Promise<fs.FileHandle> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(abs, OPEN_FLAGS)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') checkpointFail('missing_file', where, 'missing file')
    checkpointFail('unreadable', where, `cannot open: ${ioMessage(err)}`)
  }
  try {
    const st = await handle.stat()
    if (!st.isFile()) {
      checkpointFail('not_regular_file', where, `is ${describeKind(st)}, expected a regular file`)
    }
    if (
      expected &&
      (st.ino !== expected.ino || st.dev !== expected.dev || st.size !== expected.size)
    ) {
      checkpointFail('unreadable', where, 'the file changed since its header was read')
    }
    return handle
  } catch (err) {
    await handle.close().catch(() => undefined)
    throw err
  }
}

/** Reads a whole small file (JSON, text) after the same checks, refusing one over `maxBytes`. */
export async function readSmallFile(
  abs: string,
  where: CheckpointErrorDetails,
  maxBytes: number
): Promise<Buffer> {
  const st = await statRegularFile(abs, where)
  if (st.size > maxBytes) {
    checkpointFail(
      'config_invalid',
      where,
      `is ${st.size} bytes, more than the ${maxBytes} this file may have`
    )
  }
  const handle = await openRegularFile(abs, where)
  try {
    const buf = Buffer.alloc(st.size)
    let done = 0
    while (done < st.size) {
      const { bytesRead } = await handle.read(buf, done, st.size - done, done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done === st.size ? buf : buf.subarray(0, done)
  } catch (err) {
    if (err instanceof Error && err.name === 'CheckpointError') throw err
    checkpointFail('unreadable', where, `cannot read: ${ioMessage(err)}`)
  } finally {
    await handle.close().catch(() => undefined)
  }
}

/** Parses JSON text from a small file; the result must be a plain object. */
export async function readJsonObject(
  abs: string,
  where: CheckpointErrorDetails,
  maxBytes: number
): Promise<Record<string, unknown>> {
  const buf = await readSmallFile(abs, where, maxBytes)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf))
  } catch (err) {
    checkpointFail('config_invalid', where, `not valid JSON: ${(err as Error).message}`)
  }
  if (!isPlainObject(value)) checkpointFail('config_invalid', where, 'must hold a JSON object')
  return value
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * `realpath` of `abs`, which must exist and lie inside `realRoot`. `where` names the file (or the
 * index entry) the path came from, for the error.
 */
export async function realpathInside(
  abs: string,
  realRoot: string,
  where: CheckpointErrorDetails,
  what: string
): Promise<string> {
  let real: string
  try {
    real = await fs.realpath(abs)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      checkpointFail('missing_file', where, `${what} does not exist`)
    }
    checkpointFail('unreadable', where, `cannot resolve ${what}: ${ioMessage(err)}`)
  }
  if (!isInside(realRoot, real)) {
    checkpointFail(
      'outside_folder',
      where,
      `${what} resolves to ${real}, outside the chosen folder ${realRoot}`
    )
  }
  return real
}
