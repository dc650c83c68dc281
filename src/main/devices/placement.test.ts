import { describe, expect, it } from 'vitest'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import { AppError } from '@shared/ipc/errors'
import {
  assessFit,
  chooseDevice,
  opensAnalysisRolesFirst,
  type PlacementDevice,
  type ResidentGroup
} from './placement'

const MiB = 1024 ** 2

function group(groupId: string, mib: number, extra: Partial<ResidentGroup> = {}): ResidentGroup {
  return { groupId, bytes: mib * MiB, pinned: false, lastUsedAt: 0, inUse: false, ...extra }
}

function device(
  id: string,
  budgetMiB: number,
  residents: ResidentGroup[] = [],
  extra: Partial<PlacementDevice> = {}
): PlacementDevice {
  return { id, budgetBytes: budgetMiB * MiB, usable: true, busy: false, residents, ...extra }
}

describe('opensAnalysisRolesFirst', () => {
  it.each([
    ['analyze', true],
    ['sweep', true],
    ['load', false],
    ['generate', false],
    ['generate-analyze', false],
    ['intervene', false]
  ] as const)('a load for %s: %s', (kind, expected) => {
    expect(opensAnalysisRolesFirst({ kind })).toBe(expected)
    const options = AnalyzeOptionsSchema.parse({ bestOfK: 16, salience: false })
    expect(opensAnalysisRolesFirst({ kind, options })).toBe(expected)
  })

  // The optimiser's partial regenerates need the whole graph's step loop (its rows are not in
  // runs of K): a load for such a job opens the whole graph rather than switching at once.
  it.each([
    ['analyze', false],
    ['sweep', false],
    ['generate', false]
  ] as const)('a load for %s with the optimiser: %s', (kind, expected) => {
    const options = AnalyzeOptionsSchema.parse({ optimise: { samplesPerIteration: 4 } })
    expect(opensAnalysisRolesFirst({ kind, options })).toBe(expected)
  })
})

describe('assessFit', () => {
  it.each([
    {
      name: 'fits in free memory',
      dev: device('cpu:0', 100, [group('a', 30)]),
      need: 50,
      verdict: 'fits',
      evict: [] as string[]
    },
    {
      name: 'already loaded',
      dev: device('cpu:0', 100, [group('new', 30)]),
      need: 30,
      verdict: 'loaded',
      evict: []
    },
    {
      name: 'evicts the least recently used first',
      dev: device('cpu:0', 100, [
        group('old', 40, { lastUsedAt: 1 }),
        group('recent', 40, { lastUsedAt: 9 })
      ]),
      need: 50,
      verdict: 'fits_after_evicting',
      evict: ['old']
    },
    {
      name: 'evicts as many as needed, oldest first',
      dev: device('cpu:0', 100, [
        group('b', 30, { lastUsedAt: 2 }),
        group('a', 30, { lastUsedAt: 1 }),
        group('c', 30, { lastUsedAt: 3 })
      ]),
      need: 70,
      verdict: 'fits_after_evicting',
      evict: ['a', 'b']
    },
    {
      name: 'never evicts a pinned group, even the oldest',
      dev: device('cpu:0', 100, [
        group('pinned', 40, { lastUsedAt: 0, pinned: true }),
        group('other', 40, { lastUsedAt: 5 })
      ]),
      need: 50,
      verdict: 'fits_after_evicting',
      evict: ['other']
    },
    {
      name: 'never evicts a group a running job uses',
      dev: device('cpu:0', 100, [
        group('busy', 40, { lastUsedAt: 0, inUse: true }),
        group('idle', 40, { lastUsedAt: 5 })
      ]),
      need: 50,
      verdict: 'fits_after_evicting',
      evict: ['idle']
    },
    {
      name: 'does not fit when pinned groups hold the memory',
      dev: device('cpu:0', 100, [group('pinned', 70, { pinned: true })]),
      need: 50,
      verdict: 'does_not_fit',
      evict: []
    },
    {
      name: 'does not fit: larger than the whole budget',
      dev: device('cpu:0', 100),
      need: 150,
      verdict: 'does_not_fit',
      evict: []
    },
    {
      name: 'a redundant replica goes before an older sole copy',
      dev: device('cpu:0', 100, [
        group('sole', 40, { lastUsedAt: 1 }),
        group('replica', 40, { lastUsedAt: 9, redundant: true })
      ]),
      need: 50,
      verdict: 'fits_after_evicting',
      evict: ['replica']
    },
    {
      name: 'among redundant replicas, the least recently used first',
      dev: device('cpu:0', 100, [
        group('r2', 30, { lastUsedAt: 5, redundant: true }),
        group('r1', 30, { lastUsedAt: 2, redundant: true }),
        group('sole', 30, { lastUsedAt: 0 })
      ]),
      need: 30,
      verdict: 'fits_after_evicting',
      evict: ['r1']
    },
    {
      name: 'never evicts a copy that replicas.min keeps',
      dev: device('cpu:0', 100, [
        group('kept', 40, { lastUsedAt: 0, keptForMin: true }),
        group('other', 40, { lastUsedAt: 5 })
      ]),
      need: 50,
      verdict: 'fits_after_evicting',
      evict: ['other']
    },
    {
      name: 'does not fit when copies replicas.min keeps hold the memory',
      dev: device('cpu:0', 100, [group('kept', 70, { keptForMin: true })]),
      need: 50,
      verdict: 'does_not_fit',
      evict: []
    },
    {
      name: 'exactly the free memory fits',
      dev: device('cpu:0', 100, [group('a', 40)]),
      need: 60,
      verdict: 'fits',
      evict: []
    }
  ])('$name', ({ dev, need, verdict, evict }) => {
    const fit = assessFit(dev, 'new', need * MiB)
    expect(fit.verdict).toBe(verdict)
    expect(fit.evictions.map((e) => e.groupId)).toEqual(evict)
    expect(fit.deviceId).toBe(dev.id)
  })

  it('explains a refusal with the device and the numbers', () => {
    const fit = assessFit(
      device('cuda:1', 100, [group('keep', 70, { pinned: true })]),
      'big',
      50 * MiB
    )
    expect(fit.reason).toContain('cuda:1')
    expect(fit.reason).toContain('50.0 MiB')
    expect(fit.reason).toContain('100.0 MiB')
    expect(fit.reason).toContain('pinned keep (70.0 MiB)')
  })
})

