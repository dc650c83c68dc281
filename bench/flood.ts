/**
 * Flood benchmark: how long another client waits for `GET /api/v2/system/state` while one client
 * floods the headless host. The host runs in its own process (as a user runs it), with one virtual
 * CPU device; this process is the two clients. Scenarios:
 *
 *   api-ws     the flooder sends `get_state` on /api/v2/ws as fast as it can and reads the answers
 *   ipc        the flooder sends `system:state` invokes on /ipc
 *   no-read    the flooder sends `get_state` on /api/v2/ws and never reads an answer
 *   idle       no flood: the prober alone, the baseline the others are compared with
 *
 * For each: the prober's p50 / p99 / max latency (one request every 20 ms while the flood lasts),
 * the flood's duration, and the host's RSS before and after. Target: p99 < 100 ms.
 *
 *   npm run bench:flood [-- --json] [--messages N] [--scenario idle|api-ws|ipc|no-read]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import WebSocket from 'ws'
import { ensureDemoBundle } from '../src/main/engine'

const ROOT = resolve(__dirname, '..')

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 1024)
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

interface Host {
  child: ChildProcess
  port: number
  token: string
  stop(): Promise<void>
}

async function startHost(modelsDir: string): Promise<Host> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', resolve(ROOT, 'src/main/host/index.ts'), '--port', '0'],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        TSX_TSCONFIG_PATH: resolve(ROOT, 'tsconfig.node.json'),
        TALKATIVE_MODELS_DIR: modelsDir,
        TALKATIVE_DEVICES: 'cpu:0,threads=1,budget=1GiB'
      },
      stdio: ['ignore', 'pipe', 'pipe']
    }
  )
  let output = ''
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()))
  const url = await new Promise<URL>((resolveUrl, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      output += b.toString()
      const m = /(http:\/\/\S+token=\S+)/.exec(output)
      if (m) resolveUrl(new URL(m[1]!))
    })
    child.once('exit', () => reject(new Error(`host exited: ${output}`)))
  })
  return {
    child,
    port: Number(url.port),
    token: url.searchParams.get('token')!,
    async stop() {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
  }
}

function getState(host: Host): Promise<number> {
  const started = performance.now()
  return new Promise((resolveTime, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: host.port,
        path: '/api/v2/system/state',
        // A fresh connection per probe, as a separate client would open.
        agent: false,
        headers: { authorization: `Bearer ${host.token}` }
      },
      (res) => {
        res.resume()
        res.on('end', () =>
          res.statusCode === 200
            ? resolveTime(performance.now() - started)
            : reject(new Error(`status ${res.statusCode}`))
        )
      }
    )
    req.on('error', reject)
    req.end()
  })
}

async function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers })
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res())
    ws.once('error', rej)
  })
  return ws
}

type Scenario = 'idle' | 'api-ws' | 'ipc' | 'no-read'

/** Starts the flood; resolves when the flooder has had its answers (or, not reading, when sent). */
async function flood(host: Host, scenario: Scenario, messages: number): Promise<() => void> {
  if (scenario === 'idle') return () => undefined
  const origin = `http://127.0.0.1:${host.port}`
  const ws =
    scenario === 'ipc'
      ? await open(`ws://127.0.0.1:${host.port}/ipc?token=${host.token}`, { origin })
      : await open(`ws://127.0.0.1:${host.port}/api/v2/ws`, {
          authorization: `Bearer ${host.token}`
        })
  const frame = (i: number): string =>
    scenario === 'ipc'
      ? JSON.stringify({ type: 'invoke', id: i, channel: 'system:state' })
      : JSON.stringify({ type: 'get_state' })
  if (scenario === 'no-read') {
    // Never read: the host's answers pile up in its send buffer unless it stops reading.
    ;(ws as unknown as { _socket: { pause(): void } })._socket.pause()
  }
  for (let i = 0; i < messages; i++) ws.send(frame(i))
  return () => ws.terminate()
}

async function runScenario(
  host: Host,
  scenario: Scenario,
  messages: number,
  durationMs: number
): Promise<Record<string, number | string>> {
  // Warm up: the device manager starts on the first state request.
  for (let i = 0; i < 5; i++) await getState(host)
  const rssBefore = rssMiB(host.child.pid!)
  const started = performance.now()
  const stopFlood = await flood(host, scenario, messages)
  const latencies: number[] = []
  let failures = 0
  let lastFailure = ''
  while (performance.now() - started < durationMs) {
    const t = await getState(host).catch((err: unknown) => {
      failures++
      lastFailure = String(err)
      return NaN
    })
    if (!Number.isNaN(t)) latencies.push(t)
    await new Promise((r) => setTimeout(r, 20))
  }
  const rssAfter = rssMiB(host.child.pid!)
  stopFlood()
  latencies.sort((a, b) => a - b)
  return {
    scenario,
    messages,
    probes: latencies.length,
    failures,
    p50_ms: Math.round(percentile(latencies, 50) * 10) / 10,
    p99_ms: Math.round(percentile(latencies, 99) * 10) / 10,
    max_ms: Math.round((latencies.at(-1) ?? NaN) * 10) / 10,
    rss_before_mib: rssBefore,
    rss_after_mib: rssAfter,
    ...(lastFailure ? { last_failure: lastFailure } : {})
  }
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json')
  const messages = Number(arg('--messages', '3000'))
  const durationMs = Number(arg('--duration-ms', '6000'))
  const only = arg('--scenario', '')
  const scenarios = (['idle', 'api-ws', 'ipc', 'no-read'] as const).filter(
    (s) => !only || s === only
  )
  const modelsDir = await mkdtemp(join(tmpdir(), 'bench-flood-'))
  await ensureDemoBundle()
  const results: Array<Record<string, number | string>> = []
  try {
    for (const scenario of scenarios) {
      // A fresh host per scenario: one flood's leftovers never slow the next.
      const host = await startHost(modelsDir)
      try {
        results.push(await runScenario(host, scenario, messages, durationMs))
      } finally {
        await host.stop()
      }
    }
  } finally {
    await rm(modelsDir, { recursive: true, force: true })
  }
  const machine = { cores: cpus().length, load_avg_1m: Math.round(loadavg()[0]! * 100) / 100 }
  if (json) {
    console.log(JSON.stringify({ ...machine, results }))
    return
  }
  console.log(`cores ${machine.cores}, load avg ${machine.load_avg_1m}`)
  console.log('scenario  messages  probes  p50 ms  p99 ms  max ms  RSS before → after (MiB)')
  for (const r of results) {
    console.log(
      `${String(r.scenario).padEnd(9)} ${String(r.messages).padStart(8)} ${String(r.probes).padStart(7)} ` +
        `${String(r.p50_ms).padStart(7)} ${String(r.p99_ms).padStart(7)} ${String(r.max_ms).padStart(7)}  ` +
        `${r.rss_before_mib} → ${r.rss_after_mib}${r.failures ? `  (${r.failures} failed)` : ''}`
    )
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
