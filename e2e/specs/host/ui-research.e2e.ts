import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import { repoRoot, startBuiltHost, type HostProcess } from '../../fixtures/host'
import { WorkbenchPage } from '../../pages/WorkbenchPage'

/**
 * The research views on the demo group: pick a row, intervene on its explanation (and a second
 * string long enough to be cut to the lens's T tokens), then sweep its position over the layers
 * (with the trained lenses, then with one lens at a subset of layers); an analysis with optimised
 * explanations shows each row's MSE before the optimiser. Screenshots go to
 * artifacts/e2e/research-*.png.
 */
const shots = resolve(repoRoot, 'artifacts/e2e')
mkdirSync(shots, { recursive: true })

const SENTENCE = 'The old farmer sold cheese at the market and a dog ran to the river.'
const OPTIMISED = 'A small cat sat on the warm mat by the door.'
const LONG_STRING = Array.from({ length: 12 }, () => 'the big red dog ran home').join(' ')

let host: (HostProcess & { stop(): Promise<void> }) | undefined
let tempDir = ''
test.describe.configure({ mode: 'serial' })
test.use({ viewport: { width: 1600, height: 1000 } })

test.beforeAll(async () => {
  tempDir = mkdtempSync(join(tmpdir(), 'talkative-research-e2e-'))
  mkdirSync(join(tempDir, 'models'))
  mkdirSync(join(tempDir, 'sessions'))
  host = await startBuiltHost([], {
    TALKATIVE_DEVICES: 'cpu:0,threads=2,budget=1GiB',
    TALKATIVE_SESSIONS_DIR: join(tempDir, 'sessions'),
    TALKATIVE_MODELS_DIR: join(tempDir, 'models')
  })
})

test.afterAll(async () => {
  await host?.stop()
  rmSync(tempDir, { recursive: true, force: true })
})

test('intervene on a picked row: three runs side by side, divergences, truncation said', async ({
  page
}) => {
  const workbench = new WorkbenchPage(page)
  await workbench.open(host!.url)
  await workbench.analyse(SENTENCE, { bestOfK: 4 })
  await workbench.waitForCompleted(SENTENCE)
  await expect(page.getByTestId('row-actions')).toContainText('Click a row')
  await workbench.row(3).click()
  await expect(page.getByTestId('picked-row')).toHaveText('Row 3')
  await page.getByTestId('intervene').click()
  const editor = page.getByTestId('intervention-editor')
  await expect(editor).toBeVisible()
  const explanation = (await workbench.row(3).locator('[data-column="explanation"]').innerText())
    .replace(/\s+/g, ' ')
    .trim()
  // Pre-filled with the row's explanation; a second, over-long string is added on its own line.
  await expect(page.getByTestId('intervention-strings')).toHaveValue(/\S/)
  const strings = page.getByTestId('intervention-strings')
  await strings.fill(`${await strings.inputValue()}\n${LONG_STRING}`)
  await page.getByTestId('intervention-next-position').fill('5')
  await page.getByTestId('intervention-max-new-tokens').fill('6')
  // A prediction position before the intervened one is refused in place, naming it.
  await page.getByTestId('intervention-next-position').fill('1')
  await page.getByTestId('intervention-run').click()
  await expect(page.getByTestId('intervention-error')).toContainText('at or after')
  await page.getByTestId('intervention-next-position').fill('5')
  await page.getByTestId('intervention-run').click()

  await expect(page.getByTestId('results-status')).toHaveText('completed', { timeout: 60_000 })
  await expect(page.getByTestId('run-status')).toHaveText('Done · 2 interventions at position 3')
  const cards = page.getByTestId('intervention-row')
  await expect(cards).toHaveCount(2)
  for (const card of await cards.all()) {
    for (const run of ['original', 'intervention', 'decoded'])
      await expect(card.getByTestId(`intervention-${run}`).locator('li')).toHaveCount(10)
    for (const metric of ['kl-int', 'kl-decoded', 'mse-int', 'mse-decoded'])
      await expect(card.locator(`[data-metric="${metric}"]`)).toHaveText(/\d/)
  }
  await expect(cards.first()).toContainText('predictions after position 5')
  await expect(cards.first()).toContainText(explanation.split(' ')[0]!)
  // The long string was cut from its start to the lens's T tokens: the card says so.
  await expect(cards.first().getByTestId('intervention-truncated')).toHaveCount(0)
  await expect(cards.nth(1).getByTestId('intervention-truncated')).toContainText('Truncated to T=')
  await page.screenshot({ path: resolve(shots, 'research-intervention.png'), fullPage: true })
})

