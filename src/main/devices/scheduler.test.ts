import { describe, expect, it } from 'vitest'
import {
  nextDecision,
  type SchedulerDevice,
  type SchedulerJob,
  type SchedulerPlacement,
  type SchedulerView
} from './scheduler'

const MiB = 1024 ** 2

function resident(
  groupId: string,
  mib: number,
  extra: Partial<SchedulerPlacement> = {}
): SchedulerPlacement {
  return { groupId, state: 'ready', bytes: mib * MiB, pinned: false, lastUsedAt: 0, ...extra }
}

function device(
  id: string,
  budgetMiB: number,
  placements: SchedulerPlacement[] = [],
  extra: Partial<SchedulerDevice> = {}
): SchedulerDevice {
  return {
    id,
    budgetBytes: budgetMiB * MiB,
    hasProvider: true,
    status: 'ready',
    idle: true,
    taskGroupId: null,
    taskClientId: null,
    placements,
    ...extra
  }
}

/** A device running a task of `clientId` on `groupId`. */
function busy(d: SchedulerDevice, groupId: string, clientId = 'other'): SchedulerDevice {
  return { ...d, idle: false, status: 'busy', taskGroupId: groupId, taskClientId: clientId }
}

function job(id: string, groupId: string, extra: Partial<SchedulerJob> = {}): SchedulerJob {
  return {
    id,
    clientId: 'a',
    kind: 'analyze',
    status: 'queued',
    groupId,
    requestedDeviceId: null,
    moveFrom: null,
    activeShares: 0,
    requiredBytes: { 'cpu:0': 40 * MiB, 'cpu:1': 40 * MiB },
    ...extra
  }
}

function view(
  devices: SchedulerDevice[],
  queued: SchedulerJob[],
  continuing: SchedulerJob[] = []
): SchedulerView {
  return { devices, queued, continuing }
}

