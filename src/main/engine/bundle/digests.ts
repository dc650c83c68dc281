/**
 * SHA-256 digests of bundle files, remembered by file identity so that a library scan, an
 * fs.watch event or a worker's load does not read tens of GB of weights again. The identity is
 * (device, inode, size, mtime, ctime) in nanoseconds: any write, truncate, rename over or `touch`
 * changes the ctime, which user space cannot set back (see cache/fingerprint.ts), so an unchanged
 * identity means unchanged bytes. Large files' digests are also kept in a small JSON file under
 * the cache folder, so a restart or a freshly spawned worker skips them too.
 */
import { createHash } from 'node:crypto'
import { constants, promises as fs, type BigIntStats } from 'node:fs'
import path from 'node:path'
import { defaultCacheDir } from '../paths'
import { notRegularFile } from './files'

/** Files this large are worth remembering across processes; smaller ones hash in milliseconds. */
export const PERSIST_MIN_BYTES = 16 * 1024 * 1024
const MAX_PERSISTED = 2000
const FILE_FORMAT = 'talkative-file-digests'

interface Entry {
  identity: string
  digest: string
  size: number
  /** Last use (ms since epoch): the oldest entries go first when the file is full. */
  usedAt: number
}

interface StoredFile {
  format: typeof FILE_FORMAT
  version: 1
  entries: Record<string, Entry>
}

export interface DigestCacheStats {
  /** Files read and hashed (cache misses). */
  hashedFiles: number
  hashedBytes: number
  /** Digests answered without reading the file. */
  hits: number
}

export interface DigestCacheOptions {
  /** JSON file for large files' digests; null keeps them in memory only. */
  file: string | null
  /** Smallest file written to `file` (default PERSIST_MIN_BYTES). */
  persistMinBytes?: number
}

const identityFrom = (st: BigIntStats): { identity: string; size: number } => ({
  identity: `${st.dev}:${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`,
  size: Number(st.size)
})

async function identityOf(abs: string): Promise<{ identity: string; size: number }> {
  return identityFrom(await fs.stat(abs, { bigint: true }))
}

async function sha256File(abs: string): Promise<string> {
  const h = createHash('sha256')
  // Non-blocking, and only a regular file: a FIFO must never hold a pool thread (see files.ts).
  const handle = await fs.open(abs, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
  try {
    const not = notRegularFile(await handle.stat())
    if (not) throw new Error(`${path.basename(abs)} ${not}`)
    const buf = Buffer.allocUnsafe(1 << 20)
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null)
      if (!bytesRead) break
      h.update(buf.subarray(0, bytesRead))
    }
  } finally {
    await handle.close()
  }
  return h.digest('hex')
}

export class FileDigestCache {
  readonly file: string | null
  readonly #persistMinBytes: number
  readonly #entries = new Map<string, Entry>()
  readonly #inFlight = new Map<string, Promise<string>>()
  #loadedFromDisk = false
  #dirty = false
  readonly #stats: DigestCacheStats = { hashedFiles: 0, hashedBytes: 0, hits: 0 }

  constructor(options: DigestCacheOptions) {
    this.file = options.file
    this.#persistMinBytes = options.persistMinBytes ?? PERSIST_MIN_BYTES
  }

  stats(): DigestCacheStats {
    return { ...this.#stats }
  }

  /** The SHA-256 (hex) of a file's bytes; read only when its identity is new. */
  async digest(file: string): Promise<string> {
    const abs = path.resolve(file)
    const { identity, size } = await identityOf(abs)
    const key = `${abs}\n${identity}`
    const known = await this.#lookup(abs, identity, size)
    if (known) {
      this.#stats.hits++
      return known
    }
    let pending = this.#inFlight.get(key)
    if (!pending) {
      pending = this.#hash(abs, identity, size).finally(() => this.#inFlight.delete(key))
      this.#inFlight.set(key, pending)
    }
    return pending
  }

  /**
   * A digest computed by the process that has just written `file` (an importer hashing its output
   * as it streams it out), for the file exactly as `written` (its fstat after the last write)
   * describes it. Like any entry it answers only while the file keeps that identity: a later
   * write, truncate or rename over it changes the ctime, and the file is read and hashed again.
   */
  remember(file: string, digest: string, written: BigIntStats): void {
    if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`not a SHA-256 digest: ${digest}`)
    const { identity, size } = identityFrom(written)
    this.#entries.set(path.resolve(file), { identity, digest, size, usedAt: Date.now() })
    if (size >= this.#persistMinBytes) this.#dirty = true
  }

  async #lookup(abs: string, identity: string, size: number): Promise<string | null> {
    let entry = this.#entries.get(abs)
    if (entry?.identity !== identity && this.file && size >= this.#persistMinBytes) {
      // Another process (the host or another worker) may have hashed it since we last looked.
      await this.#readDisk(true)
      entry = this.#entries.get(abs)
    }
    if (entry?.identity !== identity) return null
    entry.usedAt = Date.now()
    return entry.digest
  }

