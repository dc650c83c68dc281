import { promises as fs } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import {
  SessionIdSchema,
  SessionSchema,
  summarizeSession,
  type Session,
  type SessionSummary
} from '@shared/domain/sessions'
import { AppError, describeZodError } from '@shared/ipc/errors'
import { createLogger } from '../platform/logger'

const log = createLogger('sessions')

export interface SessionProblem {
  file: string
  message: string
}

const SESSION_FILE = /^(s-[0-9a-z][0-9a-z-]{0,63})\.json$/

/** The file-system calls a durable write makes (node:fs/promises; tests record the order). */
export interface DurableWriteFs {
  open(file: string, flags: string): Promise<Pick<FileHandle, 'writeFile' | 'sync' | 'close'>>
  rename(from: string, to: string): Promise<void>
}

/**
 * Session files on disk, one `<id>.json` each, inside one folder and nowhere else. Writes are
 * atomic and durable: the temp file (same folder) is fsynced before the rename and the folder
 * after it, so a crash or power loss leaves the old or the new file, never an empty or half one.
 */
export class SessionStore {
  readonly folder: string
  readonly #fs: DurableWriteFs
  #tempCounter = 0
  /** Summaries by file name, with the size and mtime they were read at (see `readSummaries`). */
  readonly #summaries = new Map<
    string,
    { ino: number; size: number; mtimeMs: number; summary: SessionSummary }
  >()
  /** Files read in full by `readSummaries` (what the cache saves; tests read it). */
  fullReads = 0

  constructor(folder: string, durableFs: DurableWriteFs = fs) {
    this.folder = resolve(folder)
    this.#fs = durableFs
  }

  /** The file of a session id; refuses anything that is not a plain id inside the folder. */
  pathOf(id: string): string {
    const parsed = SessionIdSchema.safeParse(id)
    if (!parsed.success) {
      throw new AppError('invalid_input', describeZodError(parsed.error, 'id').message, {
        field: 'id'
      })
    }
    const file = resolve(this.folder, `${parsed.data}.json`)
    if (!file.startsWith(this.folder + sep)) {
      throw new AppError('forbidden', `session ${id} resolves outside the sessions folder`)
    }
    return file
  }

  async write(session: Session): Promise<void> {
    const file = this.pathOf(session.id)
    await fs.mkdir(this.folder, { recursive: true })
    const temp = join(this.folder, `.${session.id}.${process.pid}.${++this.#tempCounter}.tmp`)
    try {
      // Without the fsync a rename can reach the disk before the data (ext4 delayed
      // allocation), and power loss then leaves a zero-length session file.
      const handle = await this.#fs.open(temp, 'w')
      try {
        await handle.writeFile(JSON.stringify(session), 'utf8')
        await handle.sync()
      } finally {
        await handle.close()
      }
      await this.#fs.rename(temp, file)
      await this.#syncFolder()
    } catch (err) {
      await fs.rm(temp, { force: true }).catch(log.failed(`removing ${temp}`, 'debug'))
      throw new AppError(
        'unavailable',
        `cannot save session ${session.id}: ${(err as Error).message}`,
        {
          file
        }
      )
    }
  }

  /** Makes the rename itself durable (the folder's entry). */
  async #syncFolder(): Promise<void> {
    let handle: Pick<FileHandle, 'sync' | 'close'>
    try {
      handle = await this.#fs.open(this.folder, 'r')
    } catch (err) {
      // Windows cannot open a folder for syncing; NTFS journals the rename itself.
      if (process.platform === 'win32') return
      throw err
    }
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  }

  async read(id: string): Promise<Session> {
    const file = this.pathOf(id)
    let text: string
    try {
      text = await fs.readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new AppError('not_found', `no session ${id}`, { field: 'id' })
      }
      throw new AppError('unavailable', `cannot read session ${id}: ${(err as Error).message}`, {
        file
      })
    }
    return parseStoredSession(text, `${id}.json`)
  }

  async remove(id: string): Promise<void> {
    const file = this.pathOf(id)
    try {
      await fs.unlink(file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new AppError('not_found', `no session ${id}`, { field: 'id' })
      }
      throw err
    }
  }

  /** Every readable session; a file that is not one is reported in `problems` and skipped. */
  /**
   * The history list without re-reading every session in full each time: a file whose size and
   * mtime are what they were is summarised from memory; a new or changed one is read and parsed
   * once (writes are temp + rename, so a changed session is a new inode as well).
   */
  async readSummaries(): Promise<SummaryListing> {
    let names: string[]
    try {
      names = await fs.readdir(this.folder)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { summaries: [], problems: [] }
      throw new AppError(
        'unavailable',
        `cannot read the sessions folder: ${(err as Error).message}`,
        {
          file: this.folder
        }
      )
    }
    const summaries: SessionSummary[] = []
    const problems: SessionProblem[] = []
    const seen = new Set<string>()
    for (const name of names.sort()) {
      if (!SESSION_FILE.test(name)) continue
      seen.add(name)
      const file = join(this.folder, name)
      try {
        const st = await fs.stat(file)
        const cached = this.#summaries.get(name)
        if (
          cached &&
          cached.ino === st.ino &&
          cached.size === st.size &&
          cached.mtimeMs === st.mtimeMs
        ) {
          summaries.push(cached.summary)
          continue
        }
        this.fullReads++
        const summary = summarizeSession(parseStoredSession(await fs.readFile(file, 'utf8'), name))
        this.#summaries.set(name, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, summary })
        summaries.push(summary)
      } catch (err) {
        this.#summaries.delete(name)
        problems.push({ file: name, message: err instanceof Error ? err.message : String(err) })
      }
    }
    for (const name of this.#summaries.keys()) if (!seen.has(name)) this.#summaries.delete(name)
    return { summaries, problems }
  }
}

export interface SummaryListing {
  summaries: SessionSummary[]
  problems: SessionProblem[]
}

function parseStoredSession(text: string, name: string): Session {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new AppError('invalid_input', `${name} is corrupt: ${(err as Error).message}`, {
      file: name
    })
  }
  const parsed = SessionSchema.safeParse(json)
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error)
    throw new AppError('invalid_input', `${name} is not a session file: ${message}`, {
      file: name,
      field
    })
  }
  const id = SESSION_FILE.exec(name)?.[1]
  if (id && parsed.data.id !== id) {
    throw new AppError('invalid_input', `${name} holds session ${parsed.data.id}`, { file: name })
  }
  return parsed.data
}
