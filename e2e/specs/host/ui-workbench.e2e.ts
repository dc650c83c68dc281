import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test as base, expect } from '@playwright/test'
import { repoRoot, startBuiltHost, type HostProcess } from '../../fixtures/host'
import { WorkbenchPage } from '../../pages/WorkbenchPage'

const shots = resolve(repoRoot, 'artifacts/e2e')
mkdirSync(shots, { recursive: true })
const shot = (name: string): string => resolve(shots, `ui-${name}.png`)

/** Content words of the demo vocabulary used below: the demo lens names each of them. */
const SENTENCE = 'The cat sat on the red chair.'

// One host for the whole file (two virtual CPU devices, temp sessions and models folders): the
// steps build on each other the way a researcher's session does, and a host start costs seconds.
let host: (HostProcess & { stop(): Promise<void> }) | undefined
let tempDir = ''
const test = base.extend<{ workbench: WorkbenchPage }>({
  workbench: async ({ page }, use) => {
    await use(new WorkbenchPage(page))
  }
})
test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  tempDir = mkdtempSync(join(tmpdir(), 'talkative-ui-e2e-'))
  mkdirSync(join(tempDir, 'models'))
  // A file that is not a session: listed as a problem, never fatal.
  mkdirSync(join(tempDir, 'sessions'))
  writeFileSync(join(tempDir, 'sessions', 's-broken-file.json'), '{"format": "talkative-sess')
  process.env.TALKATIVE_DEVICES = 'cpu:0,threads=1,budget=1GiB;cpu:1,threads=1,budget=1GiB'
  process.env.TALKATIVE_SESSIONS_DIR = join(tempDir, 'sessions')
  process.env.TALKATIVE_MODELS_DIR = join(tempDir, 'models')
  host = await startBuiltHost()
})

test.afterAll(async () => {
  await host?.stop()
  delete process.env.TALKATIVE_DEVICES
  delete process.env.TALKATIVE_SESSIONS_DIR
  delete process.env.TALKATIVE_MODELS_DIR
  rmSync(tempDir, { recursive: true, force: true })
})

test('drag the demo group onto a device card: live fit preview, then the load', async ({
  page,
  workbench
}) => {
  await workbench.open(host!.url)
  await expect(page.getByTestId('devices-empty')).toHaveText('Drag a group onto a device to begin.')
  await expect(page.getByTestId('session-problem')).toContainText('s-broken-file.json')
  await page.screenshot({ path: shot('1-empty'), fullPage: true })

  await workbench.dragOver(workbench.groupHandle('demo-words'), workbench.card('cpu:0'))
  await expect(workbench.preview('cpu:0')).toHaveAttribute('data-verdict', 'fits')
  await expect(workbench.preview('cpu:0')).toContainText(/Fits: needs \d+ MiB/)
  // Not fullPage: that resizes the viewport, and dnd-kit cancels a drag on resize.
  await page.screenshot({ path: shot('2-fit-preview') })
  await page.mouse.up()

  await expect(workbench.placement('cpu:0', 'demo-words')).toHaveAttribute('data-state', 'ready', {
    timeout: 60_000
  })
  await expect(workbench.preview('cpu:0')).toHaveCount(0)
  await expect(
    workbench.placement('cpu:0', 'demo-words').getByTestId('placement-bytes')
  ).toContainText(/\d+ MiB measured/)
  await page.screenshot({ path: shot('3-loaded'), fullPage: true })
})

test('analyse a sentence: rows stream in and each content word is named by its explanation', async ({
  page,
  workbench
}) => {
  await workbench.open(host!.url)
  await workbench.analyse(SENTENCE, { bestOfK: 8 })
  await expect(page.getByTestId('results-status')).toHaveText('completed', { timeout: 60_000 })
  const count = Number(await page.getByTestId('results-table').getAttribute('data-row-count'))
  expect(count).toBeGreaterThanOrEqual(7)
  for (const word of ['cat', 'sat', 'red', 'chair']) {
    const row = page
      .getByTestId('result-row')
      .filter({ has: page.locator(`[data-column="token"]`, { hasText: new RegExp(`^${word}$`) }) })
    await expect(row.first().getByTestId('explanation')).toContainText(word)
  }
  await expect(page.getByTestId('legend')).toContainText('MSE')
  await page.screenshot({ path: shot('4-results'), fullPage: true })

  // Sorting by MSE: numbers sort largest first on the first click, smallest first on the second.
  const mseValues = async (): Promise<number[]> =>
    (await page.locator('[data-testid="result-row"] [data-column="mse"]').allTextContents()).map(
      Number
    )
  await page.getByTestId('sort-mse').click()
  await expect(page.getByRole('columnheader', { name: /MSE ▼/ })).toHaveAttribute(
    'aria-sort',
    'descending'
  )
  const desc = await mseValues()
  expect(desc).toEqual([...desc].sort((a, b) => b - a))
  await page.getByTestId('sort-mse').click()
  const asc = await mseValues()
  expect(asc).toEqual([...asc].sort((a, b) => a - b))
  expect(asc.length).toBe(count)

  for (const view of ['transposed', 'text', 'plot'] as const) {
    await page.getByTestId(`view-${view}`).click()
  }
  await expect(page.getByTestId('metric-plot')).toBeVisible()
  await page.getByTestId('view-text').click()
  await page.getByTestId('fulltext-token').nth(2).hover()
  await expect(page.getByTestId('hover-card')).toBeVisible()
  await page.screenshot({ path: shot('5-fulltext'), fullPage: true })
  await page.getByTestId('view-table').click()
  await expect(workbench.sessions().first()).toHaveAttribute('data-status', 'completed')
})

