/**
 * Adding to an existing group folder without ever leaving it half-written: one import at a time
 * (a lock file), new files staged in a hidden folder inside the group and renamed into place, the
 * manifest replaced by rename last, and everything added removed again when a later step fails
 * (docs/import.md "What an import writes").
 */
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { ManifestSchema, type Manifest, type ModelRef } from '../../engine'
import { CheckpointError } from '../errors'
import type { GroupBase } from './base'

const LOCK_FILE = '.talkative-import.lock'

export interface GroupFolder {
  dir: string
  /** manifest.json as parsed (schema 2). */
  manifest: Manifest
  /** manifest.json as written, to add to without rewriting what it holds. */
  raw: Record<string, unknown>
}

function groupError(dir: string, field: string | undefined, message: string): CheckpointError {
  return CheckpointError.at('invalid', path.join(dir, 'manifest.json'), field, message)
}

/** Reads and validates the group's manifest.json (the lens and donor folders are validated by the engine afterwards). */
export async function readGroupFolder(dirArg: string): Promise<GroupFolder> {
  const dir = path.resolve(dirArg)
  let text: string
  try {
    text = await fs.readFile(path.join(dir, 'manifest.json'), 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw CheckpointError.at(
      code === 'ENOENT' || code === 'ENOTDIR' ? 'missing_file' : 'unreadable',
      path.join(dir, 'manifest.json'),
      undefined,
      code === 'ENOENT' || code === 'ENOTDIR'
        ? 'missing: the lens must go into a model group folder (one holding manifest.json; `talkative import base` makes one)'
        : (err as Error).message
    )
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw groupError(dir, undefined, `not valid JSON: ${(err as Error).message}`)
  }
  const parsed = ManifestSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw groupError(dir, issue?.path.join('.') || undefined, issue?.message ?? 'invalid manifest')
  }
  return { dir, manifest: parsed.data, raw: raw as Record<string, unknown> }
}

export function groupBase(group: GroupFolder, model: ModelRef = group.manifest.base): GroupBase {
  return {
    groupId: group.manifest.group.id,
    id: model.id,
    name: model.name ?? null,
    architecture: model.architecture,
    hiddenSize: model.hiddenSize,
    layers: model.layers,
    vocabSize: model.vocabSize,
    embeddingScale: model.embeddingScale
  }
}

/** Holds the group's import lock for the duration of `work`. */
export async function withGroupLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, LOCK_FILE)
  let handle: fs.FileHandle
  try {
    handle = await fs.open(lock, 'wx')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw CheckpointError.at(
        'invalid',
        lock,
        undefined,
        'another import into this group is running (if none is, the file was left by a crash: delete it)'
      )
    }
    throw err
  }
  try {
    await handle.writeFile(`${process.pid}\n`)
    await handle.close()
    return await work()
  } finally {
    await fs.rm(lock, { force: true })
  }
}

/** A hidden folder inside the group for files that are renamed into place when complete. */
export async function stagingFolder(dir: string): Promise<string> {
  const staging = path.join(dir, `.import-${randomBytes(6).toString('hex')}`)
  await fs.mkdir(staging)
  return staging
}

/** Fails when `rel` (relative to the group) exists. */
export async function refuseExisting(dir: string, rel: string, what: string): Promise<void> {
  try {
    await fs.lstat(path.join(dir, rel))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  throw CheckpointError.at(
    'invalid',
    path.join(dir, rel),
    undefined,
    `${what} already exists in the group; choose another id (--id)`
  )
}

/** Writes manifest.json by rename (a reader sees the old or the new file, never part of one). */
export async function writeManifest(dir: string, raw: Record<string, unknown>): Promise<void> {
  const tmp = path.join(dir, `.manifest-${randomBytes(6).toString('hex')}.json`)
  await fs.writeFile(tmp, JSON.stringify(raw, null, 2) + '\n')
  await fs.rename(tmp, path.join(dir, 'manifest.json'))
}
