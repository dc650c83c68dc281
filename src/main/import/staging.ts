/**
 * Writing a folder so that it appears complete or not at all: everything goes into a hidden
 * sibling (`.NAME.importing-PID-RANDOM`), which is renamed to NAME only once it is whole. A
 * cancelled or failed import removes its staging folder; a killed one leaves a hidden folder that
 * nothing reads as a group (the library skips hidden folders, and it has no name a user typed),
 * removed by the next import into the same parent once its process is gone.
 */
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { AppError } from '@shared/ipc/errors'

const STAGING_RE = /^\.(.+)\.importing-(\d+)-[0-9a-f]{8}$/

export interface Staging {
  /** The hidden folder to write into. */
  readonly dir: string
  /** Where it goes when complete. */
  readonly target: string
  /** Renames the staging folder to the target; refuses when the target appeared meanwhile. */
  commit(): Promise<void>
  /** Removes the staging folder (after a failure or cancel); never throws. */
  discard(): Promise<void>
}

/** Whether anything (file, folder, link) exists at `p`. */
async function present(p: string): Promise<boolean> {
  try {
    await fs.lstat(p)
    return true
  } catch {
    return false
  }
}

/** An empty folder counts as free (a user may create the folder first); anything else does not. */
async function targetIsFree(target: string): Promise<boolean> {
  let st
  try {
    st = await fs.lstat(target)
  } catch {
    return true
  }
  if (!st.isDirectory()) return false
  return (await fs.readdir(target)).length === 0
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Removes staging folders in `parent` whose importing process is gone (a killed import). Staging
 * folders of live processes are left alone. Returns the names removed.
 */
export async function sweepStaleStaging(parent: string): Promise<string[]> {
  let names: string[]
  try {
    names = await fs.readdir(parent)
  } catch {
    return []
  }
  const removed: string[] = []
  for (const name of names) {
    const m = STAGING_RE.exec(name)
    if (!m || processAlive(Number(m[2]))) continue
    await fs.rm(path.join(parent, name), { recursive: true, force: true }).then(
      () => removed.push(name),
      () => undefined
    )
  }
  return removed
}

/** Refuses a target that is taken (anything but an absent or empty folder), naming `field`. */
export async function checkTargetFree(target: string, field: string): Promise<void> {
  const abs = path.resolve(target)
  if (!(await targetIsFree(abs))) {
    throw new AppError(
      'invalid_input',
      `${abs} already exists and is not empty; choose a new folder for the group`,
      { field }
    )
  }
}

/**
 * Starts staging `target` (an absolute path whose parent exists or can be made). `field` names
 * the argument that chose the target, for the refusal when it is already taken.
 */
export async function createStaging(target: string, field: string): Promise<Staging> {
  const abs = path.resolve(target)
  const parent = path.dirname(abs)
  const name = path.basename(abs)
  await checkTargetFree(abs, field)
  await fs.mkdir(parent, { recursive: true })
  await sweepStaleStaging(parent)
  const dir = path.join(
    parent,
    `.${name}.importing-${process.pid}-${randomBytes(4).toString('hex')}`
  )
  await fs.mkdir(dir)
  let settled = false
  return {
    dir,
    target: abs,
    async commit() {
      if (settled) throw new AppError('internal', `staging of ${abs} was already settled`)
      if (!(await targetIsFree(abs))) {
        throw new AppError(
          'conflict',
          `${abs} appeared while importing; the import is kept out of it`,
          { field, file: abs }
        )
      }
      // An empty folder the user made stands in the way of rename(2) on some systems.
      if (await present(abs)) await fs.rmdir(abs)
      await fs.rename(dir, abs)
      settled = true
    },
    async discard() {
      if (settled) return
      settled = true
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined)
    }
  }
}