test('cancel a long run: the rows so far are kept and the session says cancelled', async ({
  page,
  workbench
}) => {
  await workbench.open(host!.url)
  const long = Array.from(
    { length: 26 },
    () => 'The old farmer sold cheese at the market and a dog ran to the river.'
  ).join(' ')
  await workbench.analyse(long, { bestOfK: 256 })
  await expect(page.getByTestId('run-progress')).toHaveAttribute(
    'data-status',
    /running|loading|queued/
  )
  await expect(page.getByTestId('cancel-run')).toBeVisible()
  await page.screenshot({ path: shot('6-running'), fullPage: true })
  await page.getByTestId('cancel-run').click()
  await expect(page.getByTestId('run-progress')).toHaveAttribute('data-status', 'cancelled', {
    timeout: 30_000
  })
  await expect(workbench.sessions().first()).toHaveAttribute('data-status', 'cancelled')
  await page.screenshot({ path: shot('7-cancelled'), fullPage: true })
})

test('reload the page and reopen the saved analysis without recomputing; export it', async ({
  page,
  workbench
}) => {
  await workbench.open(host!.url)
  // The chosen theme survives the reload, from the first frame.
  await page.getByTestId('theme-toggle').click()
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light')
  await page.reload()
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light')
  await page.getByTestId('theme-toggle').click()
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark')
  const saved = workbench.sessions().filter({ hasText: 'The cat sat' })
  await expect(saved).toHaveCount(1)
  const jobsBefore = await page.evaluate(async () => {
    const api = (
      globalThis as unknown as {
        api: { invoke(c: string): Promise<{ ok: boolean; value: unknown[] }> }
      }
    ).api
    return (await api.invoke('jobs:list')).value.length
  })
  await saved.getByTestId('session-open').click()
  await expect(page.getByTestId('results-title')).toContainText('The cat sat')
  await expect(page.getByTestId('results-status')).toHaveText('completed')
  const catRow = page
    .getByTestId('result-row')
    .filter({ has: page.locator('[data-column="token"]', { hasText: /^cat$/ }) })
  await expect(catRow.getByTestId('explanation')).toContainText('cat')
  const jobsAfter = await page.evaluate(async () => {
    const api = (
      globalThis as unknown as {
        api: { invoke(c: string): Promise<{ ok: boolean; value: unknown[] }> }
      }
    ).api
    return (await api.invoke('jobs:list')).value.length
  })
  expect(jobsAfter).toBe(jobsBefore)
  await page.screenshot({ path: shot('8-reopened'), fullPage: true })

  const [csv] = await Promise.all([
    page.waitForEvent('download'),
    saved.getByTestId('export-csv').click()
  ])
  const csvText = readFileSync((await csv.path())!, 'utf8')
  const lines = csvText.trim().split('\n')
  // The public row schema (docs/public-schema.md): the predecessor's column names.
  expect(lines[0]).toBe(
    'position,token,token_id,explanation,explanation_structured,mse,relative_rmse,kl_divergence,token_salience,logit_lens_top,source_text'
  )
  const catLine = lines.find((l) => l.split(',')[1] === 'cat')
  expect(catLine?.split(',')[3]).toContain('cat')

  const [json] = await Promise.all([
    page.waitForEvent('download'),
    saved.getByTestId('export-json').click()
  ])
  const exported = JSON.parse(readFileSync((await json.path())!, 'utf8')) as {
    metadata: {
      group_id: string
      bundle_hash: string
      status: string
      options: { seed: number; best_of_k: number }
    }
    data: Array<{ token: string; explanation_structured: string[] }>
    session: { format: string; input: { text: string }; status: string }
  }
  expect(exported.session).toMatchObject({
    format: 'talkative-session',
    status: 'completed',
    input: { text: SENTENCE }
  })
  expect(exported.metadata).toMatchObject({ group_id: 'demo-words', status: 'completed' })
  expect(exported.metadata.options).toMatchObject({ seed: 42, best_of_k: 8 })
  expect(exported.metadata.bundle_hash).toMatch(/^[0-9a-f]{16,}/)
  expect(exported.data.find((r) => r.token === 'chair')?.explanation_structured).toContain('chair')

  // Import the exported file back: validated, listed as a new session.
  const before = await workbench.sessions().count()
  await page.getByTestId('import-file').setInputFiles((await json.path())!)
  await expect(workbench.sessions()).toHaveCount(before + 1)
  await page.getByTestId('import-file').setInputFiles({
    name: 'bad.json',
    mimeType: 'application/json',
    buffer: Buffer.from('{"format":"nope"}')
  })
  await expect(page.getByTestId('import-error')).toContainText(
    'bad.json is neither a session nor an analysis'
  )
})

