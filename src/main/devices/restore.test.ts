import { describe, expect, it } from 'vitest'
import type { GroupSettings } from '@shared/domain/devices'
import { planRestore, type RestoreDevice } from './restore'
import type { SavedPlacements } from './placementStore'

const devices: RestoreDevice[] = [
  { id: 'cuda:0' },
  { id: 'cuda:1' },
  { id: 'cuda:2', unusable: 'cuda: cannot start' }
]
const groups = new Set(['a', 'b', 'c'])

function saved(
  placements: SavedPlacements['placements'],
  settings: Record<string, Partial<GroupSettings>> = {}
): SavedPlacements {
  const full: Record<string, GroupSettings> = {}
  for (const [id, s] of Object.entries(settings))
    full[id] = { replicas: { min: 0, max: null }, preload: false, ...s }
  return { version: 1, groups: full, placements }
}

describe('planRestore', () => {
  it.each([
    {
      name: 'a pinned placement goes back to its device, pinned',
      s: saved([{ groupId: 'a', deviceId: 'cuda:1', pinned: true }]),
      loads: [{ groupId: 'a', deviceId: 'cuda:1', pinned: true }],
      notes: [] as RegExp[]
    },
    {
      name: 'a preload group with nothing saved is placed by the normal rules',
      s: saved([], { b: { preload: true } }),
      loads: [{ groupId: 'b', deviceId: null, pinned: false }],
      notes: []
    },
    {
      name: 'a preload group with saved placements is not loaded a second time',
      s: saved(
        [
          { groupId: 'b', deviceId: 'cuda:0', pinned: false },
          { groupId: 'b', deviceId: 'cuda:1', pinned: false }
        ],
        { b: { preload: true } }
      ),
      loads: [
        { groupId: 'b', deviceId: 'cuda:0', pinned: false },
        { groupId: 'b', deviceId: 'cuda:1', pinned: false }
      ],
      notes: []
    },
    {
      name: 'a vanished device is reported and its group placed by the rules, its pin kept',
      s: saved([{ groupId: 'a', deviceId: 'cuda:7', pinned: true }]),
      loads: [{ groupId: 'a', deviceId: null, pinned: true }],
      notes: [/cuda:7 is gone: a \(pinned there\) is placed by the normal rules and pinned/]
    },
    {
      name: 'a device that cannot take loads now is treated like a vanished one',
      s: saved([{ groupId: 'c', deviceId: 'cuda:2', pinned: false }]),
      loads: [{ groupId: 'c', deviceId: null, pinned: false }],
      notes: [/cuda:2 cannot take loads \(cuda: cannot start\): c is placed by the normal rules$/]
    },
    {
      name: 'a group no longer in the library is reported and skipped',
      s: saved([{ groupId: 'gone', deviceId: 'cuda:0', pinned: true }], {
        gone: { preload: true }
      }),
      loads: [],
      notes: [/gone is not in the library/]
    },
    {
      name: 'the same placement saved twice is loaded once',
      s: saved([
        { groupId: 'a', deviceId: 'cuda:0', pinned: false },
        { groupId: 'a', deviceId: 'cuda:0', pinned: false }
      ]),
      loads: [{ groupId: 'a', deviceId: 'cuda:0', pinned: false }],
      notes: []
    },
    {
      name: 'two placements on vanished devices become one load by the rules (copies follow)',
      s: saved(
        [
          { groupId: 'a', deviceId: 'cuda:8', pinned: false },
          { groupId: 'a', deviceId: 'cuda:9', pinned: true }
        ],
        { a: { preload: true, replicas: { min: 2, max: null } } }
      ),
      loads: [{ groupId: 'a', deviceId: null, pinned: true }],
      notes: [/cuda:8 is gone/, /cuda:9 is gone/]
    }
  ])('$name', ({ s, loads, notes }) => {
    const plan = planRestore(s, devices, groups)
    expect(plan.loads).toEqual(loads)
    if (s.groups.a?.replicas.min === 2) expect(plan.copies).toEqual([{ groupId: 'a', copies: 2 }])
    expect(plan.notes).toHaveLength(notes.length)
    notes.forEach((re, i) => expect(plan.notes[i]).toMatch(re))
  })

  it('asks for the extra copies replicas.min wants of a preload group', () => {
    const plan = planRestore(
      saved([], { a: { preload: true, replicas: { min: 2, max: null } } }),
      devices,
      groups
    )
    expect(plan.loads).toEqual([{ groupId: 'a', deviceId: null, pinned: false }])
    expect(plan.copies).toEqual([{ groupId: 'a', copies: 2 }])
  })

  it('loads onto saved devices before placing by the rules', () => {
    const plan = planRestore(
      saved([{ groupId: 'a', deviceId: 'cuda:1', pinned: false }], { b: { preload: true } }),
      devices,
      groups
    )
    expect(plan.loads.map((l) => l.deviceId)).toEqual(['cuda:1', null])
  })
})
