/**
 * A running headless host for the API tests: the demo group, a copy of it too big for any device
 * (for 503s), and two virtual CPU devices with real worker processes.
 */
import { cp, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { ensureDemoBundle } from '../../src/main/engine'
import { probeProviders } from '../../src/main/engine/ort'
import { startHost, type RunningHost } from '../../src/main/host/startHost'

const MiB = 1024 ** 2
export const GROUP = 'demo-words'
export const HUGE_GROUP = 'demo-huge'

export interface ApiHost {
  host: RunningHost
  base: string
  port: number
  token: string
  logLines: string[]
  stop(): Promise<void>
}

export async function startApiHost(
  api: {
    extraTokens?: string[]
    maxBodyBytes?: number
    badRequestLogIntervalMs?: number
    metricsPublic?: boolean
    compatOrigins?: string[]
  } = {},
  deviceIds: [string, string] = ['cpu:0', 'cpu:1']
): Promise<ApiHost> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'talkative-api-models-'))
  const rendererDir = await mkdtemp(join(tmpdir(), 'talkative-api-renderer-'))
  await writeFile(join(rendererDir, 'index.html'), '<!doctype html><title>workbench</title>')
  const demo = await ensureDemoBundle()
  const huge = join(modelsDir, 'huge')
  await mkdir(huge, { recursive: true })
  await cp(demo, huge, { recursive: true })
  const manifestFile = join(huge, 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'))
  manifest.group.id = HUGE_GROUP
  // The memory estimate grows with the batch workspace: this one fits on no device.
  manifest.rowsPerBatch = { ...(manifest.rowsPerBatch ?? {}), cpu: 100_000_000, gpu: 100_000_000 }
  await writeFile(manifestFile, JSON.stringify(manifest))

  const logLines: string[] = []
  const host = await startHost({
    port: 0,
    rendererDir,
    api: { ...api, log: (line) => logLines.push(line) },
    services: {
      probeProviders: () => probeProviders(['cpu']),
      devices: {
        modelsDir,
        devices: deviceIds.map((id) => ({ id, threads: 1, budgetBytes: 1024 * MiB })),
        heartbeatMs: 500,
        graceMs: 10_000,
        cancelGraceMs: 10_000,
        watch: false
      }
    }
  })
  await host.services.devices.manager()
  return {
    host,
    port: host.http.port,
    base: `http://127.0.0.1:${host.http.port}/api/v2`,
    token: host.http.token,
    logLines,
    async stop() {
      await host.stop()
      await rm(modelsDir, { recursive: true, force: true })
      await rm(rendererDir, { recursive: true, force: true })
    }
  }
}

export interface ApiResponse {
  status: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
  headers: Headers
}

/** A real HTTP request (Node's fetch) with the bearer token unless told otherwise. */
export async function api(
  h: ApiHost,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
  options: { token?: string | null; clientId?: string; rawBody?: string; contentType?: string } = {}
): Promise<ApiResponse> {
  const headers: Record<string, string> = {}
  const token = options.token === undefined ? h.token : options.token
  if (token !== null) headers.authorization = `Bearer ${token}`
  if (options.clientId) headers['x-client-id'] = options.clientId
  let payload: string | undefined
  if (options.rawBody !== undefined) payload = options.rawBody
  else if (body !== undefined) payload = JSON.stringify(body)
  if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json'
  const res = await fetch(`${h.base}${path}`, { method, headers, body: payload })
  const text = await res.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WsMessage = { type: string; [key: string]: any }

export interface ApiSocket {
  ws: WebSocket
  messages: WsMessage[]
  send(message: unknown): void
  /** Resolves with the first message (from `from` on) that matches. */
  next(match: (m: WsMessage) => boolean, timeoutMs?: number, from?: number): Promise<WsMessage>
  close(): void
}

/** Opens /api/v2/ws; resolves to the socket or to the HTTP status it was refused with. */
export function openApiSocket(
  h: ApiHost,
  options: { token?: string | null; query?: boolean; origin?: string } = {}
): Promise<ApiSocket | number> {
  const token = options.token === undefined ? h.token : options.token
  const headers: Record<string, string> = {}
  let url = `ws://127.0.0.1:${h.port}/api/v2/ws`
  if (token !== null) {
    if (options.query) url += `?token=${encodeURIComponent(token)}`
    else headers.authorization = `Bearer ${token}`
  }
  if (options.origin) headers.origin = options.origin
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers })
    const messages: WsMessage[] = []
    const waiters: Array<() => void> = []
    ws.on('message', (data) => {
      messages.push(JSON.parse(data.toString()))
      for (const w of [...waiters]) w()
    })
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('error', () => resolve(0))
    ws.on('open', () =>
      resolve({
        ws,
        messages,
        send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
        next(match, timeoutMs = 60_000, from = 0) {
          return new Promise((resolveNext, reject) => {
            const check = (): boolean => {
              const found = messages.slice(from).find(match)
              if (!found) return false
              clearTimeout(timer)
              waiters.splice(waiters.indexOf(onMessage), 1)
              resolveNext(found)
              return true
            }
            const onMessage = (): void => {
              check()
            }
            const timer = setTimeout(() => {
              waiters.splice(waiters.indexOf(onMessage), 1)
              reject(
                new Error(`no matching message; got ${messages.map((m) => m.type).join(', ')}`)
              )
            }, timeoutMs)
            waiters.push(onMessage)
            check()
          })
        },
        close: () => ws.close()
      })
    )
  })
}

export async function socket(h: ApiHost): Promise<ApiSocket> {
  const s = await openApiSocket(h)
  if (typeof s === 'number') throw new Error(`socket refused with ${s}`)
  return s
}

/** Everything but KL bit-identical; KL to float32 rounding (summed in a different batch order). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function sameRows(got: any[], want: any[]): boolean {
  if (got.length !== want.length) return false
  return got.every((row, i) => {
    const w = want[i]
    const { kl_divergence: klGot, ...restGot } = row
    const { kl_divergence: klWant, ...restWant } = w
    if (JSON.stringify(restGot) !== JSON.stringify(restWant)) return false
    if (klGot === null || klWant === null) return klGot === klWant
    return Math.abs(klGot - klWant) <= 1e-6 + 1e-3 * Math.abs(klWant)
  })
}
