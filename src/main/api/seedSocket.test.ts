import { describe, expect, it } from 'vitest'
import { seedAnalysisOptions, seedGenerateOptions } from './seedSocket'

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
