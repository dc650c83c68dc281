import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { childProcessSpawner, resolveWorkerEntry, WORKER_EXEC_ARGV, workerEnv } from './transport'

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

describe('worker process flags', () => {
  // A stand-in entry: it churns short-lived objects (which grows V8's young generation to its
  // maximum) and reports its Node flags and the young generation's size.
  const probe = `
    const v8 = require('node:v8')
    let kept = []
    for (let i = 0; i < 1e6; i++) {
      kept.push({ i, row: [i] })
      if (kept.length > 50000) kept = []
    }
    const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
    process.send({ execArgv: process.execArgv, youngBytes: young.space_size, kept: kept.length })
  `

  it('runs a worker with the entry’s flags, then its own: a small young generation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'worker-flags-'))
    const modulePath = join(dir, 'probe.js')
    await writeFile(modulePath, probe)
    const spawn = childProcessSpawner({
      modulePath,
      execArgv: ['--no-deprecation'],
      env: {},
      fromSource: false
    })
    const worker = spawn({ deviceId: 'cpu:flags' })
    const report = await new Promise<{ execArgv: string[]; youngBytes: number }>(
      (resolve, reject) => {
        worker.onMessage((m) => resolve(m as { execArgv: string[]; youngBytes: number }))
        worker.onExit((e) => reject(new Error(`probe exited first: ${JSON.stringify(e)}`)))
      }
    )
    worker.kill()
    await rm(dir, { recursive: true, force: true })
    expect(report.execArgv).toEqual(['--no-deprecation', ...WORKER_EXEC_ARGV])
    // Two 1 MB semispaces; V8's default lets them grow to 16 MB each under this churn.
    expect(report.youngBytes).toBeLessThanOrEqual(2 * 2 ** 20)
  }, 30_000)
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
