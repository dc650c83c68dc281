import { describe, expect, it } from 'vitest'
import type { JobStatus } from '@shared/domain/jobs'
import { runPhase } from './runStatus'

const job = (status: JobStatus): { status: JobStatus } => ({ status })

describe('run phase', () => {
  it('a finished, failed or cancelled run reopened from history is never queued and never cancellable', () => {
    expect(runPhase(null, 'completed', 'job-1')).toEqual({ phase: 'done', cancellable: false })
    expect(runPhase(null, 'failed', 'job-1')).toEqual({ phase: 'failed', cancellable: false })
    expect(runPhase(null, 'cancelled', null)).toEqual({ phase: 'cancelled', cancellable: false })
    expect(runPhase(null, 'interrupted', 'job-1')).toEqual({
      phase: 'interrupted',
      cancellable: false
    })
    // A late job event cannot make a saved result live again.
    expect(runPhase(job('queued'), 'completed', 'job-1')).toEqual({
      phase: 'done',
      cancellable: false
    })
  })

  it('a running session follows its job and can be cancelled until the job ends', () => {
    expect(runPhase(job('queued'), 'running', 'job-1')).toEqual({
      phase: 'queued',
      cancellable: true
    })
    expect(runPhase(job('running'), 'running', 'job-1')).toEqual({
      phase: 'running',
      cancellable: true
    })
    expect(runPhase(job('done'), 'running', 'job-1')).toEqual({ phase: 'done', cancellable: false })
    expect(runPhase(null, 'running', 'job-1')).toEqual({ phase: 'streaming', cancellable: true })
    expect(runPhase(null, 'running', null)).toEqual({ phase: 'streaming', cancellable: false })
  })
})
