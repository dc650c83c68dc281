/**
 * UI feel benchmark: the built renderer in Debian's chromium against the built headless host, with
 * frame gaps (requestAnimationFrame) and long tasks (PerformanceObserver 'longtask') measured in
 * the page while
 *   1. a saved 4,000-row result is scrolled top to bottom, in the table and in the transposed view;
 *   2. a 4,000-position analysis streams its rows into the table in many small batches.
 *
 * The demo group takes at most 512 positions, so the long text runs on a small random-weight
 * bundle (d 64, 2 layers, 512 words, T 8, 4,200 positions) generated once under .cache/ui-bench/.
 * The 4,000-row session is a real analysis by the host (bestOfK 1, salience on, KL off), exported
 * once to .cache/ui-bench/ and imported on later runs. `--fresh` remakes both; `--rebuild` runs
 * `electron-vite build` even when out/ exists. `--json`: one JSON line.
 *
 *   npm run bench:ui [-- --json] [--rebuild] [--fresh] [--rows-per-batch 16] [--steps 300] [--verbose] [--profile]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium, type CDPSession, type Page } from 'playwright-core'
import { generateSyntheticBundle, syntheticText } from '../src/main/engine/synthetic'

const root = path.resolve(__dirname, '..')
const cacheDir = path.join(root, '.cache', 'ui-bench')
/** Bump when the bundle or the session recipe changes: the cached files are remade. */
const RECIPE = 1
const modelsDir = path.join(cacheDir, 'models')
const bundleDir = path.join(modelsDir, `synthetic-long-v${RECIPE}`)
const sessionFile = path.join(cacheDir, `session-4000-v${RECIPE}.json`)
const BUNDLE = {
  hiddenSize: 64,
  layers: 2,
  heads: 2,
  vocabSize: 512,
  explanationTokens: 8,
  patchLayers: 1,
  maxPositions: 4200,
  seed: 11
}
const GROUP_ID = 'synthetic'
/** 3,999 words + BOS = 4,000 positions. */
const WORDS = 3999
const ROWS = WORDS + 1

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return fallback
  const v = Number(process.argv[i + 1])
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`)
  return v
}

const json = process.argv.includes('--json')
const fresh = process.argv.includes('--fresh')
const rebuild = process.argv.includes('--rebuild')
const rowsPerBatch = numberArg('rows-per-batch', 16)
const steps = numberArg('steps', 300)
const verbose = process.argv.includes('--verbose')
/** Writes a CPU profile of each phase to .cache/ui-bench/ and prints its hottest functions. */
const profile = process.argv.includes('--profile')
const log = (line: string): void => {
  if (!json) process.stderr.write(`${line}\n`)
}

function ensureBuilt(): void {
  const built =
    existsSync(path.join(root, 'out/main/host.js')) &&
    existsSync(path.join(root, 'out/renderer/index.html'))
  if (built && !rebuild) return
  log('building the app (electron-vite build)…')
  const r = spawnSync('npx', ['electron-vite', 'build'], {
    cwd: root,
    stdio: json ? 'ignore' : 'inherit'
  })
  if (r.status !== 0) throw new Error(`electron-vite build failed (exit ${r.status})`)
}

async function ensureBundle(): Promise<void> {
  if (!fresh && existsSync(path.join(bundleDir, 'manifest.json'))) return
  log(`generating the long-context bundle in ${path.relative(root, bundleDir)}…`)
  await rm(modelsDir, { recursive: true, force: true })
  await mkdir(modelsDir, { recursive: true })
  await generateSyntheticBundle(bundleDir, BUNDLE)
}

interface Host {
  url: string
  stop(): Promise<void>
}

const URL_LINE = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)/

async function startHost(env: Record<string, string>): Promise<Host> {
  const child: ChildProcess = spawn(
    process.execPath,
    [path.join(root, 'out/main/host.js'), '--port', '0'],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env }
    }
  )
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`host printed no URL in 30 s:\n${output}`)),
      30_000
    )
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const m = URL_LINE.exec(output)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`host exited with ${code} before printing its URL:\n${output}`))
    })
  })
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
        setTimeout(() => child.kill('SIGKILL'), 5000).unref()
      })
  }
}

/**
 * Runs in the page before any of its scripts (plain JS: Playwright sends it as text). It records
 * long tasks from the start, offers the measuring loops below, and adds `rowsPerBatch` to the
 * console's `sessions:run` request on the wire, because the console has no control for it and
 * window.api is frozen.
 */
const PAGE_PROBE = String.raw`(() => {
  const longTasks = []
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) longTasks.push({ start: e.startTime, duration: e.duration })
    }).observe({ type: 'longtask', buffered: true })
  } catch (_) {}
  const send = WebSocket.prototype.send
  WebSocket.prototype.send = function (data) {
    const extra = window.__uiBenchRunOptions
    if (extra && typeof data === 'string' && data.includes('"sessions:run"')) {
      const msg = JSON.parse(data)
      if (msg.channel === 'sessions:run') {
        msg.payload.options = Object.assign({}, msg.payload.options, extra)
        data = JSON.stringify(msg)
      }
    }
    return send.call(this, data)
  }
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve))
  const tasksIn = (t0, t1) => longTasks.filter((t) => t.start >= t0 && t.start <= t1).map((t) => t.duration)
  window.__uiBench = {
    // Scrolls the element from start to end in equal steps, one step per frame.
    async scroll(selector, axis, steps, itemSelector, lastSelector) {
      const el = document.querySelector(selector)
      if (!el) throw new Error('no element ' + selector)
      const prop = axis === 'y' ? 'scrollTop' : 'scrollLeft'
      el[prop] = 0
      await frame()
      await frame()
      const max = axis === 'y' ? el.scrollHeight - el.clientHeight : el.scrollWidth - el.clientWidth
      const gaps = []
      let domMax = 0
      const t0 = performance.now()
      let prev = await frame()
      for (let i = 1; i <= steps; i++) {
        el[prop] = Math.round((max * i) / steps)
        const now = await frame()
        gaps.push(now - prev)
        prev = now
        domMax = Math.max(domMax, el.querySelectorAll(itemSelector).length)
      }
      await frame()
      const t1 = performance.now()
      return { gaps, domMax, longTasks: tasksIn(t0, t1), ms: t1 - t0, scrollPx: max, reachedEnd: !!el.querySelector(lastSelector) }
    },
    // Records frame gaps from now until done() says so (checked every frame), or timeoutMs.
    async framesUntil(doneExpr, timeoutMs) {
      const done = new Function('return (' + doneExpr + ')')
      const gaps = []
      const t0 = performance.now()
      let prev = await frame()
      let finished = false
      while (performance.now() - t0 < timeoutMs) {
        const now = await frame()
        gaps.push(now - prev)
        prev = now
        if (done()) {
          finished = true
          break
        }
      }
      const t1 = performance.now()
      return { gaps, longTasks: tasksIn(t0, t1), ms: t1 - t0, finished }
    }
  }
})()`

interface Measured {
  gaps: number[]
  longTasks: number[]
  ms: number
}

interface FrameStats {
  p50: number
  p95: number
  max: number
  frames: number
  longTasks: number
  longTaskMax: number
  seconds: number
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

function stats(m: Measured): FrameStats {
  const s = [...m.gaps].sort((a, b) => a - b)
  const round = (v: number): number => Math.round(v * 10) / 10
  return {
    p50: round(quantile(s, 0.5)),
    p95: round(quantile(s, 0.95)),
    max: round(s.at(-1) ?? Number.NaN),
    frames: s.length,
    longTasks: m.longTasks.length,
    longTaskMax: round(Math.max(0, ...m.longTasks)),
    seconds: round(m.ms / 1000)
  }
}

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}

/** Runs `during` under the page's CPU profiler (when --profile), saves it, prints the top self times. */
async function profiled<T>(
  cdp: CDPSession | null,
  name: string,
  during: () => Promise<T>
): Promise<T> {
  if (!cdp) return during()
  await cdp.send('Profiler.enable')
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
  await cdp.send('Profiler.start')
  const value = await during()
  const { profile: p } = (await cdp.send('Profiler.stop')) as unknown as {
    profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }
  }
  await writeFile(path.join(cacheDir, `${name}.cpuprofile`), JSON.stringify(p))
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  p.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame
    const key = `${f.functionName || '(anonymous)'} ${path.basename(f.url)}:${f.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000)
  })
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 18)
  log(`${name}: hottest functions (self ms)`)
  for (const [key, ms] of top) log(`  ${ms.toFixed(0).padStart(7)}  ${key}`)
  return value
}

