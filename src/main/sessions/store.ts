import { promises as fs } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import { SessionIdSchema, SessionSchema, type Session } from '@shared/domain/sessions'
import { AppError, describeZodError } from '@shared/ipc/errors'

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
      await fs.rm(temp, { force: true }).catch(() => undefined)
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
  async readAll(): Promise<{ sessions: Session[]; problems: SessionProblem[] }> {
    let names: string[]
    try {
      names = await fs.readdir(this.folder)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { sessions: [], problems: [] }
      throw new AppError(
        'unavailable',
        `cannot read the sessions folder: ${(err as Error).message}`,
        {
          file: this.folder
        }
      )
    }
    const sessions: Session[] = []
    const problems: SessionProblem[] = []
    for (const name of names.sort()) {
      if (!SESSION_FILE.test(name)) continue
      try {
        const text = await fs.readFile(join(this.folder, name), 'utf8')
        sessions.push(parseStoredSession(text, name))
      } catch (err) {
        problems.push({ file: name, message: err instanceof Error ? err.message : String(err) })
      }
    }
    return { sessions, problems }
  }
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
