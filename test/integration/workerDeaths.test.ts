/**
 * Worker deaths must never take the host down: both workers killed a few milliseconds apart
 * (in-process services, mid-analysis), and both killed while the host process itself is stopped
 * (a separate headless host, SIGSTOP … SIGKILL both workers … SIGCONT), after which the host must
 * still answer and bring its devices back.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import { ensureDemoBundle } from '../../src/main/engine'
import { finished, ok, startWorkbench, type TestWorkbench } from '../helpers/workbench'

const MiB = 1024 ** 2
const GROUP = 'demo-words'
const ROOT = resolve(__dirname, '../..')
const TEXT = 'A small bird sang in the garden. My sister read a book in the library. '.repeat(3)

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('both workers killed in quick succession', () => {
  let bench: TestWorkbench
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => void uncaught.push(err)

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onUncaught)
    bench = await startWorkbench(
      ['cpu:0', 'cpu:1'].map((id) => ({ id, threads: 1, budgetBytes: 1024 * MiB })),
      { devicesOptions: { heartbeatMs: 100, graceMs: 10_000 } }
    )
  })
  afterAll(async () => {
    await bench?.close()
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
  })

  it('every job ends with a result or a reason, the devices come back, nothing escapes', async () => {
    const client = bench.client('deaths')
    const state = (): Promise<DevicesSnapshot> => ok(client.invoke('devices:state'))
    for (const deviceId of ['cpu:0', 'cpu:1'])
      await ok(client.invoke('models:load', { groupId: GROUP, deviceId }))
    await until('both devices hold the group', async () =>
      (await state()).devices.every((d) =>
        d.placements.some((p) => p.groupId === GROUP && p.state === 'ready')
      )
    )
    // Gaps between the two kills: the same tick, a few ms, about the 29 ms the field report saw.
    for (const gapMs of [0, 5, 29]) {
      const { jobId } = await ok(
        client.invoke('jobs:submit', {
          kind: 'analyze',
          groupId: GROUP,
          text: TEXT,
          options: { bestOfK: 2, salience: false, rowsPerBatch: 2 }
        })
      )
      await until('the job to run on both devices', async () => {
        const job = await ok(client.invoke('jobs:get', { jobId }))
        return job.status === 'running' && (job.progress?.rowsDone ?? 0) > 0
      })
      const pids = (await state()).devices.map((d) => d.workerPid!)
      process.kill(pids[0]!, 'SIGKILL')
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs))
      process.kill(pids[1]!, 'SIGKILL')
      const end = await finished(client, jobId, 120_000)
      expect(['done', 'failed']).toContain(end.status)
      if (end.status === 'failed') expect(end.error?.message).toMatch(/worker|crash|exit/i)
      await until('both devices ready again with new workers', async () =>
        (await state()).devices.every(
          (d) => d.status === 'ready' && d.workerPid !== null && !pids.includes(d.workerPid)
        )
      )
    }
    // Still serving: a fresh job completes on the recovered devices.
    const { jobId } = await ok(
      client.invoke('jobs:submit', {
        kind: 'analyze',
        groupId: GROUP,
        text: 'The cat sat.',
        options: { bestOfK: 1, salience: false }
      })
    )
    expect((await finished(client, jobId, 120_000)).status).toBe('done')
    expect(uncaught).toEqual([])
  })
})

/** A tiny /ipc client for a host running in another process. */
async function connectIpc(url: string): Promise<{
  invoke<T>(channel: string, payload?: unknown): Promise<T>
  close(): void
}> {
  const parsed = new URL(url)
  const ws = new WebSocket(`ws://${parsed.host}/ipc?token=${parsed.searchParams.get('token')}`, {
    origin: `http://${parsed.host}`
  })
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res())
    ws.once('error', rej)
  })
  let seq = 0
  const waiting = new Map<number, (m: { ok: boolean; value?: unknown; error?: unknown }) => void>()
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as { type: string; id: number; result: never }
    if (m.type === 'result') waiting.get(m.id)?.(m.result)
  })
  return {
    invoke<T>(channel: string, payload?: unknown) {
      const id = ++seq
      return new Promise<T>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`${channel}: no answer in 20 s`)), 20_000)
        waiting.set(id, (r) => {
          clearTimeout(timer)
          waiting.delete(id)
          if (r.ok) res(r.value as T)
          else rej(new Error(`${channel}: ${JSON.stringify(r.error)}`))
        })
        ws.send(JSON.stringify({ type: 'invoke', id, channel, payload }))
      })
    },
    close: () => ws.close()
  }
}

describe('both workers killed while the host is stopped (SIGSTOP … SIGCONT)', () => {
  let host: ChildProcess | undefined
  let modelsDir: string
  let output = ''

  beforeAll(async () => {
    modelsDir = await mkdtemp(join(tmpdir(), 'talkative-deaths-'))
    await ensureDemoBundle()
  })
  afterAll(async () => {
    if (host?.exitCode === null) {
      host.kill('SIGCONT')
      host.kill('SIGKILL')
    }
    await rm(modelsDir, { recursive: true, force: true })
  })

  it('the host lives on, answers, and restarts both workers', async () => {
    host = spawn(
      process.execPath,
      ['--import', 'tsx', resolve(ROOT, 'src/main/host/index.ts'), '--port', '0'],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          TSX_TSCONFIG_PATH: resolve(ROOT, 'tsconfig.node.json'),
          TALKATIVE_MODELS_DIR: modelsDir,
          TALKATIVE_DEVICES: 'cpu:0,threads=1,budget=1GiB;cpu:1,threads=1,budget=1GiB'
        },
        stdio: ['ignore', 'pipe', 'pipe']
      }
    )
    host.stdout!.on('data', (b: Buffer) => (output += b.toString()))
    host.stderr!.on('data', (b: Buffer) => (output += b.toString()))
    let url = ''
    await until('the host URL', async () => {
      url = /(http:\/\/\S+token=\S+)/.exec(output)?.[1] ?? ''
      return url !== '' || host!.exitCode !== null
    })
    expect(url, output).not.toBe('')
    const ipc = await connectIpc(url)
    const state = (): Promise<DevicesSnapshot> => ipc.invoke<DevicesSnapshot>('devices:state')
    await until('both workers up', async () =>
      (await state()).devices.every((d) => d.status === 'ready' && d.workerPid !== null)
    )
    for (const deviceId of ['cpu:0', 'cpu:1'])
      await ipc.invoke('models:load', { groupId: GROUP, deviceId })
    const pids = (await state()).devices.map((d) => d.workerPid!)
    // Work in flight while it happens: a split analysis has requests out to both workers.
    await ipc.invoke('jobs:submit', {
      kind: 'analyze',
      groupId: GROUP,
      text: TEXT,
      options: { bestOfK: 2, salience: false, rowsPerBatch: 2 }
    })

    host.kill('SIGSTOP')
    for (const pid of pids) process.kill(pid, 'SIGKILL')
    // Longer than the heartbeat period, so pings are due to both dead workers when it wakes.
    await new Promise((r) => setTimeout(r, 3000))
    host.kill('SIGCONT')

    await until('both devices back with new workers', async () =>
      (await state()).devices.every(
        (d) => d.status === 'ready' && d.workerPid !== null && !pids.includes(d.workerPid)
      )
    )
    expect(isAlive(host.pid!)).toBe(true)
    expect(host.exitCode).toBeNull()
    expect(output).not.toMatch(/EPIPE|Uncaught|ERR_IPC/)
    ipc.close()
  })
})
