import { describe, expect, it } from 'vitest'
import { seedAnalysisOptions, seedGenerateOptions } from './seedSocket'
import { settledSwitches, switchingGroups } from './seedViews'

describe("the predecessor frontend's options", () => {
  it('drops keys the Workbench does not know and nulls, keeps the rest as sent', () => {
    expect(
      seedAnalysisOptions({
        tuned_lens: false,
        move_devices: false,
        last_n_messages: null,
        no_kl: true,
        best_of_k: 4,
        batch_size: 3
      })
    ).toEqual({ no_kl: true, best_of_k: 4, batch_size: 3 })
    expect(seedGenerateOptions({ num_tokens: 5, is_chat: false, exclusive_gpu: true })).toEqual({
      num_tokens: 5,
      is_chat: false
    })
  })

  it('reads its "auto" batch size (floor(256 / K)) as the device budget', () => {
    expect(
      seedAnalysisOptions({
        batch_size: 128,
        optimize_explanations_config: { best_of_k: 2, n_groups_per_rollout: 128 }
      })
    ).toEqual({ optimize_explanations_config: { best_of_k: 2, n_groups_per_rollout: null } })
    expect(seedAnalysisOptions({ batch_size: 32 })).toEqual({})
    expect(seedAnalysisOptions({ batch_size: 31 })).toEqual({ batch_size: 31 })
  })
})

describe('switches a page was told of', () => {
  type Device = Parameters<typeof settledSwitches>[1][number]
  const device = (id: string, placements: [string, string][]): Device =>
    ({ id, placements: placements.map(([groupId, state]) => ({ groupId, state })) }) as Device

  it('reads the switching groups from a model_groups_list', () => {
    expect(
      switchingGroups({
        type: 'model_groups_list',
        groups: [
          { group_id: 'a', device_info: [{ is_switching: false }, { is_switching: true }] },
          { group_id: 'b', device_info: [{ is_switching: false }] }
        ]
      })
    ).toEqual(['a'])
    expect(switchingGroups({ type: 'model_groups_list' })).toEqual([])
  })

  const cases: [string, [string, string][][], ReturnType<typeof settledSwitches>][] = [
    ['still loading: not settled', [[['a', 'loading']], []], { completed: [], gone: [] }],
    [
      'ready on one device, loading on another: not settled',
      [[['a', 'ready']], [['a', 'loading']]],
      { completed: [], gone: [] }
    ],
    [
      'ready: completed, on the device that holds it',
      [[], [['a', 'ready']]],
      { completed: [{ groupId: 'a', device: 'cpu:1' }], gone: [] }
    ],
    ['on no device (unloaded, or its load failed): gone', [[], []], { completed: [], gone: ['a'] }]
  ]
  it.each(cases)('%s', (_name, placements, expected) => {
    const devices = placements.map((p, i) => device(`cpu:${i}`, p))
    expect(settledSwitches(new Set(['a']), devices)).toEqual(expected)
  })
})
