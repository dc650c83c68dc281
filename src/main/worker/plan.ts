import type { AnalyzeOptionsInput } from '@shared/domain/analysis'
import { AppError } from '@shared/ipc/errors'
import type { LoadedGroup } from '../engine/types'

/**
 * The positions an analysis covers, as the engine chooses them (every token after the double-BOS
 * rule, or the `positions` range), so that a data-parallel split hands out exactly those. Options
 * whose positions depend on more than the token count (`lastNMessages`) are run unsplit.
 */
export function planPositions(
  group: LoadedGroup,
  text: string,
  options: AnalyzeOptionsInput | undefined
): { positions: number[]; splittable: boolean } {
  const n = group.tokenize(text).ids.length
  if (n === 0) throw new AppError('invalid_input', 'the text has no tokens', { field: 'text' })
  let positions = Array.from({ length: n }, (_, i) => i)
  if (options?.positions) {
    const { start, end } = options.positions
    if (start >= n) {
      throw new AppError(
        'invalid_input',
        `positions start ${start} is outside the text's ${n} tokens`,
        { field: 'options.positions.start' }
      )
    }
    positions = positions.slice(start, Math.min(end, n))
  }
  return { positions, splittable: options?.lastNMessages === undefined }
}
