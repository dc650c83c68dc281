/**
 * Where a Hugging Face folder's files are, and the boundary they must stay inside: a plain folder
 * (`save_pretrained`), a cache snapshot (`models--org--name/snapshots/<hash>/`, whose files are
 * symlinks into `../../blobs/`), or the cache's `models--org--name` folder itself (the snapshot
 * `refs/main` names; without `refs/main`, its only snapshot).
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { checkpointFail, type CheckpointErrorDetails } from '../errors'
import { isDirectory, isInside, readSmallFile, realpathInside } from '../files'

export interface LocatedFolder {
  /** The folder files are named in: the chosen folder, or the cache snapshot. Absolute. */
  dir: string
  /** Real path every file must resolve inside: the chosen folder, or the `models--…` folder. */
  root: string
  layout: 'plain' | 'hf-cache'
  /** The snapshot's commit hash, for the cache layout. */
  revision?: string
}

/** Finds the folder to read and its containment root. */
export async function locateHfFolder(dirArg: string): Promise<LocatedFolder> {
  const dir = path.resolve(dirArg)
  const where = { file: dir }
  if (!(await isDirectory(dir, where)))
    checkpointFail('missing_file', where, 'folder does not exist')
  const real = await fs.realpath(dir)

  // The repository folder of the cache: `models--org--name/{blobs,refs,snapshots}`.
  if (
    path.basename(real).startsWith('models--') &&
    (await isDirectory(path.join(real, 'snapshots'), where))
  ) {
    const { hash, snapshot } = await snapshotOf(dir, real)
    return { dir: snapshot, root: real, layout: 'hf-cache', revision: hash }
  }
  // A snapshot inside the cache: `models--org--name/snapshots/<hash>`.
  const parent = path.dirname(real)
  const repo = path.dirname(parent)
  if (path.basename(parent) === 'snapshots' && path.basename(repo).startsWith('models--')) {
    return { dir, root: repo, layout: 'hf-cache', revision: path.basename(real) }
  }
  return { dir, root: real, layout: 'plain' }
}

async function snapshotOf(
  dir: string,
  realRepo: string
): Promise<{ hash: string; snapshot: string }> {
  const refFile = path.join(dir, 'refs', 'main')
  const refWhere = { file: 'refs/main' }
  let hash: string | undefined
  if (await resolveFile(dir, realRepo, 'refs/main', refWhere)) {
    hash = (await readSmallFile(refFile, refWhere, 4096)).toString('utf8').trim()
    if (!/^[0-9a-f]{40}$/.test(hash)) {
      checkpointFail(
        'config_invalid',
        refWhere,
        `holds ${JSON.stringify(hash.slice(0, 80))}, not a commit hash`
      )
    }
  } else {
    const snapshots = (await fs.readdir(path.join(dir, 'snapshots'))).filter(
      (n) => !n.startsWith('.')
    )
    if (snapshots.length !== 1) {
      checkpointFail(
        'missing_file',
        refWhere,
        `missing, and snapshots/ holds ${snapshots.length} snapshots (${snapshots.slice(0, 5).join(', ')}): choose one snapshot folder`
      )
    }
    hash = snapshots[0]!
  }
  const snapshot = path.join(dir, 'snapshots', hash)
  if (!(await isDirectory(snapshot, { file: `snapshots/${hash}` }))) {
    checkpointFail(
      'missing_file',
      { file: `snapshots/${hash}` },
      'the snapshot refs/main names is missing'
    )
  }
  await realpathInside(snapshot, realRepo, { file: `snapshots/${hash}` }, 'the snapshot folder')
  return { hash, snapshot }
}

/**
 * The real path of `dir/name` when something exists there (undefined otherwise). The name must stay
 * inside `dir` as written, and what it resolves to inside `root`.
 */
export async function resolveFile(
  dir: string,
  root: string,
  name: string,
  where: CheckpointErrorDetails
): Promise<string | undefined> {
  const abs = path.resolve(dir, name)
  if (!isInside(dir, abs) || abs === dir) {
    checkpointFail('outside_folder', where, `"${name}" names a path outside the model folder`)
  }
  try {
    await fs.lstat(abs)
  } catch {
    return undefined
  }
  return realpathInside(abs, root, where, `"${name}"`)
}