  async #hash(abs: string, identity: string, size: number): Promise<string> {
    const digest = await sha256File(abs)
    this.#stats.hashedFiles++
    this.#stats.hashedBytes += size
    // A file written while it was read has a new identity: its digest describes neither version.
    if ((await identityOf(abs)).identity === identity) {
      this.#entries.set(abs, { identity, digest, size, usedAt: Date.now() })
      if (size >= this.#persistMinBytes) this.#dirty = true
    }
    return digest
  }

  async #readDisk(force: boolean): Promise<void> {
    if (!this.file || (this.#loadedFromDisk && !force)) return
    this.#loadedFromDisk = true
    let stored: StoredFile
    try {
      stored = JSON.parse(await fs.readFile(this.file, 'utf8')) as StoredFile
    } catch {
      return // Missing or unreadable: it is only a cache.
    }
    if (stored?.format !== FILE_FORMAT || stored.version !== 1 || !stored.entries) return
    for (const [abs, e] of Object.entries(stored.entries)) {
      if (typeof e?.identity !== 'string' || !/^[0-9a-f]{64}$/.test(e.digest ?? '')) continue
      const mine = this.#entries.get(abs)
      if (!mine || (mine.identity !== e.identity && e.usedAt > mine.usedAt)) {
        this.#entries.set(abs, e)
      }
    }
  }

  /**
   * A folder was renamed (an import's temporary folder moved into place): digests of files inside
   * `from` now answer for the same files inside `to`. Renaming a folder leaves its files' inodes,
   * and so their identities, untouched; `digest` still checks the identity before trusting one.
   */
  async moved(from: string, to: string): Promise<void> {
    const fromAbs = path.resolve(from)
    const toAbs = path.resolve(to)
    for (const [abs, entry] of [...this.#entries]) {
      const rel = path.relative(fromAbs, abs)
      if (rel.startsWith('..') || path.isAbsolute(rel)) continue
      this.#entries.delete(abs)
      this.#entries.set(path.join(toAbs, rel), entry)
      if (entry.size >= this.#persistMinBytes) this.#dirty = true
    }
    await this.flush()
  }

  /**
   * Writes new large-file digests to the JSON file (merged with what other processes wrote; a
   * temp file and a rename, so a reader never sees half of it). Failures are ignored: a lost
   * cache costs one re-hash.
   */
  async flush(): Promise<void> {
    if (!this.file || !this.#dirty) return
    this.#dirty = false
    try {
      await this.#readDisk(true)
      const big = [...this.#entries.entries()]
        .filter(([, e]) => e.size >= this.#persistMinBytes)
        .sort((a, b) => b[1].usedAt - a[1].usedAt)
        .slice(0, MAX_PERSISTED)
      const out: StoredFile = { format: FILE_FORMAT, version: 1, entries: Object.fromEntries(big) }
      await fs.mkdir(path.dirname(this.file), { recursive: true })
      const temp = `${this.file}.${process.pid}.${Date.now()}.tmp`
      await fs.writeFile(temp, JSON.stringify(out))
      await fs.rename(temp, this.file).catch(async (err: unknown) => {
        await fs.rm(temp, { force: true })
        throw err
      })
    } catch {
      // Only a cache.
    }
  }
}

let shared: FileDigestCache | null = null

/** The process-wide cache, persisted under the engine's cache folder. */
export function sharedDigestCache(): FileDigestCache {
  shared ??= new FileDigestCache({ file: path.join(defaultCacheDir(), 'file-digests.json') })
  return shared
}