test('sweep a picked row over the layers: one row per layer and the metric plot', async ({
  page
}) => {
  const workbench = new WorkbenchPage(page)
  await workbench.open(host!.url)
  // The analysis of the first test, reopened from the history.
  await workbench
    .sessions()
    .filter({ hasText: SENTENCE.slice(0, 20) })
    .filter({ hasNotText: 'Intervene' })
    .first()
    .getByTestId('session-open')
    .click()
  await expect(page.getByTestId('results-status')).toHaveText('completed')
  await workbench.row(4).click()
  await page.getByTestId('sweep-layers').click()
  await expect(page.getByTestId('sweep-picker')).toBeVisible()
  await expect(page.getByTestId('sweep-lenses')).toHaveValue('trained')
  await page.getByTestId('sweep-run').click()
  await expect(page.getByTestId('results-title')).toContainText('Sweep @4')
  await expect(page.getByTestId('results-status')).toHaveText('completed', { timeout: 60_000 })
  const rows = page.getByTestId('sweep-row')
  expect(await rows.count()).toBeGreaterThan(1)
  // At least one layer is explained by a lens trained there.
  await expect(page.locator('[data-testid="sweep-row"][data-trained="yes"]').first()).toBeVisible()
  const plot = page.getByTestId('sweep-plot').getByTestId('metric-plot')
  await expect(plot).toHaveAttribute('aria-label', /MSE per layer/)
  await expect(page.getByTestId('sweep-plot').getByTestId('plot-x-axis')).toContainText('layer')
  await page.getByTestId('sweep-metric-relativeRmse').click()
  await expect(plot).toHaveAttribute('aria-label', /Relative RMSE per layer/)
  await page.getByTestId('sweep-metric-klDivergence').click()
  await expect(plot).toHaveAttribute('aria-label', /KL per layer/)
  await page.getByTestId('sweep-metric-mse').click()
  await expect(page.getByTestId('run-status')).toHaveText(
    `Done · ${await rows.count()} layers at position 4`
  )
  await page.getByTestId('sweep-view').screenshot({ path: resolve(shots, 'research-sweep.png') })
})

/** What code passed to `evaluate` uses of the page (e2e compiles without the DOM lib). */
type PageGlobals = {
  runTexts: string[]
  document: { body: unknown; querySelector(s: string): { textContent: string | null } | null }
  MutationObserver: new (callback: () => void) => {
    observe(target: unknown, options: Record<string, boolean>): void
  }
}

/** The saved session of the result on screen, read from the sessions folder (exact numbers). */
async function savedSession(page: Page): Promise<{
  options: { optimise?: unknown }
  sweep?: { lenses: string; layers?: number[] }
  rows: Array<{ mse: number; mseBefore?: number; rollouts?: number; lensId?: string }>
}> {
  const id = await page.getByTestId('results').getAttribute('data-session-id')
  return JSON.parse(readFileSync(join(tempDir, 'sessions', `${id}.json`), 'utf8'))
}

