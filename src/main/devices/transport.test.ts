import { mkdtemp, mkdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveWorkerEntry, workerEnv } from './transport'

describe('worker entry resolution', () => {
  it('uses the built worker.js beside the bundle or its chunks folder', async () => {
    const out = await mkdtemp(join(tmpdir(), 'out-main-'))
    await mkdir(join(out, 'chunks'))
    await writeFile(join(out, 'worker.js'), '')
    expect(resolveWorkerEntry(out, {})).toMatchObject({
      modulePath: join(out, 'worker.js'),
      execArgv: [],
      fromSource: false
    })
    expect(resolveWorkerEntry(join(out, 'chunks'), {}).modulePath).toBe(join(out, 'worker.js'))
  })

  it('runs the TypeScript source through tsx with the node tsconfig from a checkout', () => {
    const entry = resolveWorkerEntry(__dirname, {})
    expect(entry.fromSource).toBe(true)
    expect(entry.modulePath).toBe(resolve(__dirname, '../worker/index.ts'))
    expect(entry.execArgv).toEqual(['--import', 'tsx'])
    expect(entry.env.TSX_TSCONFIG_PATH).toBe(resolve(__dirname, '../../../tsconfig.node.json'))
  })

  it('honours TALKATIVE_WORKER_ENTRY', () => {
    expect(
      resolveWorkerEntry(__dirname, { TALKATIVE_WORKER_ENTRY: '/opt/w/worker.js' }).modulePath
    ).toBe('/opt/w/worker.js')
  })
})

describe('worker environment', () => {
  it.each([
    ['nothing set', undefined, 'glibc.malloc.hugetlb=1'],
    [
      'the user’s own tunables, after ours so they win',
      'glibc.malloc.hugetlb=0',
      'glibc.malloc.hugetlb=1:glibc.malloc.hugetlb=0'
    ],
    [
      'an unrelated tunable kept',
      'glibc.pthread.rseq=0',
      'glibc.malloc.hugetlb=1:glibc.pthread.rseq=0'
    ]
  ])('%s', (_what, own, expected) => {
    const env = workerEnv(own === undefined ? {} : { GLIBC_TUNABLES: own })
    expect(env.GLIBC_TUNABLES).toBe(expected)
    expect(env.MALLOC_MMAP_THRESHOLD_).toBe('131072')
  })
})
