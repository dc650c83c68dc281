import { describe, expect, it } from 'vitest'
import { gpuProcessBytes, parseComputeApps } from './gpuMemory'

// Recorded from `nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits`.
const RECORDED = `4012, GPU-9f1e2c3a-1111-2222-3333-444455556666, 1536
4013, GPU-0a0b0c0d-7777-8888-9999-aaaabbbbcccc, 20480
4012, GPU-0a0b0c0d-7777-8888-9999-aaaabbbbcccc, [N/A]
`

describe('nvidia-smi compute apps', () => {
  it('parses per-process memory and skips unreadable cells', () => {
    expect(parseComputeApps(RECORDED)).toEqual([
      {
        pid: 4012,
        gpuUuid: 'GPU-9f1e2c3a-1111-2222-3333-444455556666',
        usedBytes: 1536 * 1024 ** 2
      },
      {
        pid: 4013,
        gpuUuid: 'GPU-0a0b0c0d-7777-8888-9999-aaaabbbbcccc',
        usedBytes: 20480 * 1024 ** 2
      }
    ])
  })

  it('answers for one worker on one GPU; 0 when it holds nothing; null when nvidia-smi fails', async () => {
    const ok = async () => ({ stdout: RECORDED, stderr: '', exitCode: 0 })
    expect(await gpuProcessBytes(ok, 4012, 'GPU-9f1e2c3a-1111-2222-3333-444455556666')).toBe(
      1536 * 1024 ** 2
    )
    expect(await gpuProcessBytes(ok, 999, 'GPU-9f1e2c3a-1111-2222-3333-444455556666')).toBe(0)
    const missing = async () => ({ stdout: '', stderr: '', exitCode: null, spawnError: 'ENOENT' })
    expect(await gpuProcessBytes(missing, 4012, 'x')).toBeNull()
  })
})
