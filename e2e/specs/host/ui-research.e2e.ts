import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { expect, test } from '@playwright/test'
import { repoRoot, startBuiltHost, type HostProcess } from '../../fixtures/host'
import { WorkbenchPage } from '../../pages/WorkbenchPage'

/**
 * The research views on the demo group: pick a row, intervene on its explanation (and a second
 * string long enough to be cut to the lens's T tokens), then sweep its position over the layers.
 * Screenshots go to artifacts/e2e/research-*.png.
 */
const shots = resolve(repoRoot, 'artifacts/e2e')
mkdirSync(shots, { recursive: true })

const SENTENCE = 'The old farmer sold cheese at the market and a dog ran to the river.'
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
  await page.getByTestId('sweep-view').screenshot({ path: resolve(shots, 'research-sweep.png') })
})
