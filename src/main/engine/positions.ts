/**
 * Which token positions an analysis covers and how many go in one engine batch: the one rule,
 * used by the analysis itself and by the device worker's plan for a data-parallel split. A split
 * gives the same rows as a single run only while both see exactly these positions and batches.
 */
import {
  AnalyzeOptionsSchema,
  type AnalyzeOptions,
  type AnalyzeOptionsInput
} from '@shared/domain/analysis'
import { AppError } from '@shared/ipc/errors'
import type { ExecutionProvider } from '@shared/domain/system'
import { positionsInLastMessages } from './chat/turns'
import type { LoadedGroup, TurnTokenizer } from './types'

/** Default decoder rows (positions × K) per batch by device kind. */
export const DEFAULT_ROWS_PER_BATCH = { cpu: 256, gpu: 1024 } as const

/** A bundle's own rows-per-batch figures (`manifest.rowsPerBatch`), when it has them. */
export interface RowsPerBatchFigures {
  cpu?: number
  gpu?: number
}

/** Rows per engine batch when a request names none: the bundle's figure for this provider, else the default. */
export function autoRowsPerBatch(
  figures: RowsPerBatchFigures | undefined,
  provider: ExecutionProvider
): number {
  const kind = provider === 'cpu' ? 'cpu' : 'gpu'
  return figures?.[kind] ?? DEFAULT_ROWS_PER_BATCH[kind]
}

/** Decoder rows per position in one batch: the optimiser's samples per iteration, else K. */
export function rolloutsPerPosition(opts: Pick<AnalyzeOptions, 'bestOfK' | 'optimise'>): number {
  return opts.optimise ? opts.optimise.samplesPerIteration : opts.bestOfK
}

/** Positions in one batch: the rows budget over best-of-K, at least one. */
export function positionsPerBatch(rowsBudget: number, bestOfK: number): number {
  return Math.max(1, Math.floor(rowsBudget / bestOfK))
}

/** What narrows the positions of an analysis. */
export interface PositionRequest {
  /** Explicit positions (a data-parallel share): checked, deduplicated and sorted. */
  positionList?: number[]
  /** A range `[start, end)` of the text's tokens (`end` is cut to the text). */
  positions?: AnalyzeOptions['positions']
  /** Keep only the last n chat messages' positions. */
  lastNMessages?: number
}

/**
 * The positions of `ids` an analysis covers, in order: the explicit list, else the range, else every
 * token; then the `lastNMessages` restriction. A position outside the text is the caller's error,
 * naming the field.
 */
export function planPositions(
  ids: readonly number[],
  req: PositionRequest,
  tokenizer: TurnTokenizer
): number[] {
  const n = ids.length
  let positions: number[]
  if (req.positionList) {
    for (const [i, p] of req.positionList.entries()) {
      if (!Number.isInteger(p) || p < 0 || p >= n) {
        throw new AppError('invalid_input', `position ${p} is outside the text's ${n} tokens`, {
          field: `positionList.${i}`
        })
      }
    }
    positions = [...new Set(req.positionList)].sort((a, b) => a - b)
  } else if (req.positions) {
    const { start, end } = req.positions
    if (start >= n) {
      throw new AppError(
        'invalid_input',
        `positions start ${start} is outside the text's ${n} tokens`,
        { field: 'options.positions.start' }
      )
    }
    positions = Array.from({ length: Math.min(end, n) - start }, (_, i) => start + i)
  } else {
    positions = Array.from({ length: n }, (_, i) => i)
  }
  return positionsInLastMessages(positions, ids, req.lastNMessages, tokenizer)
}

export interface AnalysisPlan {
  positions: number[]
  /** False when the analysis must run whole on one device (restricted to the last messages). */
  splittable: boolean
  /** Positions in one engine batch here: a data-parallel share is never smaller. */
  positionsPerBatch: number
}

/**
 * The positions an analysis of `text` covers and its batch size, exactly as the analysis will
 * choose them, so that progress counts the rows that will come and a data-parallel split hands out
 * exactly those. An analysis restricted to the last messages runs unsplit.
 */
export function planAnalysis(
  group: Pick<LoadedGroup, 'tokenize' | 'tokenizer' | 'autoRowsPerBatch'>,
  text: string,
  options: AnalyzeOptionsInput | undefined
): AnalysisPlan {
  const opts = AnalyzeOptionsSchema.parse(options ?? {})
  const ids = group.tokenize(text).ids
  if (ids.length === 0)
    throw new AppError('invalid_input', 'the text has no tokens', { field: 'text' })
  const positions = planPositions(
    ids,
    { positions: opts.positions, lastNMessages: opts.lastNMessages },
    group.tokenizer
  )
  return {
    positions,
    splittable: opts.lastNMessages === undefined,
    positionsPerBatch: positionsPerBatch(
      opts.rowsPerBatch ?? group.autoRowsPerBatch,
      rolloutsPerPosition(opts)
    )
  }
}
