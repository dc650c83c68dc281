import { TERMINAL_JOB_STATUSES, type JobStatus } from '@shared/domain/jobs'
import type { SessionStatus } from '@shared/domain/sessions'

/** What the run line says about a result on screen. */
export type RunPhase = JobStatus | 'interrupted' | 'streaming'

const FROM_SESSION: Record<SessionStatus, RunPhase> = {
  running: 'streaming',
  completed: 'done',
  cancelled: 'cancelled',
  failed: 'failed',
  interrupted: 'interrupted'
}

/**
 * A run's phase and whether Cancel can do anything. The job's own state wins while this window
 * follows it; a session reopened from history has no job state here, and its saved status is the
 * truth (a finished run is never "queued" with a Cancel that does nothing).
 */
export function runPhase(
  job: { status: JobStatus } | null,
  sessionStatus: SessionStatus,
  jobId: string | null
): { phase: RunPhase; cancellable: boolean } {
  if (sessionStatus !== 'running') {
    // The saved file is final; a job event that arrives late cannot make it live again.
    return { phase: FROM_SESSION[sessionStatus], cancellable: false }
  }
  if (job) {
    return {
      phase: job.status,
      cancellable: jobId !== null && !TERMINAL_JOB_STATUSES.includes(job.status)
    }
  }
  return { phase: 'streaming', cancellable: jobId !== null }
}
