import { describe, expect, it } from 'vitest'
import { AppError, toSerializedError } from '@shared/ipc/errors'
import { exitCodeFor, EXIT } from '../../cli/commands/generate'
import { CheckpointError, checkpointFail } from './errors'

describe('CheckpointError', () => {
  it('is an AppError that crosses boundaries as { code, message, file, field } and exits the CLI with 3', () => {
    let caught: unknown
    try {
      checkpointFail(
        'dtype_unsupported',
        { file: 'model.safetensors', tensor: 'h.0.attn.bias', field: 'dtype' },
        'dtype BOOL is not supported'
      )
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(AppError)
    const err = caught as CheckpointError
    expect(err.message).toBe(
      'model.safetensors (dtype): tensor "h.0.attn.bias": dtype BOOL is not supported'
    )
    expect(toSerializedError(err)).toEqual({
      code: 'bundle_invalid',
      message: err.message,
      file: 'model.safetensors',
      field: 'dtype'
    })
    expect(exitCodeFor(err)).toBe(EXIT.badInput)
    expect(EXIT.badInput).toBe(3)
  })

  it('a cancelled read has the cancelled code', () => {
    const err = new CheckpointError('cancelled', 'x: reading cancelled', { file: 'x' })
    expect(err.code).toBe('cancelled')
    expect(exitCodeFor(err)).toBe(EXIT.interrupted)
  })
})
