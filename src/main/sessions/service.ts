import { randomBytes } from 'node:crypto'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { JobResult, JobRows, JobState, JobSubmitInput } from '@shared/domain/jobs'
import { noLensMessage, type ModelLibrary } from '@shared/domain/models'
import {
  SESSION_FORMAT,
  summarizeSession,
  type Session,
  type SessionStatus,
  type SessionSummary
} from '@shared/domain/sessions'
import type { EventChannel, EventPayload, InvokeOutput } from '@shared/ipc/contract'
import { SessionRunSchema } from '@shared/ipc/channels/sessions'
import type { z } from 'zod'
import { AppError } from '@shared/ipc/errors'
import type { InvokeHandlers } from '../router/router'
import { exportSession, parseSessionFile } from './exportFormats'
import { SessionStore } from './store'
import { createLogger } from '../platform/logger'
import { guarded } from '../platform/boundary'

const log = createLogger('sessions')

type RunInput = z.output<typeof SessionRunSchema>
type RunResult = InvokeOutput<'sessions:run'>

/** What the sessions service needs of the job queue (the device manager in the app). */
export interface SessionJobs {
  submit(
    input: JobSubmitInput,
    clientId: string
  ): Promise<{ jobId: string; queuePosition: number | null }>
  getJob(jobId: string): Promise<JobState>
  result(jobId: string): Promise<JobResult>
  library(): Promise<ModelLibrary>
}

export interface SessionsServiceDeps {
  folder: string
  appVersion: string
  jobs: SessionJobs
  emit: <E extends EventChannel>(channel: E, payload: EventPayload<E>) => void
  /** Server-side subscription to the event hub: rows and job changes arrive here. */
  subscribe: (listener: (channel: EventChannel, payload: unknown) => void) => () => void
  /** How long streamed rows may wait before they are written (coalesces many small writes). */
  flushDelayMs?: number
  now?: () => number
}

/** Sessions folder: `TALKATIVE_SESSIONS_DIR`, else ~/.talkative-workbench/sessions. */
export function defaultSessionsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TALKATIVE_SESSIONS_DIR || join(homedir(), '.talkative-workbench', 'sessions')
}

const JOB_TO_SESSION_STATUS: Partial<Record<JobState['status'], SessionStatus>> = {
  done: 'completed',
  failed: 'failed',
  cancelled: 'cancelled'
}

interface ActiveSession {
  session: Session
  dirty: boolean
  timer: NodeJS.Timeout | undefined
  /** Writes of one session run one after another, newest state last. */
  writing: Promise<void>
  finishing: boolean
}

/**
 * Offline sessions: every run submitted through `sessions:run` is saved as its rows stream (coalesced
 * atomic writes), finished from the job's authoritative result, and listed, reopened, renamed,
 * deleted, exported, imported and re-run from the files alone.
 */
export class SessionsService {
  readonly store: SessionStore
  readonly #deps: SessionsServiceDeps
  readonly #active = new Map<string, ActiveSession>()
  readonly #byJob = new Map<string, string>()
  #unsubscribe: (() => void) | undefined
  #idCounter = 0

  constructor(deps: SessionsServiceDeps) {
    this.#deps = deps
    this.store = new SessionStore(deps.folder)
  }

