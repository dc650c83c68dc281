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
 *   npm run bench:ui [-- --json] [--rebuild] [--fresh] [--rows-per-batch 16] [--steps 300] [--verbose] [--profile] [--breakdown]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium, type CDPSession, type Page } from '@playwright/test'
import { generateSyntheticBundle, syntheticText } from '../src/main/engine/synthetic'
import { chromiumLaunchOptions } from '../e2e/chromium'

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
/** Adds the devtools timeline to the traces and prints where each phase's main-thread time went. */
const breakdown = process.argv.includes('--breakdown')
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

/** Set when the bundle is (re)made: the cached session is then remade from it too. */
let bundleMade = false

async function makeBundle(): Promise<void> {
  log(`generating the long-context bundle in ${path.relative(root, bundleDir)}…`)
  await rm(modelsDir, { recursive: true, force: true })
  await mkdir(modelsDir, { recursive: true })
  await generateSyntheticBundle(bundleDir, BUNDLE)
  bundleMade = true
}

async function ensureBundle(): Promise<void> {
  if (fresh || !existsSync(path.join(bundleDir, 'manifest.json'))) await makeBundle()
}

interface LibraryGroup {
  groupId: string
  folder: string
  status: string
  errors: Array<{ message: string }>
}

/**
 * The bench bundle's group id, as the host lists it. A bundle cached by an older build of the
 * engine can fail today's checks; it is then made again and the folder rescanned.
 */
async function benchGroupId(page: Page): Promise<string> {
  const folder = path.basename(bundleDir)
  for (let attempt = 0; ; attempt++) {
    const library = await invoke<{ groups: LibraryGroup[] }>(page, 'models:list', {
      rescan: attempt > 0
    })
    const group = library.groups.find((g) => g.folder === folder)
    if (group?.status === 'ok') return group.groupId
    const why = group ? group.errors.map((e) => e.message).join('; ') : 'not listed'
    if (attempt > 0) throw new Error(`the bench bundle ${folder} is unusable: ${why}`)
    log(`the cached bundle is unusable (${why}); making it again`)
    await makeBundle()
  }
}

