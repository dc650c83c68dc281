/**
 * The one error type the checkpoint reader throws. Every refusal names the file and, where there
 * is one, the zip entry, pickle position, checkpoint key or config field (docs/lens-checkpoints.md
 * lists them).
 */
import { AppError } from '@shared/ipc/errors'

/**
 * Why a checkpoint was refused:
 * - `unreadable`: not a complete zip / pickle (truncated, corrupt, not a file);
 * - `unsafe`: the pickle would run code or reach outside the data if Python loaded it;
 * - `unsupported`: well-formed, but holds something the Workbench cannot reproduce;
 * - `invalid`: well-formed, but inconsistent (shapes, missing keys, NaN);
 * - `too_large`: over one of the reader's limits;
 * - `cancelled`: the caller's signal aborted the read.
 */
export type CheckpointRefusal =
  'unreadable' | 'unsafe' | 'unsupported' | 'invalid' | 'too_large' | 'cancelled'

export class CheckpointError extends AppError {
  readonly reason: CheckpointRefusal

  constructor(reason: CheckpointRefusal, file: string, where: string | undefined, message: string) {
    super(
      reason === 'cancelled' ? 'cancelled' : 'invalid_input',
      `${file}${where ? `: ${where}` : ''}: ${message}`,
      { file, field: where }
    )
    this.name = 'CheckpointError'
    this.reason = reason
  }
}

/** Throws `cancelled` when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, file: string): void {
  if (signal?.aborted) throw new CheckpointError('cancelled', file, undefined, 'reading cancelled')
}
