/**
 * One analysis read back from every surface a researcher reads outside the app: the command line
 * (`analyze --json`, `generate --analyze --json`, `run` to JSONL, JSON and CSV), the app's exports
 * (JSON, JSONL, CSV, through the same channel the History buttons call), the API (HTTP and the
 * WebSocket's streamed rows and result). Every one has the public row keys and metadata keys
 * (docs/public-schema.md), and the same rows.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InvokeOutput } from '../../src/shared/ipc/contract'
import {
  PUBLIC_METADATA_KEYS,
  PUBLIC_ROW_KEYS,
  PublicMetadataSchema,
  PublicRowSchema
} from '../../src/shared/public/lensFrame'
import { SessionExportSchema } from '../../src/shared/public/sessionExport'
import { PublicRunRecordSchema } from '../../src/shared/public/runRecord'
import { parseCsv } from '../../src/main/engine'
import { probeProviders } from '../../src/main/engine/ort'
import { startHost, type RunningHost } from '../../src/main/host/startHost'
import { cliHarness, type CliHarness } from '../../src/cli/commands/spawnCli'
import { sameRows, socket, type ApiHost } from '../api/helpers'

// A word the demo vocabulary lacks ("captain"): its row must say <unk> and the typed word.
const TEXT = 'the captain sat on the mat .'
const LENS = 'demo-words/words-l1'
const CLI_FLAGS = ['--best-of-k', '2', '--seed', '7', '--threads', '1']
const OPTIONS = { bestOfK: 2, seed: 7 }

type Json = Record<string, unknown>
interface Surface {
  name: string
  metadata: Json | null
  rows: Json[]
}

let cli: CliHarness
let host: RunningHost
let api: ApiHost
let dir = ''
const surfaces: Surface[] = []

async function invoke<T>(channel: string, payload: unknown): Promise<T> {
  const r = await host.services.router.dispatch(channel, payload, { clientId: 'surfaces' })
  if (!r.ok) throw new Error(r.error.message)
  return r.value as T
}

async function sessionDone(id: string): Promise<void> {
  const until = Date.now() + 60_000
  while (Date.now() < until) {
    const s = await invoke<{ status: string }>('sessions:get', { id })
    if (s.status !== 'running') return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`session ${id} did not finish`)
}

function csvRows(file: string, drop: string[] = []): Surface['rows'] {
  const [header, ...lines] = parseCsv(readFileSync(file)).rows
  const columns = header!.fields
  return lines.map((l) =>
    Object.fromEntries(
      columns.map((c, i) => [c, l.fields[i]] as const).filter(([c]) => !drop.includes(c))
    )
  )
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'talkative-surfaces-'))
  cli = await cliHarness('talkative-surfaces-cli-')
  const rendererDir = join(dir, 'renderer')
  await writeFile(join(dir, 'in.jsonl'), JSON.stringify({ id: 'r1', text: TEXT }) + '\n')
  const { mkdir } = await import('node:fs/promises')
  await mkdir(rendererDir)
  await writeFile(join(rendererDir, 'index.html'), '<!doctype html><title>workbench</title>')
  host = await startHost({
    port: 0,
    rendererDir,
    services: {
      sessionsDir: join(dir, 'sessions'),
      probeProviders: () => probeProviders(['cpu']),
      devices: {
        modelsDir: join(dir, 'models'),
        devices: [{ id: 'cpu:0', threads: 1, budgetBytes: 1024 ** 3 }],
        heartbeatMs: 500,
        graceMs: 10_000,
        cancelGraceMs: 10_000,
        watch: false
      }
    }
  })
  await host.services.devices.manager()
  api = {
    host,
    port: host.http.port,
    base: `http://127.0.0.1:${host.http.port}/api/v2`,
    token: host.http.token,
    logLines: [],
    stop: () => host.stop()
  }

  // The command line.
  const analyzed = await cli.run('analyze', '--text', TEXT, ...CLI_FLAGS, '--json')
  expect(analyzed.code, analyzed.stderr).toBe(0)
  const frame = JSON.parse(analyzed.stdout) as { metadata: Json; data: Json[] }
  expect(Object.keys(frame)).toEqual(['metadata', 'data'])
  surfaces.push({ name: 'analyze --json', metadata: frame.metadata, rows: frame.data })

  const generated = await cli.run(
    'generate',
    '--text',
    TEXT,
    '--analyze',
    '--max-new-tokens',
    '2',
    ...CLI_FLAGS,
    '--json'
  )
  expect(generated.code, generated.stderr).toBe(0)
  const job = JSON.parse(generated.stdout) as { analysis: { metadata: Json; data: Json[] } }
  surfaces.push({
    name: 'generate --analyze --json',
    metadata: job.analysis.metadata,
    rows: job.analysis.data
  })

  for (const format of ['jsonl', 'json', 'csv'] as const) {
    const out = join(dir, `out.${format}`)
    const run = await cli.run('run', '--dataset', join(dir, 'in.jsonl'), '--out', out, ...CLI_FLAGS)
    expect(run.code, run.stderr).toBe(0)
    if (format === 'csv') {
      surfaces.push({
        name: 'run CSV',
        metadata: null,
        rows: csvRows(out, ['id', 'record_lines', 'status', 'error'])
      })
      continue
    }
    const text = readFileSync(out, 'utf8')
    const records = (format === 'json' ? JSON.parse(text) : [JSON.parse(text)]) as Json[]
    const record = PublicRunRecordSchema.parse(records[0])
    surfaces.push({
      name: `run ${format.toUpperCase()}`,
      metadata: record.metadata!,
      rows: record.data!
    })
  }

  // The app: a run through the sessions service, exported as the History buttons export it.
  const started = await invoke<InvokeOutput<'sessions:run'>>('sessions:run', {
    groupId: 'demo-words',
    lensId: 'words-l1',
    input: { mode: 'text', text: TEXT },
    options: OPTIONS
  })
  await sessionDone(started.session.id)
  for (const format of ['json', 'jsonl', 'csv'] as const) {
    const file = await invoke<{ content: string; fileName: string }>('sessions:export', {
      id: started.session.id,
      format
    })
    if (format === 'csv') {
      const path = join(dir, file.fileName)
      await writeFile(path, file.content)
      surfaces.push({ name: 'app export CSV', metadata: null, rows: csvRows(path) })
      continue
    }
    const exported = SessionExportSchema.parse(JSON.parse(file.content))
    surfaces.push({
      name: `app export ${format.toUpperCase()}`,
      metadata: exported.metadata,
      rows: exported.data
    })
  }

  // The API: HTTP, and the WebSocket's streamed rows and result.
  const res = await fetch(`${api.base}/models/process`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model_id: LENS, prompt: TEXT, options: { best_of_k: 2, seed: 7 } })
  })
  const body = (await res.json()) as { metadata: Json; rows: Json[] }
  expect(res.status).toBe(200)
  surfaces.push({ name: 'API POST /models/process', metadata: body.metadata, rows: body.rows })

  const ws = await socket(api)
  ws.send({ type: 'analyze', model_id: LENS, prompt: TEXT, options: { best_of_k: 2, seed: 7 } })
  const done = await ws.next((m) => m.type === 'completed')
  const streamed = ws.messages.filter((m) => m.type === 'rows').flatMap((m) => m.rows as Json[])
  surfaces.push({ name: 'API WebSocket rows', metadata: null, rows: streamed })
  surfaces.push({
    name: 'API WebSocket completed',
    metadata: done.result.metadata,
    rows: done.result.rows
  })
  ws.close()
}, 240_000)

afterAll(async () => {
  await host?.stop()
  cli?.cleanup()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('every output surface of one analysis', () => {
  it('reads every surface', () => {
    expect(surfaces.map((s) => s.name)).toEqual([
      'analyze --json',
      'generate --analyze --json',
      'run JSONL',
      'run JSON',
      'run CSV',
      'app export JSON',
      'app export JSONL',
      'app export CSV',
      'API POST /models/process',
      'API WebSocket rows',
      'API WebSocket completed'
    ])
  })

  it('has the public row keys on every surface, in one order', () => {
    for (const s of surfaces) {
      expect(s.rows.length, s.name).toBeGreaterThan(0)
      for (const row of s.rows) expect(Object.keys(row), s.name).toEqual(PUBLIC_ROW_KEYS)
    }
  })

  it('has the public metadata keys on every surface that has metadata', () => {
    const withMetadata = surfaces.filter((s) => s.metadata !== null)
    expect(withMetadata).toHaveLength(8)
    for (const s of withMetadata) {
      expect(Object.keys(s.metadata!), s.name).toEqual(PUBLIC_METADATA_KEYS)
      expect(() => PublicMetadataSchema.parse(s.metadata), s.name).not.toThrow()
      expect(s.metadata, s.name).toMatchObject({ model_id: LENS, best_of_k: 2, seed: 7, layer: 1 })
    }
  })

  it('says <unk> where the model received it, with the typed word, everywhere', () => {
    for (const s of surfaces) {
      const unk = s.rows.find((r) => r.token === '<unk>')
      // generate-then-analyse analyses the transcript as decoded, where the word already is <unk>.
      const typed = s.name === 'generate --analyze --json' ? null : 'captain'
      expect(unk, s.name).toMatchObject({ source_text: s.name.includes('CSV') ? 'captain' : typed })
      // A CSV cell is text; the JSON surfaces keep the id a number.
      expect(String(unk!.token_id), s.name).toBe('3')
    }
  })

  it('has the same rows on every JSON surface of the same text (KL to float rounding)', () => {
    const json = surfaces.filter(
      (s) => !s.name.includes('CSV') && s.name !== 'generate --analyze --json'
    )
    const reference = json[0]!.rows.map((r) => PublicRowSchema.parse(r))
    for (const s of json.slice(1)) expect(sameRows(s.rows, reference), s.name).toBe(true)
  })
})