test('optimise explanations from the console: MSE before per row, never below the MSE', async ({
  page
}) => {
  const workbench = new WorkbenchPage(page)
  await workbench.open(host!.url)
  await page.getByTestId('prompt-text').fill(OPTIMISED)
  await page.getByTestId('opt-optimise').check()
  await expect(page.getByTestId('opt-best-of-k')).toBeDisabled()
  await expect(page.getByTestId('opt-optimise-samplesPerIteration')).toHaveValue('16')
  await expect(page.getByTestId('opt-optimise-maxTempIncreases')).toHaveValue('2')
  await expect(page.getByTestId('opt-optimise-tempIncreaseFactor')).toHaveValue('1.5')
  // A value the schema refuses is named in place before anything runs.
  await page.getByTestId('opt-optimise-samplesPerIteration').fill('0')
  await page.getByTestId('analyse').click()
  await expect(page.getByTestId('console-error')).toHaveText(
    'Samples per iteration must be between 1 and 512'
  )
  await page.getByTestId('opt-optimise-samplesPerIteration').fill('8')
  // Every text the run line shows while the run goes (its steps pass too fast to wait for one).
  await page.evaluate(() => {
    const g = globalThis as unknown as PageGlobals
    const seen: string[] = []
    g.runTexts = seen
    new g.MutationObserver(() => {
      const text = g.document.querySelector('[data-testid="run-status"]')?.textContent
      if (text && seen.at(-1) !== text) seen.push(text)
    }).observe(g.document.body, { subtree: true, childList: true, characterData: true })
  })
  await page.getByTestId('analyse').click()
  await workbench.waitForCompleted(OPTIMISED)
  // The optimiser's own progress: its step within each batch, from the job's stage.
  const runTexts = await page.evaluate(() => (globalThis as unknown as PageGlobals).runTexts)
  expect(
    runTexts.some((t) => /^Running · .*optimising batch \d+ of \d+, step \d+ of \d+: /.test(t)),
    runTexts.join('\n')
  ).toBe(true)
  await expect(page.getByTestId('results-meta')).toContainText(
    'optimised (8 samples per iteration)'
  )

  const saved = await savedSession(page)
  expect(saved.options.optimise).toMatchObject({ samplesPerIteration: 8 })
  expect(saved.rows.length).toBeGreaterThan(5)
  await expect(page.getByTestId('run-status')).toHaveText(`Done · ${saved.rows.length} positions`)
  // The optimiser keeps a candidate only when it lowers the MSE: never above its start, exactly.
  for (const r of saved.rows) {
    expect(r.mseBefore).toBeDefined()
    expect(r.mse).toBeLessThanOrEqual(r.mseBefore!)
    expect(r.rollouts).toBeGreaterThanOrEqual(8)
  }
  expect(saved.rows.some((r) => r.mse < r.mseBefore!)).toBe(true)

  await expect(workbench.header('mseBefore')).toHaveText(/MSE before/)
  await expect(workbench.header('rollouts')).toHaveText(/Rollouts/)
  const before = workbench.cells('mseBefore')
  const after = workbench.cells('mse')
  await expect(before).toHaveCount(saved.rows.length)
  for (let i = 0; i < saved.rows.length; i++) {
    const shownBefore = Number(await before.nth(i).innerText())
    const shown = Number(await after.nth(i).innerText())
    expect(Number.isFinite(shownBefore), `row ${i} MSE before`).toBe(true)
    expect(shown).toBeLessThanOrEqual(shownBefore)
  }
  await expect(workbench.cells('rollouts').first()).toHaveText(/^\d+$/)
  // The transposed view draws the optimised rows too.
  await page.getByTestId('view-transposed').click()
  await expect(page.getByTestId('transposed-view')).toBeVisible()
  await page.getByTestId('view-table').click()
  await page.screenshot({ path: resolve(shots, 'research-optimise.png'), fullPage: true })

  // A sweep of one of its rows with the job's lens at a subset of layers (the predecessor's way).
  await workbench.row(2).click()
  await page.getByTestId('sweep-layers').click()
  await page.getByTestId('sweep-lenses').selectOption('fixed')
  await page.getByTestId('sweep-layers-input').fill('9')
  await page.getByTestId('sweep-run').click()
  await expect(page.getByTestId('sweep-error')).toContainText('Layer 9 is outside the model')
  await page.getByTestId('sweep-layers-input').fill('0-2')
  await page
    .getByTestId('sweep-picker')
    .screenshot({ path: resolve(shots, 'research-sweep-picker.png') })
  await page.getByTestId('sweep-run').click()
  await expect(page.getByTestId('results-title')).toContainText('Sweep @2')
  await expect(page.getByTestId('results-status')).toHaveText('completed', { timeout: 60_000 })
  const rows = page.getByTestId('sweep-row')
  await expect(rows).toHaveCount(3)
  expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-layer')))).toEqual([
    '0',
    '1',
    '2'
  ])
  await expect(page.getByTestId('run-status')).toHaveText('Done · 3 layers at position 2')
  const sweep = await savedSession(page)
  expect(sweep.sweep).toMatchObject({ lenses: 'fixed', layers: [0, 1, 2] })
  // One lens explained every layer; it was trained at one of them at most.
  expect(new Set(sweep.rows.map((r) => r.lensId)).size).toBe(1)
  expect(await page.locator('[data-testid="sweep-row"][data-trained="yes"]').count()).toBeLessThan(
    2
  )
})
