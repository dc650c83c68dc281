/**
 * Imports as a service of the composition root: the `imports:*` channels over the import job
 * table. A new group is written only inside the models folder (as a folder name the user may
 * choose, never a path); the source is the folder the user typed or dropped, read where it is.
 * When an import lands, the library rescans so the group appears.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import {
  GroupFolderNameSchema,
  type ImportBaseRequest,
  type ImportJob,
  type ImportLensRequest,
  type ImportedGroup,
  type ImportedLens
} from '@shared/domain/imports'
import { AppError } from '@shared/ipc/errors'
import type { InvokeHandlers } from '../router/router'
import { createLogger } from '../platform/logger'
import { groupIdFrom, importHfBase } from './hf/importBase'
import { ImportJobs } from './jobs'
import { importLens, importedLensOf, lensProgressReporter, readGroupFolder } from './lens'

const log = createLogger('import')

export interface ImportServiceDeps {
  /** The models folder new groups are written into. */
  modelsDir: string
  /** Pushes a job's new state (`imports:changed`). */
  emit(job: ImportJob): void
  /** Called after an import wrote a group (the library rescans). */
  imported(job: ImportJob): Promise<void>
}

/** The name a model folder suggests: `org--name` of a cache folder, else its own name. */
export function defaultGroupFolder(source: string): string {
  const parts = path.resolve(source).split(path.sep).filter(Boolean)
  // …/models--org--name[/snapshots/<hash>]
  const repo = parts.findLast((p) => p.startsWith('models--'))
  const name = repo ? repo.slice('models--'.length) : (parts.at(-1) ?? 'model')
  const cleaned = groupIdFrom(name)
  return GroupFolderNameSchema.safeParse(cleaned).success ? cleaned : 'imported-model'
}

export class ImportService {
  readonly jobs: ImportJobs
  readonly #deps: ImportServiceDeps

  constructor(deps: ImportServiceDeps) {
    this.#deps = deps
    this.jobs = new ImportJobs({ emit: (job) => deps.emit(job) })
  }

  get modelsDir(): string {
    return this.#deps.modelsDir
  }

