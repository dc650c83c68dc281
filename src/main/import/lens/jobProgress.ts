/**
 * A lens import's progress in the shape every import job reports (`ImportProgress`): checkpoint
 * bytes while reading (with the rate and time left), donor weights as tensors, and the step in
 * words as the stage.
 */
import type { ImportProgress } from '@shared/domain/imports'
import { rateAndEta } from '../progress'
import type { ImportLensProgress } from './importLens'

/** Returns a converter that remembers when reading started (for the rate). */
export function lensProgressReporter(
  report: (p: ImportProgress) => void,
  now: () => number = Date.now
): (p: ImportLensProgress) => void {
  let readStarted: number | null = null
  let bytesTotal = 0
  let bytesDone = 0
  return (p) => {
    let tensorsDone = 0
    let tensorsTotal = 0
    let rate: ReturnType<typeof rateAndEta> = { mbPerSecond: null, etaSeconds: null }
    if (p.stage === 'read') {
      readStarted ??= now()
      bytesDone = p.done ?? bytesDone
      bytesTotal = p.total ?? bytesTotal
      rate = rateAndEta(bytesDone, bytesTotal, now() - readStarted)
    } else if (p.stage === 'donor') {
      tensorsDone = p.done ?? 0
      tensorsTotal = p.total ?? 0
    }
    report({
      stage: p.message,
      tensorsDone,
      tensorsTotal,
      bytesDone,
      bytesTotal,
      ...rate
    })
  }
}