interface Host {
  url: string
  output(): string
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
    output: () => output,
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

interface TraceEvent {
  ph: string
  name: string
  pid: number
  tid: number
  dur?: number
  tdur?: number
  args?: { name?: string }
}

/** The renderer main thread's top-level tasks in a phase: wall and CPU (thread) time, in ms. */
interface MainThreadTasks {
  /** Tasks whose CPU time alone passed 50 ms: work of the page, not waiting for a core. */
  cpuLong: number
  cpuMax: number
  /** Sum of CPU time: how busy the page kept its thread. */
  cpuBusy: number
}

function mainThreadTasks(trace: Buffer): MainThreadTasks {
  const parsed = JSON.parse(trace.toString()) as { traceEvents?: TraceEvent[] } | TraceEvent[]
  const events = Array.isArray(parsed) ? parsed : (parsed.traceEvents ?? [])
  const main = events.find(
    (e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain'
  )
  const cpu = events
    .filter((e) => main && e.pid === main.pid && e.tid === main.tid && e.ph === 'X')
    .filter((e) => e.name === 'ThreadControllerImpl::RunTask')
    .map((e) => (e.tdur ?? e.dur ?? 0) / 1000)
  if (breakdown && main) {
    const byName = new Map<string, number>()
    for (const e of events) {
      if (
        e.pid !== main.pid ||
        e.tid !== main.tid ||
        e.ph !== 'X' ||
        e.name === 'ThreadControllerImpl::RunTask'
      )
        continue
      byName.set(e.name, (byName.get(e.name) ?? 0) + (e.tdur ?? e.dur ?? 0) / 1000)
    }
    const top = [...byName].sort((a, b) => b[1] - a[1]).slice(0, 12)
    log(
      `  main thread by event (CPU ms, nested events overlap): ${top.map(([n, ms]) => `${n} ${ms.toFixed(0)}`).join(', ')}`
    )
  }
  return {
    cpuLong: cpu.filter((ms) => ms >= 50).length,
    cpuMax: Math.round(Math.max(0, ...cpu)),
    cpuBusy: Math.round(cpu.reduce((a, b) => a + b, 0))
  }
}

/**
 * Runs one phase under a 'toplevel' trace, whose tasks carry their thread time next to their wall
 * time: on a shared machine a task can pass 50 ms of wall time while the page waits for a core.
 */
async function traced<T>(
  page: Page,
  during: () => Promise<T>
): Promise<{ value: T; tasks: MainThreadTasks }> {
  const browser = page.context().browser()!
  const categories = breakdown ? ['toplevel', 'devtools.timeline', 'blink', 'v8'] : ['toplevel']
  await browser.startTracing(page, { categories })
  const value = await during()
  return { value, tasks: mainThreadTasks(await browser.stopTracing()) }
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
async function sessionContent(page: Page, groupId: string): Promise<string> {
  if (!fresh && !bundleMade && existsSync(sessionFile)) return readFile(sessionFile, 'utf8')
  log(
    `analysing ${ROWS} positions once for the scroll session (cached in ${path.relative(root, sessionFile)})…`
  )
  const reply = await invoke<{ session: { id: string }; jobId: string }>(page, 'sessions:run', {
    groupId,
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
  const loadStart = os.loadavg()[0]!
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
  const browser = await chromium.launch(chromiumLaunchOptions)
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    page.setDefaultTimeout(60_000)
    const cdp = profile ? await page.context().newCDPSession(page) : null
    const pageErrors: string[] = []
    page.on('pageerror', (err) => pageErrors.push(err.message))
    await page.addInitScript(PAGE_PROBE)
    await page.goto(host.url)
    const groupId = await benchGroupId(page)
    await page
      .locator(`[data-testid="group-card"][data-group-id="${groupId}"]`)
      .waitFor()
      .catch((err: unknown) => {
        throw new Error(
          `${String(err)}\npage errors: ${pageErrors.join('; ') || 'none'}\nhost: ${host.output().slice(-2000)}`
        )
      })
    log(`loading the ${groupId} group on cpu:0…`)
    await invoke(page, 'models:load', { groupId, deviceId: 'cpu:0' })

    // 1. Scroll a saved 4,000-row result, imported through the UI's own channel, opened from history.
    const content = await sessionContent(page, groupId)
    const imported = await invoke<{ id: string; rowCount: number }>(page, 'sessions:import', {
      fileName: 'ui-bench-4000.json',
      content
    })
    const item = page.locator(`[data-testid="session-item"][data-session-id="${imported.id}"]`)
    await item.getByTestId('session-open').click()
    await page.locator(`[data-testid="results-table"][data-row-count="${ROWS}"]`).waitFor()
    await page.locator('[data-testid="result-row"]').first().waitFor()
    type ScrollRun = Measured & { domMax: number; reachedEnd: boolean; scrollPx: number }
    const phase = async <T>(
      name: string,
      during: () => Promise<T>
    ): Promise<{ value: T; tasks: MainThreadTasks }> =>
      traced(page, () => profiled(cdp, name, during))

    log(`scrolling the table (${ROWS} rows, ${steps} steps, one per frame)…`)
    const lastRow = `[data-testid="result-row"][data-position="${ROWS - 1}"]`
    const table = await phase(
      'table-scroll',
      () =>
        page.evaluate(
          `window.__uiBench.scroll('[data-testid="results-scroller"]', 'y', ${steps}, '[data-testid="result-row"]', '${lastRow}')`
        ) as Promise<ScrollRun>
    )
    await page.getByTestId('view-transposed').click()
    await page.getByTestId('transposed-view').waitFor()
    log(`scrolling the transposed view (${steps} steps)…`)
    const transposed = await phase(
      'transposed-scroll',
      () =>
        page.evaluate(
          `window.__uiBench.scroll('[data-testid="transposed-view"]', 'x', ${steps}, '.transposed__col', '.transposed__col[data-position="${ROWS - 1}"]')`
        ) as Promise<ScrollRun>
    )
    await page.getByTestId('view-table').click()

    // 2. Stream a 4,000-position analysis from the console, rowsPerBatch small so rows arrive often.
    log(`streaming a ${ROWS}-position analysis (rowsPerBatch ${rowsPerBatch})…`)
    await page.evaluate(`window.__uiBenchRunOptions = { rowsPerBatch: ${rowsPerBatch} }`)
    await page.evaluate(`(() => {
      window.__uiBenchBatches = 0
      window.api.on('jobs:rows', () => { window.__uiBenchBatches++ })
    })()`)
    await page.getByTestId('group-picker').selectOption(groupId)
    await page.getByTestId('prompt-text').fill(syntheticText(WORDS, BUNDLE.vocabSize, 2))
    await page.getByTestId('opt-best-of-k').fill('1')
    const consoleBox = (name: string) =>
      page.getByTestId('console').getByRole('checkbox', { name, exact: true })
    await consoleBox('KL').uncheck()
    await consoleBox('salience').check()
    // Done when the new run (not the session opened above) shows all its rows, completed.
    const streamDone = [
      `document.querySelector('[data-testid="results"]')?.dataset.sessionId !== '${imported.id}'`,
      `document.querySelector('[data-testid="results-status"]')?.textContent === 'completed'`,
      `document.querySelector('[data-testid="results-table"]')?.dataset.rowCount === '${ROWS}'`
    ].join(' && ')
    const stream = await phase('streaming', async () => {
      const frames = page.evaluate(
        `window.__uiBench.framesUntil(${JSON.stringify(streamDone)}, 110000)`
      ) as Promise<Measured & { finished: boolean }>
      await page.getByTestId('analyse').click()
      return frames
    })
    const batches = (await page.evaluate('window.__uiBenchBatches')) as number
    const streamedRows = Number(
      await page.getByTestId('results-table').getAttribute('data-row-count')
    )
    if (!stream.value.finished)
      throw new Error(`the streamed analysis did not complete in time (${streamedRows} rows)`)

    if (verbose) {
      const slow = (m: Measured): string =>
        m.gaps.flatMap((g, i) => (g > 50 ? [`#${i} ${g.toFixed(0)} ms`] : [])).join(', ') || 'none'
      const long = (m: Measured): string =>
        m.longTasks.map((t) => t.toFixed(0)).join(', ') || 'none'
      for (const [name, run] of [
        ['table', table],
        ['transposed', transposed],
        ['streaming', stream]
      ] as const) {
        log(
          `${name}: frames over 50 ms ${slow(run.value)}; long tasks ${long(run.value)}; main thread ${JSON.stringify(run.tasks)}`
        )
      }
    }
    const scrollStats = stats(table.value)
    const transposedStats = stats(transposed.value)
    const streamStats = stats(stream.value)
    const loadEnd = os.loadavg()[0]!
    const figures = {
      rows: ROWS,
      scroll_p50_frame_ms: scrollStats.p50,
      scroll_p95_frame_ms: scrollStats.p95,
      scroll_max_frame_ms: scrollStats.max,
      scroll_long_tasks: scrollStats.longTasks,
      scroll_long_task_max_ms: scrollStats.longTaskMax,
      scroll_cpu_long_tasks: table.tasks.cpuLong,
      scroll_cpu_task_max_ms: table.tasks.cpuMax,
      scroll_reached_end: table.value.reachedEnd,
      dom_rows_max: table.value.domMax,
      transposed_p50_frame_ms: transposedStats.p50,
      transposed_p95_frame_ms: transposedStats.p95,
      transposed_max_frame_ms: transposedStats.max,
      transposed_long_tasks: transposedStats.longTasks,
      transposed_long_task_max_ms: transposedStats.longTaskMax,
      transposed_cpu_long_tasks: transposed.tasks.cpuLong,
      transposed_cpu_task_max_ms: transposed.tasks.cpuMax,
      transposed_reached_end: transposed.value.reachedEnd,
      dom_cols_max: transposed.value.domMax,
      stream_rows: streamedRows,
      stream_batches: batches,
      stream_s: streamStats.seconds,
      stream_p50_frame_ms: streamStats.p50,
      stream_p95_frame_ms: streamStats.p95,
      stream_max_frame_ms: streamStats.max,
      stream_long_tasks: streamStats.longTasks,
      stream_long_task_max_ms: streamStats.longTaskMax,
      stream_cpu_long_tasks: stream.tasks.cpuLong,
      stream_cpu_task_max_ms: stream.tasks.cpuMax,
      stream_main_thread_busy_pct: Math.round((100 * stream.tasks.cpuBusy) / stream.value.ms),
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
    const head = [
      'phase',
      'frames',
      'p50 ms',
      'p95 ms',
      'max ms',
      'long',
      'long max',
      'cpu≥50',
      'cpu max'
    ]
    const widths = [18, 6, 7, 7, 7, 5, 8, 7, 7]
    const cells = (values: Array<string | number>): string =>
      values
        .map((v, i) => (i === 0 ? String(v).padEnd(widths[i]!) : String(v).padStart(widths[i]!)))
        .join(' ')
    const line = (name: string, f: FrameStats, t: MainThreadTasks, notes: string): string =>
      `${cells([name, f.frames, f.p50.toFixed(1), f.p95.toFixed(1), f.max.toFixed(1), f.longTasks, f.longTaskMax.toFixed(0), t.cpuLong, t.cpuMax])}   ${notes}`
    console.log('')
    console.log(`${cells(head)}   notes`)
    console.log(
      line(
        'table scroll',
        scrollStats,
        table.tasks,
        `${table.value.domMax} DOM rows at most of ${ROWS}; ${(table.value.scrollPx / 1000).toFixed(0)}k px; end reached: ${table.value.reachedEnd}`
      )
    )
    console.log(
      line(
        'transposed scroll',
        transposedStats,
        transposed.tasks,
        `${transposed.value.domMax} DOM columns at most; ${(transposed.value.scrollPx / 1000).toFixed(0)}k px; end reached: ${transposed.value.reachedEnd}`
      )
    )
    console.log(
      line(
        'streaming',
        streamStats,
        stream.tasks,
        `${streamedRows} rows in ${batches} batches over ${streamStats.seconds} s; page main thread busy ${figures.stream_main_thread_busy_pct} %`
      )
    )
    console.log('')
    console.log(
      'long: PerformanceObserver long tasks (wall ≥ 50 ms); cpu≥50: main-thread tasks whose own CPU time was ≥ 50 ms (trace thread time)'
    )
    console.log(
      `load average (1 min) ${loadStart.toFixed(2)} → ${loadEnd.toFixed(2)} on ${os.cpus().length} cores (shared with other jobs); bench ${figures.bench_s} s`
    )
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED')
    console.log(
      `virtualised (≤ 100 rows or columns in the DOM of ${ROWS}): ${verdict(table.value.domMax <= 100 && transposed.value.domMax <= 100)}`
    )
    console.log(
      `smooth scroll (p95 frame ≤ 33 ms, no long task): ${verdict(scrollStats.p95 <= 33.4 && transposedStats.p95 <= 33.4 && scrollStats.longTasks + transposedStats.longTasks === 0)}`
    )
    console.log(
      `streaming (no frame > 50 ms, no long task): ${verdict(streamStats.max <= 50.1 && streamStats.longTasks === 0)}; by CPU time (no task ≥ 50 ms of the page's own work): ${verdict(stream.tasks.cpuLong === 0)}`
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