test('keyboard placement: move the placed group to the other device without a mouse', async ({
  page,
  workbench
}) => {
  await workbench.open(host!.url)
  await expect(workbench.placement('cpu:0', 'demo-words')).toHaveAttribute('data-state', 'ready', {
    timeout: 30_000
  })
  const handle = workbench
    .placement('cpu:0', 'demo-words')
    .getByRole('button', { name: /Move demo-words/ })
  await handle.focus()
  await page.keyboard.press('Space')
  await expect(page.getByTestId('drag-overlay')).toBeVisible()
  await page.keyboard.press('ArrowRight')
  await expect(workbench.preview('cpu:1')).toHaveAttribute('data-verdict', 'fits')
  await expect(page.getByTestId('announcer')).toContainText(
    /demo-words fits on cpu:1|is over device cpu:1/
  )
  await page.screenshot({ path: shot('9-keyboard-preview') })
  await page.keyboard.press('Space')
  await expect(workbench.placement('cpu:1', 'demo-words')).toHaveAttribute('data-state', 'ready', {
    timeout: 60_000
  })
  await expect(workbench.placement('cpu:0', 'demo-words')).toHaveCount(0, { timeout: 30_000 })
  await page.screenshot({ path: shot('10-moved'), fullPage: true })
})

test('chat, generate, generate + analyse, and an exact re-run of a saved session', async ({
  page,
  workbench
}) => {
  await workbench.open(host!.url)
  // Chat: the messages go to main as they are and the group's own template renders them.
  await page.getByRole('radiogroup', { name: 'Input kind' }).getByText('Chat').click()
  await page.getByLabel('Message 1', { exact: true }).fill('the cat sat on the chair')
  await page.getByTestId('opt-best-of-k').fill('4')
  await page.getByTestId('analyse').click()
  await expect(page.getByTestId('results-status')).toHaveText('completed', { timeout: 60_000 })
  const tokens = await page
    .locator('[data-testid="result-row"] [data-column="token"]')
    .allTextContents()
  expect(tokens.filter((t) => t === '<start_of_turn>')).toHaveLength(2)
  expect(tokens.at(-1)).toBe('model')
  const catRow = page
    .getByTestId('result-row')
    .filter({ has: page.locator('[data-column="token"]', { hasText: /^cat$/ }) })
  await expect(catRow.getByTestId('explanation')).toContainText('cat')
  await page.screenshot({ path: shot('11-chat'), fullPage: true })

  // Generate: continuations come back as full texts (prompt, specials, continuation).
  await page.getByRole('radiogroup', { name: 'Input kind' }).getByText('Plain text').click()
  await page.getByTestId('prompt-text').fill('the dog ran to the')
  await page.getByTestId('generate').click()
  const completion = page.getByTestId('completions').locator('li').first()
  await expect(completion).toContainText('the dog ran to the', { timeout: 60_000 })
  const full = (await completion.locator('pre').textContent())!
  expect(full.split(' ').length).toBeGreaterThan('<bos> the dog ran to the'.split(' ').length)
  await page.screenshot({ path: shot('12-generated'), fullPage: true })

  // Generate + analyse: one job; the rows cover the prompt and the continuation.
  await page.getByTestId('generate-analyse').click()
  await expect(page.getByTestId('run-progress')).toHaveAttribute('data-status', 'done', {
    timeout: 60_000
  })
  const rows = Number(await page.getByTestId('results-table').getAttribute('data-row-count'))
  expect(rows).toBeGreaterThan(6)

  // Re-run the chat session: same bundle, options and seed give the same rows, bit for bit.
  const chatSession = workbench.sessions().filter({ hasText: 'user: the cat sat' }).first()
  const originalId = (await chatSession.getAttribute('data-session-id'))!
  const before = await workbench.sessions().count()
  await chatSession.getByTestId('session-rerun').click()
  await expect(workbench.sessions()).toHaveCount(before + 1)
  const rerun = workbench.sessions().filter({ hasText: '(re-run)' }).first()
  await expect(rerun).toHaveAttribute('data-status', 'completed', { timeout: 60_000 })
  const rerunId = (await rerun.getAttribute('data-session-id'))!
  const [a, b] = await page.evaluate(
    async (ids) => {
      const api = (
        globalThis as unknown as {
          api: {
            invoke(c: string, i: unknown): Promise<{ ok: boolean; value: { rows: unknown[] } }>
          }
        }
      ).api
      return Promise.all(
        ids.map(async (id) => (await api.invoke('sessions:get', { id })).value.rows)
      )
    },
    [originalId, rerunId]
  )
  expect(b).toEqual(a)
  await page.screenshot({ path: shot('13-rerun'), fullPage: true })
})
