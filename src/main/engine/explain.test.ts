import { describe, expect, it } from 'vitest'
import { CPU_ENCODER_RUN_ROWS, encoderRunRows } from './explain'

describe('encoderRunRows', () => {
  it.each([
    [256, 'cpu', CPU_ENCODER_RUN_ROWS],
    [16, 'cpu', 16],
    [CPU_ENCODER_RUN_ROWS, 'cpu', CPU_ENCODER_RUN_ROWS],
    [256, 'cuda', 256],
    [1024, 'webgpu', 1024]
  ] as const)('budget %i on %s → runs of %i rows', (budget, provider, rows) => {
    expect(encoderRunRows(budget, provider)).toBe(rows)
  })
})