async function invoke<T>(page: Page, channel: string, input?: unknown): Promise<T> {
  const r = await page.evaluate(
    ([c, i]) =>
      (
        globalThis as unknown as { api: { invoke(c: string, i: unknown): Promise<unknown> } }
      ).api.invoke(c as string, i),
    [channel, input] as const
  )
  const result = r as { ok: boolean; value?: T; error?: { code: string; message: string } }
  if (!result.ok) throw new Error(`${channel}: ${result.error?.code} ${result.error?.message}`)
  return result.value as T
}

async function waitForJob(page: Page, jobId: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const job = await invoke<{ status: string; error?: { message: string } }>(page, 'jobs:get', {
      jobId
    })
    if (job.status === 'done') return
    if (['failed', 'cancelled'].includes(job.status))
      throw new Error(`job ${jobId} ${job.status}: ${job.error?.message ?? ''}`)
    if (Date.now() > until)
      throw new Error(`job ${jobId} still ${job.status} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** The 4,000-row session file: from the cache, or made now by a real analysis on the host. */
async function sessionContent(page: Page): Promise<string> {
  if (!fresh && existsSync(sessionFile)) return readFile(sessionFile, 'utf8')
  log(
    `analysing ${ROWS} positions once for the scroll session (cached in ${path.relative(root, sessionFile)})…`
  )
  const reply = await invoke<{ session: { id: string }; jobId: string }>(page, 'sessions:run', {
    groupId: GROUP_ID,
    input: { mode: 'text', text: syntheticText(WORDS, BUNDLE.vocabSize, 1) },
    options: { bestOfK: 1, salience: true, kl: false, seed: 42 },
    name: `UI bench: ${ROWS} positions`
  })
  await waitForJob(page, reply.jobId, 120_000)
  const exported = await invoke<{ content: string }>(page, 'sessions:export', {
    id: reply.session.id,
    format: 'json'
  })
  const rows = (JSON.parse(exported.content) as { rows: unknown[] }).rows.length
  if (rows !== ROWS) throw new Error(`the scroll session has ${rows} rows, expected ${ROWS}`)
  await writeFile(sessionFile, exported.content)
  return exported.content
}

async function main(): Promise<void> {
  const started = performance.now()
  const loadStart = os.loadavg()[0]
  ensureBuilt()
  await ensureBundle()
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'talkative-ui-bench-'))
  await mkdir(path.join(scratch, 'sessions'))
  const host = await startHost({
    // One worker thread: the page keeps the other core while rows stream.
    TALKATIVE_DEVICES: 'cpu:0,threads=1,budget=2GiB',
    TALKATIVE_SESSIONS_DIR: path.join(scratch, 'sessions'),
    TALKATIVE_MODELS_DIR: modelsDir
  })
  const browser = await chromium.launch({
    executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  })
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    page.setDefaultTimeout(60_000)
    const cdp = profile ? await page.context().newCDPSession(page) : null
    await page.addInitScript(PAGE_PROBE)
    await page.goto(host.url)
    await page.locator(`[data-testid="group-card"][data-group-id="${GROUP_ID}"]`).waitFor()
    log(`loading the ${GROUP_ID} group on cpu:0…`)
    await invoke(page, 'models:load', { groupId: GROUP_ID, deviceId: 'cpu:0' })

    // 1. Scroll a saved 4,000-row result, imported through the UI's own channel, opened from history.
    const content = await sessionContent(page)
    const imported = await invoke<{ id: string; rowCount: number }>(page, 'sessions:import', {
      fileName: 'ui-bench-4000.json',
      content
    })
    const item = page.locator(`[data-testid="session-item"][data-session-id="${imported.id}"]`)
    await item.getByTestId('session-open').click()
    await page.locator(`[data-testid="results-table"][data-row-count="${ROWS}"]`).waitFor()
    await page.locator('[data-testid="result-row"]').first().waitFor()
    log(`scrolling the table (${ROWS} rows, ${steps} steps, one per frame)…`)
    const lastRow = `[data-testid="result-row"][data-position="${ROWS - 1}"]`
    const tableRun = (await profiled(cdp, 'table-scroll', () =>
      page.evaluate(
        `window.__uiBench.scroll('[data-testid="results-scroller"]', 'y', ${steps}, '[data-testid="result-row"]', '${lastRow}')`
      )
    )) as Measured & { domMax: number; reachedEnd: boolean; scrollPx: number }
    await page.getByTestId('view-transposed').click()
    await page.getByTestId('transposed-view').waitFor()
    log(`scrolling the transposed view (${steps} steps)…`)
    const transposedRun = (await page.evaluate(
      `window.__uiBench.scroll('[data-testid="transposed-view"]', 'x', ${steps}, '.transposed__col', '.transposed__col[data-position="${ROWS - 1}"]')`
    )) as Measured & { domMax: number; reachedEnd: boolean; scrollPx: number }
    await page.getByTestId('view-table').click()

    // 2. Stream a 4,000-position analysis from the console, rowsPerBatch small so rows arrive often.
    log(`streaming a ${ROWS}-position analysis (rowsPerBatch ${rowsPerBatch})…`)
    await page.evaluate(`window.__uiBenchRunOptions = { rowsPerBatch: ${rowsPerBatch} }`)
    await page.evaluate(`(() => {
      window.__uiBenchBatches = 0
      window.api.on('jobs:rows', () => { window.__uiBenchBatches++ })
    })()`)
    await page.getByTestId('group-picker').selectOption(GROUP_ID)
    await page.getByTestId('prompt-text').fill(syntheticText(WORDS, BUNDLE.vocabSize, 2))
    await page.getByTestId('opt-best-of-k').fill('1')
    await page.getByTestId('console').getByRole('checkbox', { name: 'KL', exact: true }).uncheck()
    await page
      .getByTestId('console')
      .getByRole('checkbox', { name: 'salience', exact: true })
      .check()
    // Done when the new run (not the session opened above) shows all its rows, completed.
    const streamDone = [
      `document.querySelector('[data-testid="results"]')?.dataset.sessionId !== '${imported.id}'`,
      `document.querySelector('[data-testid="results-status"]')?.textContent === 'completed'`,
      `document.querySelector('[data-testid="results-table"]')?.dataset.rowCount === '${ROWS}'`
    ].join(' && ')
    const streaming = page.evaluate(
      `window.__uiBench.framesUntil(${JSON.stringify(streamDone)}, 110000)`
    ) as Promise<Measured & { finished: boolean }>
    const streamRun = await profiled(cdp, 'streaming', async () => {
      await page.getByTestId('analyse').click()
      return streaming
    })
    const batches = (await page.evaluate('window.__uiBenchBatches')) as number
    const streamedRows = Number(
      await page.getByTestId('results-table').getAttribute('data-row-count')
    )
    if (!streamRun.finished)
      throw new Error(`the streamed analysis did not complete in time (${streamedRows} rows)`)

    if (verbose) {
      const slow = (m: Measured): string =>
        m.gaps.flatMap((g, i) => (g > 50 ? [`#${i} ${g.toFixed(0)} ms`] : [])).join(', ') || 'none'
      log(
        `frames over 50 ms: table ${slow(tableRun)}; transposed ${slow(transposedRun)}; streaming ${slow(streamRun)}`
      )
      log(
        `long tasks: table ${tableRun.longTasks.map((t) => t.toFixed(0)).join(', ')}; transposed ${transposedRun.longTasks.map((t) => t.toFixed(0)).join(', ')}; streaming ${streamRun.longTasks.map((t) => t.toFixed(0)).join(', ')}`
      )
    }
    const scroll = stats(tableRun)
    const transposed = stats(transposedRun)
    const stream = stats(streamRun)
    const loadEnd = os.loadavg()[0]
    const figures = {
      rows: ROWS,
      scroll_p50_frame_ms: scroll.p50,
      scroll_p95_frame_ms: scroll.p95,
      scroll_max_frame_ms: scroll.max,
      scroll_long_tasks: scroll.longTasks,
      scroll_long_task_max_ms: scroll.longTaskMax,
      scroll_reached_end: tableRun.reachedEnd,
      dom_rows_max: tableRun.domMax,
      transposed_p50_frame_ms: transposed.p50,
      transposed_p95_frame_ms: transposed.p95,
      transposed_max_frame_ms: transposed.max,
      transposed_long_tasks: transposed.longTasks,
      transposed_long_task_max_ms: transposed.longTaskMax,
      transposed_reached_end: transposedRun.reachedEnd,
      dom_cols_max: transposedRun.domMax,
      stream_rows: streamedRows,
      stream_batches: batches,
      stream_s: stream.seconds,
      stream_p50_frame_ms: stream.p50,
      stream_p95_frame_ms: stream.p95,
      stream_max_frame_ms: stream.max,
      stream_long_tasks: stream.longTasks,
      stream_long_task_max_ms: stream.longTaskMax,
      rows_per_batch: rowsPerBatch,
      cores: os.cpus().length,
      load_avg_1m_start: Number(loadStart.toFixed(2)),
      load_avg_1m_end: Number(loadEnd.toFixed(2)),
      bench_s: Math.round((performance.now() - started) / 1000)
    }
    if (json) {
      console.log(JSON.stringify(figures))
      return
    }
    const line = (name: string, s: FrameStats, extra: string): string =>
      `${name.padEnd(18)} ${String(s.frames).padStart(6)} ${s.p50.toFixed(1).padStart(8)} ${s.p95.toFixed(1).padStart(8)} ${s.max.toFixed(1).padStart(8)} ${String(s.longTasks).padStart(6)} ${s.longTaskMax.toFixed(0).padStart(8)}   ${extra}`
    console.log('')
    console.log(
      `${'phase'.padEnd(18)} ${'frames'.padStart(6)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'long'.padStart(6)} ${'long max'.padStart(8)}   notes`
    )
    console.log(
      line(
        'table scroll',
        scroll,
        `${tableRun.domMax} DOM rows at most of ${ROWS}; ${(tableRun.scrollPx / 1000).toFixed(0)}k px; end reached: ${tableRun.reachedEnd}`
      )
    )
    console.log(
      line(
        'transposed scroll',
        transposed,
        `${transposedRun.domMax} DOM columns at most; ${(transposedRun.scrollPx / 1000).toFixed(0)}k px; end reached: ${transposedRun.reachedEnd}`
      )
    )
    console.log(
      line(
        'streaming',
        stream,
        `${streamedRows} rows in ${batches} batches over ${stream.seconds} s (rowsPerBatch ${rowsPerBatch})`
      )
    )
    console.log('')
    console.log(
      `load average (1 min) ${loadStart.toFixed(2)} → ${loadEnd.toFixed(2)} on ${os.cpus().length} cores (shared); bench ${figures.bench_s} s`
    )
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED')
    console.log(
      `virtualised (DOM rows ≤ 100 of ${ROWS}): ${verdict(tableRun.domMax <= 100 && transposedRun.domMax <= 100)}`
    )
    console.log(
      `smooth scroll (no long task, p95 frame ≤ 33 ms): ${verdict(scroll.longTasks === 0 && scroll.p95 <= 33 && transposed.longTasks === 0 && transposed.p95 <= 33)}`
    )
    console.log(
      `streaming (no long task, no frame > 50 ms): ${verdict(stream.longTasks === 0 && stream.max <= 50)}`
    )
  } finally {
    await browser.close()
    await host.stop()
    await rm(scratch, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench:ui: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`
  )
  process.exitCode = 1
})
