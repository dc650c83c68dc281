import { AnalyzeOptionsSchema, type AnalyzeOptionsInput } from '@shared/domain/analysis'
import { AppError } from '@shared/ipc/errors'
import { positionsInLastMessages } from '../engine/chat/turns'
import type { LoadedGroup } from '../engine/types'

export interface AnalysisPlan {
  positions: number[]
  splittable: boolean
  /** Positions in one engine batch here: a data-parallel share is never smaller. */
  positionsPerBatch: number
}

/**
 * The positions an analysis covers, exactly as the engine chooses them (every token, the
 * `positions` range, then the `lastNMessages` restriction), so that progress counts the rows
 * that will come and a data-parallel split hands out exactly those. An analysis restricted to the
 * last messages runs unsplit. Batches are the engine's own: the request's rows budget, else the
 * group's automatic one for this provider (the bundle's figure or the default), over K.
 */
export function planPositions(
  group: LoadedGroup,
  text: string,
  options: AnalyzeOptionsInput | undefined
): AnalysisPlan {
  const opts = AnalyzeOptionsSchema.parse(options ?? {})
  const ids = group.tokenize(text).ids
  const n = ids.length
  if (n === 0) throw new AppError('invalid_input', 'the text has no tokens', { field: 'text' })
  let positions = Array.from({ length: n }, (_, i) => i)
  if (opts.positions) {
    const { start, end } = opts.positions
    if (start >= n) {
      throw new AppError(
        'invalid_input',
        `positions start ${start} is outside the text's ${n} tokens`,
        { field: 'options.positions.start' }
      )
    }
    positions = positions.slice(start, Math.min(end, n))
  }
  positions = positionsInLastMessages(positions, ids, opts.lastNMessages, group.tokenizer)
  const rows = opts.rowsPerBatch ?? group.autoRowsPerBatch
  return {
    positions,
    splittable: opts.lastNMessages === undefined,
    positionsPerBatch: Math.max(1, Math.floor(rows / opts.bestOfK))
  }
}
