/**
 * Saved placements: the groups' settings (replicas, preload), the pins, and where preloaded and
 * pinned groups were resident, in one JSON file that survives restarts. Written atomically (a
 * temporary file in the same folder, flushed, then renamed over the old one), so a crash mid-write
 * leaves the previous file whole. A file that cannot be read or does not validate is reported and
 * set aside (`<file>.bad-<time>`), never half-applied. docs/devices.md ("Saved placements").
 */
import { homedir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { z } from 'zod'
import { GroupSettingsSchema, type GroupSettings } from '@shared/domain/devices'
import { DeviceIdSchema } from '@shared/domain/system'
import { describeZodError } from '@shared/ipc/errors'

export const SavedPlacementsSchema = z
  .object({
    version: z.literal(1),
    /** Settings per group id (groups not listed have the defaults). */
    groups: z.record(z.string().min(1).max(200), GroupSettingsSchema),
    /** Residency to restore: every pinned placement and every placement of a preload group. */
    placements: z.array(
      z
        .object({
          groupId: z.string().min(1).max(200),
          deviceId: DeviceIdSchema,
          pinned: z.boolean()
        })
        .strict()
    )
  })
  .strict()
export type SavedPlacements = z.infer<typeof SavedPlacementsSchema>

export const EMPTY_PLACEMENTS: SavedPlacements = { version: 1, groups: {}, placements: [] }

/**
 * `TALKATIVE_PLACEMENTS_FILE` (`off`: nothing is saved), else
 * `~/.talkative-workbench/placements.json`.
 */
export function defaultPlacementsFile(env: NodeJS.ProcessEnv = process.env): string | null {
  const v = env.TALKATIVE_PLACEMENTS_FILE?.trim()
  if (v === 'off') return null
  return v || join(homedir(), '.talkative-workbench', 'placements.json')
}

export interface ReadOutcome {
  saved: SavedPlacements
  /** Why the file was not used (it was moved aside), or undefined. */
  problem?: string
}

export class PlacementStore {
  readonly file: string
  #writing: Promise<void> = Promise.resolve()
  #pending: SavedPlacements | null = null
  #lastWritten: string | null = null

  constructor(file: string) {
    this.file = file
  }

  /** The saved placements; a missing file is an empty state, a bad one is moved aside. */
  async read(): Promise<ReadOutcome> {
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { saved: EMPTY_PLACEMENTS }
      return {
        saved: EMPTY_PLACEMENTS,
        problem: `cannot read ${this.file}: ${(err as Error).message}`
      }
    }
    let problem: string
    try {
      const parsed = SavedPlacementsSchema.safeParse(JSON.parse(text))
      if (parsed.success) {
        this.#lastWritten = JSON.stringify(parsed.data)
        return { saved: parsed.data }
      }
      const { message, field } = describeZodError(parsed.error)
      problem = `${this.file}${field ? ` (${field})` : ''}: ${message}`
    } catch (err) {
      problem = `${this.file} is not JSON: ${(err as Error).message}`
    }
    const aside = `${this.file}.bad-${Date.now()}`
    try {
      await rename(this.file, aside)
      problem += `; moved to ${basename(aside)}`
    } catch {
      // Left in place: the next save replaces it.
    }
    return { saved: EMPTY_PLACEMENTS, problem }
  }

  /**
   * Saves `state` (skipped when equal to what is on disk). Writes are serialised; a save asked for
   * while one runs writes only the latest state after it.
   */
  save(state: SavedPlacements): Promise<void> {
    this.#pending = state
    this.#writing = this.#writing.then(async () => {
      const next = this.#pending
      this.#pending = null
      if (!next) return
      const text = JSON.stringify(next)
      if (text === this.#lastWritten) return
      await writeAtomically(this.file, `${JSON.stringify(next, null, 2)}\n`)
      this.#lastWritten = text
    })
    return this.#writing
  }

  /** Resolves when every save asked for so far is on disk (or failed). */
  flush(): Promise<void> {
    return this.#writing.catch(() => undefined)
  }
}

/** Temporary file in the same folder, flushed to disk, renamed over `file`. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`)
  const handle = await open(tmp, 'w', 0o600)
  try {
    await handle.writeFile(text, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/** The settings a group has when none were saved. */
export const DEFAULT_GROUP_SETTINGS: GroupSettings = {
  replicas: { min: 0, max: null },
  preload: false
}