  /**
   * The group folder an import may create: a plain name inside the models folder, not taken on
   * disk and not being written by another import. `field` names the request field.
   */
  async reserveFolder(folder: string, field: string): Promise<string> {
    const parsed = GroupFolderNameSchema.safeParse(folder)
    if (!parsed.success) {
      throw new AppError('invalid_input', `${field}: ${parsed.error.issues[0]?.message}`, { field })
    }
    const target = path.join(this.#deps.modelsDir, folder)
    if (this.jobs.runningFolders().has(folder)) {
      throw new AppError('conflict', `an import into ${folder} is already running`, { field })
    }
    const taken = await fs.lstat(target).then(
      () => true,
      () => false
    )
    if (taken) {
      throw new AppError(
        'invalid_input',
        `the models folder already has ${folder}; choose another folder name`,
        { field }
      )
    }
    return target
  }

  /** A folder the user typed or dropped: absolute, existing, a folder. */
  async checkSource(source: string, field: string): Promise<string> {
    if (!path.isAbsolute(source)) {
      throw new AppError('invalid_input', `${field}: give the absolute path of the model folder`, {
        field
      })
    }
    const st = await fs.stat(source).catch(() => null)
    if (!st?.isDirectory()) {
      throw new AppError('invalid_input', `${field}: no folder at ${source}`, { field })
    }
    return path.resolve(source)
  }

  /** Starts importing a Hugging Face model folder as a new group. */
  async importBase(req: ImportBaseRequest): Promise<ImportJob> {
    const source = await this.checkSource(req.source, 'source')
    const folder = req.folder ?? defaultGroupFolder(source)
    const out = await this.reserveFolder(folder, 'folder')
    return this.jobs.start(
      { kind: 'base', source, folder, groupId: groupIdFrom(folder) },
      async (ctx): Promise<ImportedGroup> => {
        const r = await importHfBase({
          source,
          out,
          name: req.name,
          outField: 'folder',
          signal: ctx.signal,
          onProgress: ctx.progress,
          onWarning: ctx.warn
        })
        return {
          groupId: r.groupId,
          name: r.name,
          folder,
          architecture: r.architecture,
          modelType: r.modelType,
          parameters: r.parameters,
          checkpointDtype: r.checkpointDtype,
          graphDtype: r.graphDtype,
          weightBytes: r.weightBytes,
          estimatedBytes: r.estimatedBytes
        }
      }
    )
  }

  /**
   * A group an import may add to: a folder of the models folder holding a manifest (resolving
   * inside it), that no running import is writing. Returns its absolute path.
   */
  async existingGroup(folder: string, field: string): Promise<string> {
    const parsed = GroupFolderNameSchema.safeParse(folder)
    if (!parsed.success) {
      throw new AppError('invalid_input', `${field}: ${parsed.error.issues[0]?.message}`, { field })
    }
    if (this.jobs.runningFolders().has(folder)) {
      throw new AppError('conflict', `an import into ${folder} is already running`, { field })
    }
    const root = await fs.realpath(this.#deps.modelsDir).catch(() => null)
    const dir = await fs.realpath(path.join(this.#deps.modelsDir, folder)).catch(() => null)
    if (root === null || dir === null || path.dirname(dir) !== root) {
      throw new AppError('not_found', `${field}: the models folder has no group ${folder}`, {
        field
      })
    }
    return dir
  }

  /** A file or folder the user typed or dropped: absolute and existing. */
  async checkPath(source: string, field: string, what: string): Promise<string> {
    if (!path.isAbsolute(source)) {
      throw new AppError('invalid_input', `${field}: give the absolute path of the ${what}`, {
        field
      })
    }
    const st = await fs.stat(source).catch(() => null)
    if (!st?.isDirectory() && !st?.isFile()) {
      throw new AppError('invalid_input', `${field}: no file or folder at ${source}`, { field })
    }
    return path.resolve(source)
  }

  /** Starts importing a lens training checkpoint into a group of the models folder. */
  async importLens(req: ImportLensRequest): Promise<ImportJob> {
    const checkpoint = await this.checkPath(
      req.checkpoint,
      'checkpoint',
      'checkpoint or run folder'
    )
    const orig = req.orig ? await this.checkSource(req.orig, 'orig') : undefined
    const origBase = req.origBase ? await this.checkSource(req.origBase, 'origBase') : undefined
    const dir = await this.existingGroup(req.folder, 'folder')
    const group = await readGroupFolder(dir)
    return this.jobs.start(
      { kind: 'lens', source: checkpoint, folder: req.folder, groupId: group.manifest.group.id },
      async (ctx): Promise<ImportedLens> => {
        const result = await importLens({
          checkpoint,
          group: dir,
          id: req.id,
          name: req.name,
          orig,
          origBase,
          signal: ctx.signal,
          onProgress: lensProgressReporter(ctx.progress)
        })
        if (result.choiceNote) ctx.warn(result.choiceNote)
        return importedLensOf(result)
      }
    )
  }

  handlers(): Pick<
    InvokeHandlers,
    'imports:base' | 'imports:lens' | 'imports:cancel' | 'imports:list'
  > {
    const rescanWhenDone = (job: ImportJob): ImportJob => {
      void this.jobs.settled(job.id).then(async (done) => {
        if (done.status === 'done') {
          await this.#deps.imported(done).catch(log.failed(`rescanning after ${done.folder}`))
        }
      })
      return job
    }
    return {
      'imports:base': async (input) => rescanWhenDone(await this.importBase(input)),
      'imports:lens': async (input) => rescanWhenDone(await this.importLens(input)),
      'imports:cancel': (input) => this.jobs.cancel(input.importId),
      'imports:list': () => this.jobs.list()
    }
  }

  dispose(): Promise<void> {
    return this.jobs.dispose()
  }
}
