import { describe, expect, it } from 'vitest'
import { CheckpointError, checkpointFail } from '../../main/import/errors'
import { EXIT, exitCodeFor } from './generate'

describe('CLI exit codes for checkpoint errors', () => {
  it('a bad checkpoint exits with 3 (bad input data)', () => {
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
    expect(exitCodeFor(caught)).toBe(EXIT.badInput)
    expect(EXIT.badInput).toBe(3)
  })

  it('a cancelled read exits as interrupted', () => {
    const err = new CheckpointError('cancelled', 'x: reading cancelled', { file: 'x' })
    expect(exitCodeFor(err)).toBe(EXIT.interrupted)
  })
})
