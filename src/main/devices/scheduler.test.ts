import { describe, expect, it } from 'vitest'
import {
  nextDecision,
  planFirst,
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
    kind: id.startsWith('cuda') ? 'gpu' : 'cpu',
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
  continuing: SchedulerJob[] = [],
  replicas: SchedulerView['replicas'] = {}
): SchedulerView {
  return { devices, queued, continuing, replicas }
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
      name: 'every holder is busy: a replica is loaded on an idle device of the same kind',
      v: view(
        [busy(device('cpu:0', 100, [resident('g', 40)]), 'g'), device('cpu:1', 100)],
        [job('j', 'g')]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: [], replica: true }
    },
    {
      name: 'a replica goes where it fits as is before where it must evict',
      v: view(
        [
          busy(device('cuda:0', 100, [resident('g', 40)]), 'g'),
          device('cuda:1', 100, [resident('x', 80)]),
          device('cuda:2', 100, [resident('y', 20)])
        ],
        [job('j', 'g', { requiredBytes: { 'cuda:1': 40 * MiB, 'cuda:2': 40 * MiB } })]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cuda:2', evictions: [], replica: true }
    },
    {
      name: 'a replica evicts an idle, unpinned group when it must',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40)]), 'g'),
          device('cpu:1', 100, [resident('x', 80, { lastUsedAt: 3 })])
        ],
        [job('j', 'g')]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: ['x'], replica: true }
    },
    {
      name: 'a replica evicts a redundant copy of another group before an older sole copy',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40), resident('r', 30)]), 'g'),
          device('cpu:1', 100, [
            resident('sole', 35, { lastUsedAt: 1 }),
            resident('r', 35, { lastUsedAt: 9 })
          ])
        ],
        [job('j', 'g')]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: ['r'], replica: true }
    },
    {
      name: 'below replicas.max, the third device gets a third copy',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40)]), 'g'),
          busy(device('cpu:1', 100, [resident('g', 40)]), 'g'),
          device('cpu:2', 100)
        ],
        [job('j', 'g', { requiredBytes: { 'cpu:2': 40 * MiB } })],
        [],
        { g: { min: 0, max: 3 } }
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:2', evictions: [], replica: true }
    },
    {
      name: 'an idle holder is used before any replica is loaded',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40)]), 'g'),
          device('cpu:1', 100),
          device('cpu:2', 100, [resident('g', 40)])
        ],
        [job('j', 'g', { requiredBytes: { 'cpu:1': 40 * MiB, 'cpu:2': 40 * MiB } })]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:2', evictions: [] }
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
      name: 'the group is held by a busy device and replicas.max is 1: no second copy',
      v: view(
        [busy(device('cpu:0', 100, [resident('g', 40)]), 'g'), device('cpu:1', 100)],
        [job('j', 'g')],
        [],
        { g: { min: 0, max: 1 } }
      ),
      why: /held by a busy device \(replicas\.max 1 reached\)/
    },
    {
      name: 'replicas.max counts a copy still loading',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40)]), 'g'),
          busy(device('cpu:1', 100, [resident('g', 40, { state: 'loading' })]), 'g'),
          device('cpu:2', 100)
        ],
        [job('j', 'g', { requiredBytes: { 'cpu:2': 40 * MiB } })],
        [],
        { g: { min: 0, max: 2 } }
      ),
      why: /replicas\.max 2 reached/
    },
    {
      name: 'no replica on a device of another kind (a CPU copy of a GPU group)',
      v: view(
        [busy(device('cuda:0', 100, [resident('g', 40)]), 'g'), device('cpu', 100)],
        [job('j', 'g', { requiredBytes: { 'cuda:0': 40 * MiB, cpu: 40 * MiB } })]
      ),
      why: /held by a busy device$/
    },
    {
      name: 'no replica where it does not fit, even after evicting what may go',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40)]), 'g'),
          device('cpu:1', 100, [resident('p', 80, { pinned: true })])
        ],
        [job('j', 'g')]
      ),
      why: /no idle device has room for a replica/
    },
    {
      name: 'no replica where the only thing to evict is a copy replicas.min keeps',
      v: view(
        [
          busy(device('cpu:0', 100, [resident('g', 40)]), 'g'),
          device('cpu:1', 100, [resident('k', 80)])
        ],
        [job('j', 'g')],
        [],
        { k: { min: 1, max: null } }
      ),
      why: /no idle device has room for a replica/
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

/** A device running an analysis of `groupId` with nothing held ahead: it may take one more. */
function open(d: SchedulerDevice, groupId: string, clientId = 'a'): SchedulerDevice {
  return { ...busy(d, groupId, clientId), canTakeNext: true }
}

describe('nextDecision: one job ahead', () => {
  const g40 = (): SchedulerPlacement[] => [resident('g', 40)]
  it.each([
    {
      name: 'a busy holder running the group takes the head of the queue ahead',
      v: view([open(device('cpu:0', 100, g40()), 'g')], [job('j', 'g'), job('k', 'g')]),
      want: { kind: 'next', jobId: 'j', deviceId: 'cpu:0' }
    },
    {
      name: 'an idle holder goes first',
      v: view(
        [open(device('cpu:0', 100, g40()), 'g'), device('cpu:1', 100, g40())],
        [job('j', 'g')]
      ),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: [] }
    },
    {
      name: 'a replica is still loaded on an idle device: a holder that can take one more is busy',
      v: view([open(device('cpu:0', 100, g40()), 'g'), device('cpu:1', 100)], [job('j', 'g')]),
      want: { kind: 'run', jobId: 'j', deviceId: 'cpu:1', evictions: [], replica: true }
    },
    {
      name: 'when replicas.max stops a replica, the busy holder takes it ahead',
      v: view([open(device('cpu:0', 100, g40()), 'g'), device('cpu:1', 100)], [job('j', 'g')], [], {
        g: { min: 0, max: 1 }
      }),
      want: { kind: 'next', jobId: 'j', deviceId: 'cpu:0' }
    },
    {
      name: 'of two holders, the one that can still take one more',
      v: view(
        [
          { ...busy(device('cpu:0', 100, g40()), 'g', 'a'), nextClientId: 'a' },
          open(device('cpu:1', 100, g40()), 'g')
        ],
        [job('j', 'g')]
      ),
      want: { kind: 'next', jobId: 'j', deviceId: 'cpu:1' }
    }
  ])('$name', ({ v, want }) => {
    expect(nextDecision(v)).toEqual(want)
  })

  it.each([
    {
      name: 'the holder already holds one ahead',
      v: view([busy(device('cpu:0', 100, g40()), 'g', 'a')], [job('j', 'g')])
    },
    {
      name: 'the head of the queue is of another group',
      v: view(
        [open(device('cpu:0', 100, [...g40(), resident('h', 40)]), 'g')],
        [job('other', 'h'), job('j', 'g')]
      )
    },
    {
      name: 'another client with fewer devices heads the fair order with another group',
      v: view(
        [open(device('cpu:0', 100, g40()), 'g', 'a')],
        [job('j', 'g', { clientId: 'a' }), job('b', 'h', { clientId: 'b' })]
      )
    },
    {
      name: 'a running analysis still has positions to share',
      v: view(
        [open(device('cpu:0', 100, g40()), 'g')],
        [job('j', 'g')],
        [job('split', 'g', { status: 'running', activeShares: 1 })]
      )
    },
    {
      name: 'the job asks for a device',
      v: view(
        [open(device('cpu:0', 100, g40()), 'g')],
        [job('j', 'g', { requestedDeviceId: 'cpu:0' })]
      )
    },
    {
      name: 'the job is no analysis',
      v: view([open(device('cpu:0', 100, g40()), 'g')], [job('j', 'g', { kind: 'generate' })])
    },
    {
      name: 'the device runs another group',
      v: view([open(device('cpu:0', 100, [...g40(), resident('h', 40)]), 'h')], [job('j', 'g')])
    }
  ])('waits: $name', ({ v }) => {
    expect(nextDecision(v).kind).toBe('wait')
  })

  it('counts a job held ahead as one more device of its client', () => {
    // Client a runs on cpu:0 and holds one ahead there; b runs on cpu:1: b's job goes first.
    const decision = nextDecision(
      view(
        [
          { ...busy(device('cpu:0', 100, g40()), 'g', 'a'), nextClientId: 'a' },
          open(device('cpu:1', 100, g40()), 'g', 'b')
        ],
        [job('from-a', 'g', { clientId: 'a' }), job('from-b', 'g', { clientId: 'b' })]
      )
    )
    expect(decision).toEqual({ kind: 'next', jobId: 'from-b', deviceId: 'cpu:1' })
  })
})

describe('planFirst', () => {
  const cases: [string, Parameters<typeof planFirst>[0], boolean][] = [
    [
      'a lone job with an idle second holder: planned, to split',
      { otherHolders: 1, queuedForGroup: 0 },
      true
    ],
    [
      'a lone job on its only holder: planned, its total known up front',
      { otherHolders: 0, queuedForGroup: 0 },
      true
    ],
    ['a burst on one holder: whole jobs, no plan', { otherHolders: 0, queuedForGroup: 5 }, false],
    ['a burst over two holders: whole jobs on both', { otherHolders: 1, queuedForGroup: 5 }, false],
    [
      'as many queued jobs as other holders: none left idle',
      { otherHolders: 2, queuedForGroup: 2 },
      false
    ],
    [
      'fewer queued jobs than other holders: one would idle',
      { otherHolders: 3, queuedForGroup: 2 },
      true
    ]
  ]
  it.each(cases)('%s', (_name, facts, expected) => {
    expect(planFirst(facts)).toBe(expected)
  })
})
