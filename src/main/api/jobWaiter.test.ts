import { describe, expect, it } from 'vitest'
import type { JobState } from '@shared/domain/jobs'
import { Router } from '../router/router'
import { EventHub } from '../router/eventHub'
import { JobWaiter } from './jobWaiter'

function jobState(id: string, status: JobState['status']): JobState {
  return {
    id,
    kind: 'analyze',
    clientId: 'api',
    groupId: 'g',
    lensId: 'l',
    requestedDeviceId: null,
    devices: [],
    status,
    queuePosition: null,
    stage: null,
    progress: null,
    etaSeconds: null,
    createdAt: 1,
    startedAt: null,
    finishedAt: status === 'done' ? 2 : null,
    error: null,
    retries: 0,
    notes: []
  }
}

/** A waiter over a hub and a router that knows one running job, `job-1`. */
function setup(): { hub: EventHub; waiter: JobWaiter; listeners: () => number } {
  let count = 0
  const hub = new EventHub((n) => (count = n))
  const router = new Router({
    'jobs:get': ({ jobId }) => {
      if (jobId !== 'job-1') throw new Error(`no job ${jobId}`)
      return jobState(jobId, 'running')
    }
  })
  return { hub, waiter: new JobWaiter(hub, router), listeners: () => count }
}

const pendingAfter = (p: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([
    p.then(
      () => false,
      () => false
    ),
    new Promise<boolean>((r) => setTimeout(() => r(true), ms))
  ])

describe('JobWaiter', () => {
  it('resolves with the terminal state from jobs:changed and stops listening', async () => {
    const { hub, waiter, listeners } = setup()
    const waiting = waiter.wait('job-1', 'c')
    expect(await pendingAfter(waiting, 20)).toBe(true)
    expect(listeners()).toBe(1)
    hub.emit('jobs:changed', jobState('job-1', 'done'))
    expect((await waiting)?.status).toBe('done')
    expect(listeners()).toBe(0)
  })

  it('answers null for an unknown job', async () => {
    const { waiter, listeners } = setup()
    expect(await waiter.wait('job-2', 'c')).toBeNull()
    expect(listeners()).toBe(0)
  })

  it('close() settles every pending wait, and later waits fail at once', async () => {
    const { waiter, listeners } = setup()
    const first = waiter.wait('job-1', 'c')
    const second = waiter.wait('job-1', 'd')
    expect(await pendingAfter(first, 20)).toBe(true)
    waiter.close()
    await expect(first).rejects.toMatchObject({ code: 'unavailable' })
    await expect(second).rejects.toThrow(/closing/)
    expect(listeners()).toBe(0)
    await expect(waiter.wait('job-1', 'c')).rejects.toMatchObject({ code: 'unavailable' })
  })

  it('a close while the job is being looked up settles that wait too', async () => {
    const { waiter } = setup()
    const waiting = waiter.wait('job-1', 'c')
    waiter.close()
    await expect(waiting).rejects.toMatchObject({ code: 'unavailable' })
  })
})
