/**
 * Import jobs: any import kind (a base model, a lens) run as a job with progress, warnings and
 * cancel, its state pushed on every change. The work itself is a function of an AbortSignal and
 * two reporters; this table only keeps the state, so every kind shares one job shape
 * (`ImportJob`, src/shared/domain/imports.ts) and one set of channels.
 *
 * Imports run in the process that starts them (the main process, or the CLI): reading and
 * writing are streamed and asynchronous, and converting one tensor takes milliseconds, so the
 * event loop keeps turning.
 */
import { randomBytes } from 'node:crypto'
import type {
  ImportJob,
  ImportKind,
  ImportProgress,
  ImportedGroup,
  ImportedLens
} from '@shared/domain/imports'
import { AppError, toSerializedError } from '@shared/ipc/errors'

/** What a running import may do besides its work. */
export interface ImportTaskContext {
  /** Fires when the user cancels (or the service shuts down). */
  signal: AbortSignal
  progress(p: ImportProgress): void
  warn(message: string): void
}

export interface ImportJobsOptions {
  /** Called with a copy of the job after every change. */
  emit(job: ImportJob): void
  now?: () => number
  /** Finished jobs kept for `list` (newest first). */
  keepFinished?: number
}

/** What identifies a new job before it runs. */
export interface ImportJobInit {
  kind: ImportKind
  source: string
  /** The group folder's name inside the models folder. */
  folder: string
  groupId: string | null
}

interface Entry {
  job: ImportJob
  controller: AbortController
  done: Promise<ImportJob>
}

function newImportId(): string {
  return `import-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
}

function copy(job: ImportJob): ImportJob {
  return {
    ...job,
    progress: job.progress ? { ...job.progress } : null,
    warnings: [...job.warnings],
    result: job.result ? { ...job.result } : null,
    lens: job.lens ? { ...job.lens, notes: [...job.lens.notes] } : null
  }
}

export class ImportJobs {
  readonly #o: Required<ImportJobsOptions>
  readonly #entries = new Map<string, Entry>()

  constructor(options: ImportJobsOptions) {
    this.#o = { now: Date.now, keepFinished: 20, ...options }
  }

  /**
   * Starts `run` as a job and answers at once with its state. `run` resolves with what the import
   * made: a group, a lens added to one, or null; a throw fails the job with that error, and a
   * cancel turns into `cancelled`.
   */
  start(
    init: ImportJobInit,
    run: (ctx: ImportTaskContext) => Promise<ImportedGroup | ImportedLens | null>
  ): ImportJob {
    const controller = new AbortController()
    const job: ImportJob = {
      id: newImportId(),
      kind: init.kind,
      source: init.source,
      groupId: init.groupId,
      folder: init.folder,
      status: 'running',
      progress: null,
      startedAt: this.#o.now(),
      finishedAt: null,
      error: null,
      warnings: [],
      result: null,
      lens: null
    }
    const publish = (): void => this.#o.emit(copy(job))
    const ctx: ImportTaskContext = {
      signal: controller.signal,
      progress: (p) => {
        if (job.status !== 'running') return
        job.progress = { ...p }
        publish()
      },
      warn: (message) => {
        job.warnings.push(message)
        publish()
      }
    }
    const done = (async (): Promise<ImportJob> => {
      // Let the caller have the job's id before its first event.
      await Promise.resolve()
      try {
        const result = await run(ctx)
        if (controller.signal.aborted) {
          job.status = 'cancelled'
        } else {
          job.status = 'done'
          if (result && 'lensId' in result) job.lens = result
          else if (result) {
            job.result = result
            job.groupId = result.groupId
          }
        }
      } catch (err) {
        const e = toSerializedError(err)
        job.status = controller.signal.aborted || e.code === 'cancelled' ? 'cancelled' : 'failed'
        job.error = job.status === 'failed' ? e : null
      }
      job.finishedAt = this.#o.now()
      publish()
      this.#prune()
      return copy(job)
    })()
    this.#entries.set(job.id, { job, controller, done })
    publish()
    return copy(job)
  }

  get(id: string): ImportJob {
    return copy(this.#entry(id).job)
  }

  /** Waits for a job to finish (tests, the command line). */
  async settled(id: string): Promise<ImportJob> {
    return this.#entry(id).done
  }

  /** Cancels a running job: the work stops at its next check and removes what it wrote. */
  cancel(id: string): ImportJob {
    const entry = this.#entry(id)
    if (entry.job.status === 'running') entry.controller.abort()
    return copy(entry.job)
  }

  /** Running jobs and the most recent finished ones, newest first. */
  list(): ImportJob[] {
    return [...this.#entries.values()]
      .map((e) => copy(e.job))
      .sort((a, b) => b.startedAt - a.startedAt)
  }

  /** Folders that running imports are writing (a second import into one is refused). */
  runningFolders(): Set<string> {
    const out = new Set<string>()
    for (const e of this.#entries.values()) if (e.job.status === 'running') out.add(e.job.folder)
    return out
  }

  /** Cancels every running job and waits until each has cleaned up. */
  async dispose(): Promise<void> {
    for (const e of this.#entries.values()) if (e.job.status === 'running') e.controller.abort()
    await Promise.allSettled([...this.#entries.values()].map((e) => e.done))
  }

  #entry(id: string): Entry {
    const e = this.#entries.get(id)
    if (!e) throw new AppError('not_found', `no import ${id}`, { field: 'importId' })
    return e
  }

  #prune(): void {
    const finished = [...this.#entries.values()]
      .filter((e) => e.job.status !== 'running')
      .sort((a, b) => b.job.startedAt - a.job.startedAt)
    for (const e of finished.slice(this.#o.keepFinished)) this.#entries.delete(e.job.id)
  }
}