describe('chooseDevice', () => {
  const need = (mib: number) => () => mib * MiB

  it.each([
    {
      name: 'affinity: a device already holding the group wins over an emptier one',
      devices: [device('cpu:0', 100), device('cpu:1', 100, [group('g', 50)])],
      want: 'cpu:1'
    },
    {
      name: 'where it fits as is, least loaded first',
      devices: [
        device('cpu:0', 100, [group('a', 60)]),
        device('cpu:1', 100, [group('b', 20)]),
        device('cpu:2', 100, [group('c', 40)])
      ],
      want: 'cpu:1'
    },
    {
      name: 'fitting without eviction beats a less loaded device that would have to evict',
      devices: [device('cpu:0', 100, [group('a', 30)]), device('cpu:1', 35, [group('b', 10)])],
      want: 'cpu:0'
    },
    {
      name: 'evicts only when nothing fits as is (least loaded of those)',
      devices: [device('cpu:0', 100, [group('a', 90)]), device('cpu:1', 100, [group('b', 80)])],
      want: 'cpu:1'
    },
    {
      name: 'works around pinned groups',
      devices: [
        device('cpu:0', 100, [group('p', 90, { pinned: true })]),
        device('cpu:1', 100, [group('b', 95)])
      ],
      want: 'cpu:1'
    },
    {
      name: 'skips unusable devices',
      devices: [device('cuda:0', 1000, [], { usable: false }), device('cpu', 100)],
      want: 'cpu'
    }
  ])('$name', ({ devices, want }) => {
    expect(chooseDevice(devices, 'g', need(30)).deviceId).toBe(want)
  })

  it('honours a requested device, or refuses it with the reason', () => {
    const devices = [device('cpu:0', 100), device('cpu:1', 100, [group('p', 90, { pinned: true })])]
    expect(chooseDevice(devices, 'g', need(30), 'cpu:0').deviceId).toBe('cpu:0')
    expect(() => chooseDevice(devices, 'g', need(30), 'cpu:1')).toThrowError(
      /does not fit: g needs 30.0 MiB on cpu:1/
    )
    expect(() => chooseDevice(devices, 'g', need(30), 'cuda:7')).toThrowError(AppError)
  })

  it('nothing fits anywhere: one error naming every device and its numbers', () => {
    const devices = [device('cpu:0', 100, [group('p', 80, { pinned: true })]), device('cpu:1', 20)]
    let err: AppError | undefined
    try {
      chooseDevice(devices, 'g', need(50))
    } catch (e) {
      err = e as AppError
    }
    expect(err?.code).toBe('unavailable')
    expect(err?.message).toMatch(/g fits on no device/)
    expect(err?.message).toMatch(/cpu:0 but only 20.0 MiB of its 100.0 MiB budget can be freed/)
    expect(err?.message).toMatch(/cpu:1, more than its whole budget of 20.0 MiB/)
  })
})