  /**
   * Listens to the hub only while a run is streaming: the hub counts listeners as clients, and an
   * idle app must not look connected (that would keep GPU polling on).
   */
  #listen(): void {
    this.#unsubscribe ??= this.#deps.subscribe((channel, payload) => {
      if (channel === 'jobs:rows') this.#onRows(payload as JobRows)
      else if (channel === 'jobs:changed') this.#onJobChanged(payload as JobState)
    })
  }

  #stopListeningWhenIdle(): void {
    if (this.#active.size > 0 || !this.#unsubscribe) return
    this.#unsubscribe()
    this.#unsubscribe = undefined
  }

  #now(): number {
    return this.#deps.now?.() ?? Date.now()
  }

  #newId(): string {
    const stamp = this.#now().toString(36)
    return `s-${stamp}-${(++this.#idCounter).toString(36)}${randomBytes(3).toString('hex')}`
  }

  async list(): Promise<InvokeOutput<'sessions:list'>> {
    const listing = await this.store.readSummaries()
    const problems = listing.problems
    const summaries = listing.summaries.map((s) => {
      const active = this.#active.get(s.id)
      if (active) return this.#summaryOf(active.session)
      // A file left `running` by a stopped app is shown as interrupted (as #asStored does).
      return s.status === 'running' ? { ...s, status: 'interrupted' as const } : s
    })
    summaries.sort((a, b) => b.createdAt - a.createdAt)
    return { folder: this.store.folder, sessions: summaries, problems }
  }

  async get(id: string): Promise<Session> {
    const active = this.#active.get(id)
    if (active) return structuredClone(active.session)
    return this.#asStored(await this.store.read(id))
  }

  /** A file left `running` by a stopped app is shown as interrupted (its rows are kept). */
  #asStored(session: Session): Session {
    return session.status === 'running' && !this.#active.has(session.id)
      ? { ...session, status: 'interrupted' }
      : session
  }

  #summaryOf(session: Session): SessionSummary {
    return summarizeSession(this.#asStored(session))
  }

  async run(input: RunInput, clientId: string): Promise<RunResult> {
    this.#listen()
    try {
      return await this.#run(input, clientId)
    } finally {
      this.#stopListeningWhenIdle()
    }
  }

  async #run(input: RunInput, clientId: string): Promise<RunResult> {
    const library = await this.#deps.jobs.library()
    const group = library.groups.find((g) => g.groupId === input.groupId)
    if (!group)
      throw new AppError('not_found', `no group ${input.groupId} in the library`, {
        field: 'groupId'
      })
    if (group.status !== 'ok') {
      throw new AppError(
        'bundle_invalid',
        `group ${input.groupId} is broken: ${group.errors[0]?.message ?? ''}`,
        {
          field: 'groupId'
        }
      )
    }
    const lensId = input.lensId ?? group.lenses[0]?.id
    if (!lensId) throw new AppError('not_found', noLensMessage(input.groupId), { field: 'lensId' })
    const submitted = await this.#deps.jobs.submit(
      {
        kind: input.kind,
        groupId: input.groupId,
        lensId,
        // A chat goes to the job as messages: the group's own template renders it, in one place.
        ...(input.input.mode === 'chat' && input.input.messages?.length
          ? { messages: input.input.messages }
          : { text: input.input.text }),
        options: input.options,
        ...(input.generate ? { generate: input.generate } : {}),
        ...(input.intervention ? { intervention: input.intervention } : {}),
        ...(input.sweep ? { sweep: input.sweep } : {})
      },
      clientId
    )
    const now = this.#now()
    const lens = group.lenses.find((l) => l.id === lensId)
    const session: Session = {
      format: SESSION_FORMAT,
      version: 1,
      id: this.#newId(),
      name: input.name ?? defaultName(input, lens?.name ?? lensId),
      createdAt: now,
      updatedAt: now,
      appVersion: this.#deps.appVersion,
      kind: input.kind,
      input: input.input,
      groupId: input.groupId,
      lensId,
      bundleHash: group.contentHash,
      options: input.options,
      ...(input.generate ? { generate: input.generate } : {}),
      ...(input.intervention ? { intervention: input.intervention } : {}),
      ...(input.sweep ? { sweep: input.sweep } : {}),
      jobId: submitted.jobId,
      status: 'running',
      error: null,
      metadata: null,
      rows: [],
      completions: [],
      interventions: []
    }
    const active: ActiveSession = {
      session,
      dirty: true,
      timer: undefined,
      writing: Promise.resolve(),
      finishing: false
    }
    this.#active.set(session.id, active)
    this.#byJob.set(submitted.jobId, session.id)
    await this.#flush(active)
    // The job may have finished (or failed) before it was registered here.
    const state = await this.#deps.jobs.getJob(submitted.jobId).catch((err: unknown) => {
      // Already trimmed from the queue: its events (which the session heard) said how it ended.
      log.debug(`${submitted.jobId} was not found after its submit`, err)
      return undefined
    })
    if (state) this.#onJobChanged(state)
    return {
      session: summarizeSession(session),
      jobId: submitted.jobId,
      queuePosition: submitted.queuePosition
    }
  }

  #onRows(event: JobRows): void {
    const id = this.#byJob.get(event.jobId)
    const active = id ? this.#active.get(id) : undefined
    if (!active || active.finishing) return
    if (event.interventions) {
      const list = active.session.interventions
      for (const [i, row] of event.interventions.entries()) list[event.startIndex + i] = row
      active.session.interventions = list.filter((r) => r !== undefined)
    } else {
      const rows = active.session.rows
      for (const [i, row] of event.rows.entries()) rows[event.startIndex + i] = row
      // Fill holes defensively: rows arrive in order, a gap would mean a lost event.
      active.session.rows = rows.filter((r) => r !== undefined)
    }
    this.#markDirty(active)
  }

  #onJobChanged(job: JobState): void {
    const id = this.#byJob.get(job.id)
    const active = id ? this.#active.get(id) : undefined
    if (!active || active.finishing) return
    const status = JOB_TO_SESSION_STATUS[job.status]
    if (!status) return
    active.finishing = true
    void this.#finish(active, job, status)
  }

  async #finish(active: ActiveSession, job: JobState, status: SessionStatus): Promise<void> {
    const session = active.session
    try {
      const result = await this.#deps.jobs.result(job.id)
      if (result.rows.length >= session.rows.length) session.rows = result.rows
      if (result.interventions.length >= session.interventions.length)
        session.interventions = result.interventions
      session.metadata = result.metadata
      session.completions = result.completions
      if (result.metadata?.bundleHash) session.bundleHash = result.metadata.bundleHash
    } catch {
      // The streamed rows are what the user saw; keep them even when the result is gone.
    }
    session.status = status
    session.error = job.error
    active.dirty = true
    await this.#flush(active)
    this.#active.delete(session.id)
    this.#byJob.delete(job.id)
    this.#stopListeningWhenIdle()
  }

  #markDirty(active: ActiveSession): void {
    active.dirty = true
    if (active.timer) return
    active.timer = setTimeout(
      guarded(log, `saving session ${active.session.id}`, () => {
        active.timer = undefined
        return this.#flush(active)
      }),
      this.#deps.flushDelayMs ?? 150
    )
  }

  #flush(active: ActiveSession): Promise<void> {
    if (active.timer) {
      clearTimeout(active.timer)
      active.timer = undefined
    }
    active.writing = active.writing.then(async () => {
      if (!active.dirty) return
      active.dirty = false
      active.session.updatedAt = this.#now()
      try {
        await this.store.write(active.session)
      } catch {
        // A failed write is retried with the next rows; the job keeps running.
        active.dirty = true
        return
      }
      this.#emitSummary(active.session)
    })
    return active.writing
  }

  #emitSummary(session: Session): void {
    this.#deps.emit('sessions:changed', { id: session.id, summary: summarizeSession(session) })
  }

  async rename(id: string, name: string): Promise<SessionSummary> {
    const active = this.#active.get(id)
    if (active) {
      active.session.name = name
      active.dirty = true
      await this.#flush(active)
      return summarizeSession(active.session)
    }
    const session = await this.store.read(id)
    session.name = name
    session.updatedAt = this.#now()
    await this.store.write(session)
    const summary = this.#summaryOf(session)
    this.#deps.emit('sessions:changed', { id, summary })
    return summary
  }

  async remove(id: string): Promise<{ id: string }> {
    if (this.#active.has(id)) {
      throw new AppError('conflict', `session ${id} is still running: cancel it first`, {
        field: 'id'
      })
    }
    await this.store.remove(id)
    this.#deps.emit('sessions:changed', { id, summary: null })
    return { id }
  }

  async export(
    id: string,
    format: 'json' | 'jsonl' | 'csv'
  ): Promise<InvokeOutput<'sessions:export'>> {
    return exportSession(await this.get(id), format)
  }

  /** Every session in the file, each saved under a new id and marked as imported. */
  async import(fileName: string, content: string): Promise<{ sessions: SessionSummary[] }> {
    const imported = parseSessionFile(fileName, content, this.#now())
    const summaries: SessionSummary[] = []
    for (const one of imported) {
      const session: Session = {
        ...this.#asStored(one),
        id: this.#newId(),
        jobId: null,
        updatedAt: this.#now()
      }
      await this.store.write(session)
      const summary = this.#summaryOf(session)
      this.#deps.emit('sessions:changed', { id: session.id, summary })
      summaries.push(summary)
    }
    return { sessions: summaries }
  }

  async rerunCheck(id: string): Promise<{ possible: boolean; reason: string }> {
    const session = await this.get(id)
    const library = await this.#deps.jobs.library()
    const group = library.groups.find((g) => g.groupId === session.groupId)
    if (!group) return { possible: false, reason: `group ${session.groupId} is not in the library` }
    if (group.status !== 'ok')
      return { possible: false, reason: `group ${session.groupId} is broken` }
    if (!group.lenses.some((l) => l.id === session.lensId)) {
      return {
        possible: false,
        reason: `group ${session.groupId} has no lens ${session.lensId} any more`
      }
    }
    if (!session.bundleHash)
      return { possible: false, reason: 'the session does not record its bundle hash' }
    if (group.contentHash !== session.bundleHash) {
      return {
        possible: false,
        reason: `group ${session.groupId} has changed since this run (bundle ${short(group.contentHash)} ≠ ${short(session.bundleHash)})`
      }
    }
    return {
      possible: true,
      reason: `same bundle ${short(session.bundleHash)}, same options and seed`
    }
  }

  async rerun(id: string, clientId: string): Promise<RunResult> {
    const check = await this.rerunCheck(id)
    if (!check.possible)
      throw new AppError('conflict', `cannot re-run exactly: ${check.reason}`, { field: 'id' })
    const session = await this.get(id)
    return this.run(
      {
        kind: session.kind,
        groupId: session.groupId,
        lensId: session.lensId,
        input: session.input,
        options: session.options,
        ...(session.generate ? { generate: session.generate } : {}),
        ...(session.intervention ? { intervention: session.intervention } : {}),
        ...(session.sweep ? { sweep: session.sweep } : {}),
        name: `${session.name} (re-run)`.slice(0, 200)
      },
      clientId
    )
  }

  handlers(): Pick<
    InvokeHandlers,
    | 'sessions:list'
    | 'sessions:get'
    | 'sessions:run'
    | 'sessions:rename'
    | 'sessions:delete'
    | 'sessions:export'
    | 'sessions:import'
    | 'sessions:rerun-check'
    | 'sessions:rerun'
  > {
    return {
      'sessions:list': () => this.list(),
      'sessions:get': (input) => this.get(input.id),
      'sessions:run': (input, ctx) => this.run(input, ctx.clientId),
      'sessions:rename': (input) => this.rename(input.id, input.name),
      'sessions:delete': (input) => this.remove(input.id),
      'sessions:export': (input) => this.export(input.id, input.format),
      'sessions:import': (input) => this.import(input.fileName, input.content),
      'sessions:rerun-check': (input) => this.rerunCheck(input.id),
      'sessions:rerun': (input, ctx) => this.rerun(input.id, ctx.clientId)
    }
  }

  /** Writes what is pending and stops listening (running jobs keep their files as `running`). */
  async dispose(): Promise<void> {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    await Promise.all([...this.#active.values()].map((a) => this.#flush(a)))
  }
}

function short(hash: string | null): string {
  return hash ? hash.slice(0, 12) : 'none'
}

function defaultName(run: RunInput, lensName: string): string {
  const words = run.input.text
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  const head = words.length > 40 ? `${words.slice(0, 40)}…` : words || 'empty text'
  if (run.kind === 'intervene' && run.intervention) {
    const at = run.intervention.positions.join(', ')
    return `Intervention @${at}: ${head} · ${lensName}`
  }
  if (run.kind === 'sweep' && run.sweep)
    return `Layer sweep @${run.sweep.position}: ${head} · ${lensName}`
  return `${head} · ${lensName}`
}