describe('nextDecision', () => {
  it.each([
    {
      name: 'an idle device already holding the group takes the job',
      v: view([device('cpu:0', 100), device('cpu:1', 100, [resident('g', 40)])], [job('j', 'g')]),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: [] }
    },
    {
      name: 'of two idle holders, the less loaded one',
      v: view(
        [
          device('cpu:0', 100, [resident('g', 40), resident('x', 40)]),
          device('cpu:1', 100, [resident('g', 40)])
        ],
        [job('j', 'g')]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: [] }
    },
    {
      name: 'nobody holds it: placed where it fits, least loaded first',
      v: view(
        [device('cpu:0', 100, [resident('x', 30)]), device('cpu:1', 100, [resident('y', 10)])],
        [job('j', 'g')]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: [] }
    },
    {
      name: 'placed after evicting the least recently used unpinned group',
      v: view(
        [
          device('cpu:0', 100, [
            resident('old', 40, { lastUsedAt: 1 }),
            resident('new', 40, { lastUsedAt: 9 })
          ])
        ],
        [job('j', 'g')]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:0', evictions: ['old'] }
    },
    {
      name: 'the requested device, idle, gets the group loaded there',
      v: view(
        [device('cpu:0', 100), device('cpu:1', 100, [resident('g', 40)])],
        [job('j', 'g', { requestedDeviceId: 'cpu:0' })]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:0', evictions: [] }
    },
    {
      name: 'a load job whose group is resident and ready is done at once',
      v: view([device('cpu:0', 100, [resident('g', 40)])], [job('j', 'g', { kind: 'load' })]),
      want: { kind: 'already-loaded', jobId: 'j', deviceId: 'cpu:0' }
    },
    {
      name: 'a move is never short-circuited: it loads on the target',
      v: view(
        [device('cpu:0', 100, [resident('g', 40)]), device('cpu:1', 100)],
        [job('j', 'g', { kind: 'load', requestedDeviceId: 'cpu:1', moveFrom: 'cpu:0' })]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: [] }
    },
    {
      name: 'a continuing share goes to an idle holder',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40)]), 'g', 'a'),
          device('cpu:1', 100, [resident('g', 40)])
        ],
        [],
        [job('j', 'g', { status: 'running', activeShares: 1 })]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: [] }
    },
    {
      name: 'a continuing job nobody holds any more is placed again when no share runs',
      v: view([device('cpu:0', 100)], [], [job('j', 'g', { status: 'running' })]),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:0', evictions: [] }
    }
  ])('$name', ({ v, want }) => {
    expect(nextDecision(v)).toEqual(want)
  })

  it.each([
    {
      name: 'no device is idle',
      v: view([busy(device('cpu:0', 100), 'x')], [job('j', 'g')]),
      why: /no device is idle/
    },
    {
      name: 'the group is held by a busy device: no second copy',
      v: view(
        [busy(device('cpu:0', 100, [resident('g', 40)]), 'g'), device('cpu:1', 100)],
        [job('j', 'g')]
      ),
      why: /held by a busy device/
    },
    {
      name: 'the group is still loading where a load job asked for it',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40, { state: 'loading' })]), 'g'),
          device('cpu:1', 100)
        ],
        [job('j', 'g', { kind: 'load' })]
      ),
      why: /loading on cpu:0/
    },
    {
      name: 'the requested device is busy',
      v: view(
        [busy(device('cpu:0', 100), 'x'), device('cpu:1', 100)],
        [job('j', 'g', { requestedDeviceId: 'cpu:0' })]
      ),
      why: /cpu:0 is busy/
    },
    {
      name: 'it fits once the group in use is free',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('used', 80)]), 'used'),
          device('cpu:1', 100, [resident('pinned', 80, { pinned: true })])
        ],
        [job('j', 'g')]
      ),
      why: /fits once running jobs end/
    },
    {
      name: 'a continuing job waits while a share of it still runs',
      v: view([device('cpu:0', 100)], [], [job('j', 'g', { status: 'running', activeShares: 1 })]),
      why: /no idle device holds g/
    }
  ])('waits: $name', ({ v, why }) => {
    const decision = nextDecision(v)
    expect(decision.kind).toBe('wait')
    const reasons =
      decision.kind === 'wait' ? [decision.reason, ...decision.waiting.map((w) => w.reason)] : []
    expect(reasons.join('; ')).toMatch(why)
  })

  it('fails a job that fits nowhere even with every device free, with the numbers', () => {
    const decision = nextDecision(
      view([device('cpu:0', 100)], [job('j', 'g', { requiredBytes: { 'cpu:0': 300 * MiB } })])
    )
    expect(decision).toMatchObject({ kind: 'fail', jobId: 'j', error: { code: 'unavailable' } })
    expect(decision.kind === 'fail' && decision.error.message).toMatch(/300\.0 MiB.*100\.0 MiB/)
  })

  it('serves the client using fewer devices first, whatever the queue order', () => {
    const decision = nextDecision(
      view(
        [busy(device('cpu:0', 100), 'x', 'a'), device('cpu:1', 100)],
        [job('from-a', 'g', { clientId: 'a' }), job('from-b', 'h', { clientId: 'b' })]
      )
    )
    expect(decision).toMatchObject({ kind: 'run', jobId: 'from-b', deviceId: 'cpu:1' })
  })

  it('between clients with equal shares, a running split goes before queued jobs', () => {
    const decision = nextDecision(
      view(
        [device('cpu:0', 100, [resident('g', 40)])],
        [job('queued', 'g')],
        [job('split', 'g', { status: 'running', activeShares: 0 })]
      )
    )
    expect(decision).toMatchObject({ kind: 'run', jobId: 'split' })
  })

  it('never places on a device that is broken, stopped or has no provider', () => {
    const decision = nextDecision(
      view(
        [
          device('cpu:0', 100, [], { status: 'error', idle: false }),
          device('cpu:1', 100, [], { hasProvider: false, idle: false, status: 'error' }),
          device('cpu:2', 100)
        ],
        [job('j', 'g', { requiredBytes: { 'cpu:0': 1, 'cpu:1': 1, 'cpu:2': 1 } })]
      )
    )
    expect(decision).toMatchObject({ kind: 'run', deviceId: 'cpu:2' })
  })
})
