import { describe, expect, it } from 'vitest'
import { AppError, toSerializedError } from '@shared/ipc/errors'
import { CheckpointError, checkpointFail } from './errors'

describe('CheckpointError', () => {
  it('is an AppError that crosses boundaries as { code, message, file, field }', () => {
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
  })

  it('a cancelled read has the cancelled code', () => {
    const err = new CheckpointError('cancelled', 'x: reading cancelled', { file: 'x' })
    expect(err.code).toBe('cancelled')
  })
})
