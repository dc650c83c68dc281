import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test as base, expect, type Locator, type Page } from '@playwright/test'
import { repoRoot, startBuiltHost, type HostProcess } from '../../fixtures/host'
import { WorkbenchPage } from '../../pages/WorkbenchPage'

/**
 * The workbench as a researcher reads results, at a large (1600×1000) and a small (1100×700)
 * window: layout, table, plot, text, and the state the page reports. Screenshots of every step go
 * to artifacts/e2e/results-*.png.
 */
const shots = resolve(repoRoot, 'artifacts/e2e')
mkdirSync(shots, { recursive: true })

/** Two words the demo vocabulary does not have (the model receives <unk> for both). */
const SENTENCE = 'The cat sat on the red chair. The old captain saw a zebra.'
const LONG = Array.from(
  { length: 10 },
  () => 'The old farmer sold cheese at the market and a dog ran to the river.'
).join(' ')
/** More tokens than the demo model takes (512): the run fails before its first row. */
const TOO_LONG = Array.from(
  { length: 40 },
  () => 'The old farmer sold cheese at the market and a dog ran to the river.'
).join(' ')

const SIZES = [
  { width: 1600, height: 1000 },
  { width: 1100, height: 700 }
] as const

let host: (HostProcess & { stop(): Promise<void> }) | undefined
let tempDir = ''
const test = base.extend<{ workbench: WorkbenchPage }>({
  workbench: async ({ page }, use) => {
    await use(new WorkbenchPage(page))
  }
})
test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  tempDir = mkdtempSync(join(tmpdir(), 'talkative-results-e2e-'))
  mkdirSync(join(tempDir, 'models'))
  mkdirSync(join(tempDir, 'sessions'))
  process.env.TALKATIVE_DEVICES = 'cpu:0,threads=2,budget=1GiB'
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

type Box = { x: number; y: number; width: number; height: number }
/** The page's window, for code passed to `evaluate` (e2e compiles without the DOM lib). */
type PageGlobals = {
  scrollY: number
  getComputedStyle(el: unknown): { textAlign: string; backgroundColor: string }
}
async function box(locator: Locator): Promise<Box> {
  const b = await locator.boundingBox()
  if (!b) throw new Error('element is not on screen')
  return b
}

/** The page's `window.api`, for reading what main saved (e2e code is typed without the DOM lib). */
async function invoke<T>(page: Page, channel: string, input?: unknown): Promise<T> {
  return page.evaluate(
    async ([c, i]) => {
      const api = (
        globalThis as unknown as {
          api: {
            invoke(
              c: string,
              i?: unknown
            ): Promise<{ ok: boolean; value: unknown; error?: { message: string } }>
          }
        }
      ).api
      const r = await api.invoke(c as string, i)
      if (!r.ok) throw new Error(r.error?.message)
      return r.value
    },
    [channel, input] as const
  ) as Promise<T>
}

async function openSession(workbench: WorkbenchPage, textStart: string): Promise<void> {
  // Session names are the text's start (then the lens): match on that start.
  const item = workbench
    .sessions()
    .filter({ hasText: textStart.slice(0, 30) })
    .first()
  await item.getByTestId('session-open').click()
  await expect(workbench.page.getByTestId('results-title')).toContainText(textStart.slice(0, 16))
}

for (const size of SIZES) {
  const tag = `${size.width}`
  const shot = (name: string): string => resolve(shots, `results-${name}-${tag}.png`)

  test.describe(`at ${size.width}×${size.height}`, () => {
    test.use({ viewport: size })

    test('after Analyse the first rows are visible without scrolling; unknown words are counted', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await workbench.analyse(SENTENCE, { bestOfK: 8 })
      await workbench.waitForCompleted(SENTENCE)
      // Nothing scrolled to get there: neither the page nor the main column.
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).scrollY)).toBe(0)
      expect(await page.locator('.app__center').evaluate((el) => el.scrollTop)).toBe(0)
      const first = await box(workbench.row(0))
      expect(first.y).toBeGreaterThan(0)
      expect(first.y + first.height).toBeLessThanOrEqual(size.height)
      // Several rows, not just the first, are in view.
      const fifth = await box(workbench.row(4))
      expect(fifth.y + fifth.height).toBeLessThanOrEqual(size.height)
      // "captain" and "zebra" share the unknown-word id: the page says the model saw <unk> there.
      await expect(page.getByTestId('oov-note')).toContainText('2 positions')
      await expect(page.getByTestId('oov-note')).toContainText('captain')
      await page.screenshot({ path: shot('layout-after-analyse') })
    })

    test('numbers right-aligned in one format per column; headers never clip or overlap', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await openSession(workbench, SENTENCE)
      for (const column of ['mse', 'relativeRmse', 'klDivergence']) {
        const texts = (await workbench.cells(column).allTextContents()).map((t) => t.trim())
        expect(texts.length).toBeGreaterThan(5)
        const scientific = texts.every((t) => /^\d\.\d{2}e[+-]\d+$/.test(t))
        const decimals = new Set(texts.map((t) => /^\d+\.(\d+)$/.exec(t)?.[1]?.length ?? -1))
        expect(
          scientific || (decimals.size === 1 && !decimals.has(-1)),
          `${column}: ${texts.join(' ')}`
        ).toBe(true)
        expect(
          await workbench
            .cells(column)
            .first()
            .evaluate((el) => (globalThis as unknown as PageGlobals).getComputedStyle(el).textAlign)
        ).toBe('right')
      }
      const headers = page.locator('[role="columnheader"]')
      const n = await headers.count()
      let right = 0
      for (let i = 0; i < n; i++) {
        const h = headers.nth(i)
        const label = h.locator('.rt-sort__label')
        expect(
          await label.evaluate((el) => el.scrollWidth <= el.clientWidth + 0.5),
          `header ${i} clipped`
        ).toBe(true)
        const b = await box(h)
        expect(b.x).toBeGreaterThanOrEqual(right - 0.5)
        right = b.x + b.width
      }
      await page.screenshot({ path: shot('table-formats') })
    })

    test('the logit lens column shows; headers stay over their cells when the table scrolls sideways', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await page.getByTestId('opt-logit-lens').check()
      await workbench.analyse('The dog ran to the river and the cat sat.', { bestOfK: 4 })
      await workbench.waitForCompleted('The dog ran to the river')
      await expect(workbench.header('logitLensTop')).toBeVisible()
      const lens = (await workbench.cells('logitLensTop').allTextContents()).map((t) => t.trim())
      expect(lens.length).toBeGreaterThan(3)
      expect(lens.every((t) => t.length > 0 && t !== '—')).toBe(true)
      // Widen the explanation column by dragging its edge: the table becomes wider than its box.
      const handle = page.getByTestId('resize-explanation')
      const h = await box(handle)
      await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2)
      await page.mouse.down()
      await page.mouse.move(h.x + 600, h.y + h.height / 2, { steps: 10 })
      await page.mouse.up()
      const scroller = page.getByTestId('results-scroller')
      const overflow = await scroller.evaluate((el) => el.scrollWidth - el.clientWidth)
      expect(overflow).toBeGreaterThan(200)
      await scroller.evaluate((el) => (el.scrollLeft = el.scrollWidth))
      expect(await scroller.evaluate((el) => el.scrollLeft)).toBeGreaterThan(200)
      for (const column of ['mse', 'relativeRmse', 'klDivergence', 'logitLensTop']) {
        const head = await box(workbench.header(column))
        const cell = await box(workbench.row(1).locator(`[data-column="${column}"]`))
        expect(Math.abs(head.x - cell.x), column).toBeLessThan(1)
        expect(Math.abs(head.width - cell.width), column).toBeLessThan(1)
      }
      await page.screenshot({ path: shot('table-scrolled-sideways') })
    })

    test('filter rows, read the column summary, switch to a log scale; both legends show', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await openSession(workbench, SENTENCE)
      await expect(page.getByTestId('legend')).toContainText('MSE')
      await expect(page.getByTestId('salience-legend')).toContainText('Salience')

      const total = await workbench.rows.count()
      await page.getByTestId('row-filter').fill('cat')
      await expect(page.getByTestId('filter-count')).toHaveText(/^\d+ of \d+$/)
      const shown = await workbench.rows.count()
      expect(shown).toBeGreaterThan(0)
      expect(shown).toBeLessThan(total)
      for (const text of await workbench.rows.allTextContents())
        expect(text.toLowerCase()).toContain('cat')
      await page.getByTestId('row-filter').fill('')

      await page.getByTestId('summary-toggle').check()
      const summary = page.getByTestId('column-summary')
      await expect(summary).toBeVisible()
      const stat = (name: string): Locator =>
        summary.locator(`[data-stat="${name}"] [data-column="mse"]`)
      const mse = (await workbench.cells('mse').allTextContents()).map((t) => t.trim())
      const numbers = mse.map(Number)
      expect(await stat('min').textContent()).toBe(mse[numbers.indexOf(Math.min(...numbers))])
      expect(await stat('max').textContent()).toBe(mse[numbers.indexOf(Math.max(...numbers))])
      const session = await invoke<{ rows: Array<{ mse: number }> }>(page, 'sessions:get', {
        id: await page.getByTestId('results').getAttribute('data-session-id')
      })
      const mean = session.rows.reduce((a, r) => a + r.mse, 0) / session.rows.length
      expect(Math.abs(Number(await stat('mean').textContent()) - mean) / mean).toBeLessThan(0.01)
      await expect(summary.locator('[data-stat="median"]')).toContainText('median')
      await page.screenshot({ path: shot('summary-and-legends') })

      const colours = async (): Promise<string[]> =>
        workbench
          .cells('mse')
          .locator('.metric')
          .evaluateAll((els) =>
            els.map(
              (el) => (globalThis as unknown as PageGlobals).getComputedStyle(el).backgroundColor
            )
          )
      const linear = await colours()
      await page.getByTestId('scale-log').check()
      await expect(page.getByTestId('legend')).toContainText('log')
      expect(await colours()).not.toEqual(linear)
      await page.getByTestId('view-plot').click()
      await expect(page.getByTestId('metric-plot')).toHaveAttribute('data-scale', 'log')
      await page.screenshot({ path: shot('log-scale-plot') })
    })

    test('plot: axes, labelled band, the <bos> outlier marked not flattening; hover shows a row, a click opens it', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await openSession(workbench, SENTENCE)
      await page.getByTestId('view-plot').click()
      const plot = page.getByTestId('metric-plot')
      await expect(plot).toHaveAttribute('data-scale', 'linear')
      expect(
        await page.getByTestId('plot-x-axis').locator('.plot__tick').count()
      ).toBeGreaterThanOrEqual(3)
      expect(
        await page.getByTestId('plot-y-axis').locator('.plot__tick').count()
      ).toBeGreaterThanOrEqual(3)
      await expect(page.getByTestId('plot-x-axis')).toContainText('token position')
      await expect(page.getByTestId('plot-y-axis')).toContainText('MSE')
      await expect(page.getByTestId('plot-band-label')).toHaveText(
        'colour scale: 5th–95th percentile'
      )
      // <bos> (position 0) lies far above the rest: it is marked on the top edge, not drawn to scale.
      await expect(page.getByTestId('plot-clipped').first()).toHaveAttribute('data-position', '0')
      await expect(page.getByTestId('plot-note')).toContainText('beyond the y range')

      const b = await box(plot)
      await page.mouse.move(b.x + b.width * 0.6, b.y + b.height / 2)
      const tooltip = page.getByTestId('plot-tooltip')
      await expect(tooltip).toBeVisible()
      const position = Number(await tooltip.getAttribute('data-position'))
      expect(position).toBeGreaterThan(0)
      await page.screenshot({ path: shot('plot-hover') })
      await page.mouse.click(b.x + b.width * 0.6, b.y + b.height / 2)
      await expect(page.getByTestId('view-table')).toHaveAttribute('aria-selected', 'true')
      const row = workbench.row(position)
      await expect(row).toHaveAttribute('data-focused', 'true')
      const r = await box(row)
      expect(r.y + r.height).toBeLessThanOrEqual(size.height)
      await page.screenshot({ path: shot('plot-click-to-row') })

      await page.getByTestId('view-plot').click()
      await page.getByTestId('scale-log').check()
      await expect(plot).toHaveAttribute('data-scale', 'log')
      await expect(plot).toHaveAttribute('data-clipped', '0')
    })

    test('the full text view wraps like prose; a click on a token opens its row', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await workbench.analyse(LONG, { bestOfK: 1 })
      await workbench.waitForCompleted(LONG)
      await page.getByTestId('view-text').click()
      const text = page.locator('.fulltext__tokens')
      const { scrollWidth, clientWidth, scrollHeight } = await text.evaluate((el) => ({
        scrollWidth: el.scrollWidth,
        clientWidth: el.clientWidth,
        scrollHeight: el.scrollHeight
      }))
      expect(scrollWidth).toBeLessThanOrEqual(clientWidth + 1)
      expect(scrollHeight).toBeGreaterThan(4 * 24)
      const token = page.locator('[data-testid="fulltext-token"][data-position="40"]')
      await token.scrollIntoViewIfNeeded()
      await token.hover()
      await expect(page.getByTestId('hover-card')).toContainText('@40')
      await page.screenshot({ path: shot('fulltext-wrapped') })
      await token.click()
      await expect(workbench.row(40)).toHaveAttribute('data-focused', 'true')
      const r = await box(workbench.row(40))
      expect(r.y + r.height).toBeLessThanOrEqual(size.height)
    })

    test('the first Analyse on a fresh start says why it waits, then runs', async ({
      page,
      workbench
    }) => {
      // Hold everything the host sends until the page has been checked, as a first start that is
      // still preparing the demo group would.
      let release = (): void => undefined
      const released = new Promise<void>((r) => (release = r))
      await page.routeWebSocket(/\/ipc/, (ws) => {
        const server = ws.connectToServer()
        ws.onMessage((m) => server.send(m))
        server.onMessage((m) => void released.then(() => ws.send(m)))
      })
      await page.goto(host!.url)
      await expect(page.getByTestId('console-not-ready')).toContainText(
        'Waiting for the model library'
      )
      await expect(page.getByTestId('analyse')).toBeDisabled()
      await page.getByTestId('prompt-text').fill('The cat sat on the mat.')
      await page.screenshot({ path: shot('fresh-start-waiting') })
      release()
      // As soon as the group is in the Group select, Analyse works.
      await expect(page.getByTestId('group-picker').locator('option')).not.toHaveCount(0, {
        timeout: 30_000
      })
      await expect(page.getByTestId('analyse')).toBeEnabled()
      await expect(page.getByTestId('console-not-ready')).toHaveCount(0)
      await page.getByTestId('analyse').click()
      await workbench.waitForCompleted('The cat sat on the mat.')
      await expect(page.getByTestId('console-error')).toHaveCount(0)
    })

    test('a finished or failed run reopened from History is never "Queued" with a Cancel', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await workbench.analyse(TOO_LONG, { bestOfK: 1 })
      await expect(page.getByTestId('results-error')).toContainText('tokens', { timeout: 60_000 })
      await page.reload()
      await expect(workbench.groupCard('demo-words')).toBeVisible()
      const failed = workbench
        .sessions()
        .filter({ hasText: 'The old farmer' })
        .filter({ has: page.getByTestId('session-no-rows') })
        .first()
      await failed.getByTestId('session-open').click()
      await expect(page.getByTestId('run-progress')).toHaveAttribute('data-status', 'failed')
      await expect(page.getByTestId('run-status')).not.toContainText('Queued')
      await expect(page.getByTestId('cancel-run')).toHaveCount(0)
      await expect(page.getByTestId('results-error')).toContainText('at most 512')
      await page.screenshot({ path: shot('reopened-failed') })
      await openSession(workbench, SENTENCE)
      await expect(page.getByTestId('run-progress')).toHaveAttribute('data-status', 'done')
      await expect(page.getByTestId('run-status')).toContainText('Done')
      await expect(page.getByTestId('cancel-run')).toHaveCount(0)
    })

    test('a missing or a wrong token shows one clear screen', async ({ browser }) => {
      for (const [name, path, title] of [
        ['wrong-token', '/?token=not-the-token', 'This token is not the one the host printed'],
        ['no-token', '/', 'This address needs the token printed by the host']
      ] as const) {
        const context = await browser.newContext({ viewport: size })
        const page = await context.newPage()
        await page.goto(`${host!.origin}${path}`)
        const screen = page.getByTestId('connection-problem')
        await expect(screen).toContainText(title)
        await expect(screen).toContainText(`${host!.origin}/?token=`)
        await expect(page.getByText('Starting the device manager')).toHaveCount(0)
        await expect(page.getByTestId('console')).toHaveCount(0)
        await page.screenshot({ path: shot(name) })
        await context.close()
      }
    })

    test('Generate in chat mode shows the reply; the full transcript is one click away', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await page.getByRole('radiogroup', { name: 'Input kind' }).getByText('Chat').click()
      await page.getByLabel('Message 1', { exact: true }).fill('the cat sat on the chair')
      await page.getByTestId('generate').click()
      const reply = page.getByTestId('generate-reply').first()
      await expect(reply).toBeVisible({ timeout: 60_000 })
      const replyText = (await reply.textContent())!.trim()
      expect(replyText.length).toBeGreaterThan(0)
      expect(replyText).not.toContain('<start_of_turn>')
      expect(replyText).not.toContain('the cat sat on the chair')
      await expect(page.getByTestId('generate-transcript')).toHaveCount(0)
      await page.getByTestId('show-transcript').first().click()
      const transcript = page.getByTestId('generate-transcript').first()
      await expect(transcript).toContainText('<start_of_turn>')
      await expect(transcript).toContainText('the cat sat on the chair')
      expect((await transcript.textContent())!.trim().endsWith(replyText)).toBe(true)
      await page.screenshot({ path: shot('chat-generate') })
    })

    test('device cards: load as a share of the cores, one memory figure per meaning, the budget named', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      const card = workbench.card('cpu:0')
      await expect(card.getByTestId('device-utilization')).toHaveText(/^\d+(\.\d)? of \d+ cores?$/)
      await expect(card.getByTestId('memory-summary')).toContainText('budget')
      const placed = workbench.placement('cpu:0', 'demo-words')
      await expect(placed).toHaveAttribute('data-state', 'ready', { timeout: 60_000 })
      // The group's figure on its chip is the "groups" figure of the card's budget line.
      const chip = /(\d+(\.\d)? [MG]iB)/.exec(
        (await placed.getByTestId('placement-bytes').textContent())!
      )![1]
      await expect(card.getByTestId('memory-summary')).toContainText(`${chip} of`)
      await page.screenshot({ path: shot('devices-strip') })
      await page.getByTestId('devices-toggle').click()
      await expect(card.getByTestId('device-budget')).toContainText(/^budget \d/)
      await expect(card.getByTestId('memory-summary')).toContainText(`groups ${chip}`)
      await expect(card.getByTestId('device-utilization')).not.toContainText('%')
      await expect(card).toContainText('Worker RSS')
      await page.screenshot({ path: shot('devices-details') })
    })

    test('History: Compare says what it did and opens the comparison; Delete asks; imports and empty failures are marked', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      await openSession(workbench, SENTENCE)
      const other = workbench.sessions().filter({ hasText: 'The dog ran to the river' }).first()
      await other.getByTestId('session-compare').click()
      await expect(page.getByTestId('toast').filter({ hasText: 'Comparing' })).toBeVisible()
      await expect(page.getByTestId('compare-view')).toBeVisible()
      await expect(page.getByTestId('view-compare')).toHaveAttribute('aria-selected', 'true')
      await expect(page.getByTestId('compare-left-name')).toContainText('The cat sat')
      await expect(page.getByTestId('compare-right-name')).toContainText('The dog ran')
      // Run names sit on their own row, above the metric headers, which read "MSE A" / "MSE B".
      const names = await box(page.getByTestId('compare-right-name'))
      const head = await box(page.locator('.compare__row--head'))
      expect(names.y + names.height).toBeLessThanOrEqual(head.y + 0.5)
      await expect(page.locator('.compare__row--head')).toContainText('MSE A')
      await expect(page.locator('.compare__row--head')).not.toContainText('mse')
      await expect(other).toHaveClass(/session--comparing/)
      await page.screenshot({ path: shot('history-compare') })

      // Import a saved run: it is listed and marked as imported.
      const id = await page.getByTestId('results').getAttribute('data-session-id')
      const exported = await invoke<{ content: string }>(page, 'sessions:export', {
        id,
        format: 'json'
      })
      const before = await workbench.sessions().count()
      await page.getByTestId('import-file').setInputFiles({
        name: 'imported-run.json',
        mimeType: 'application/json',
        buffer: Buffer.from(exported.content)
      })
      await expect(workbench.sessions()).toHaveCount(before + 1)
      await expect(
        page
          .locator('[data-testid="session-item"][data-imported="true"]')
          .first()
          .getByTestId('session-imported')
      ).toHaveText('imported')

      // A failed run with no rows is marked, with why.
      const empty = page.locator('[data-testid="session-item"][data-empty="true"]').first()
      await expect(empty.getByTestId('session-no-rows')).toHaveText('no rows')
      await expect(empty.getByTestId('session-why')).toContainText('at most 512')

      // Delete asks first; Keep keeps it.
      const victim = page.locator('[data-testid="session-item"][data-imported="true"]').first()
      const victimId = await victim.getAttribute('data-session-id')
      await victim.getByTestId('session-delete').click()
      await expect(victim.getByTestId('session-delete-confirm')).toContainText('Delete this run')
      await page.screenshot({ path: shot('history-delete-asks') })
      await victim.getByTestId('session-delete-no').click()
      await expect(workbench.sessions()).toHaveCount(before + 1)
      await victim.getByTestId('session-delete').click()
      await victim.getByTestId('session-delete-yes').click()
      await expect(
        page.locator(`[data-testid="session-item"][data-session-id="${victimId}"]`)
      ).toHaveCount(0)
      await expect(workbench.sessions()).toHaveCount(before)
    })

    test('errors for people: limits from the form’s fields, a cleared number is refused, not 0', async ({
      page,
      workbench
    }) => {
      await workbench.open(host!.url)
      const sessions = await workbench.sessions().count()
      await page.getByTestId('prompt-text').fill('The cat sat.')
      const bestOfK = page.getByTestId('opt-best-of-k')
      await bestOfK.fill('')
      await page.getByTestId('analyse').click()
      await expect(page.getByTestId('console-error')).toHaveText('Best of K needs a number')
      await expect(bestOfK).toHaveAttribute('aria-invalid', 'true')
      await bestOfK.fill('600')
      await page.getByTestId('analyse').click()
      await expect(page.getByTestId('console-error')).toHaveText(
        'Best of K must be between 1 and 512'
      )
      await page.screenshot({ path: shot('error-best-of-k') })
      await bestOfK.fill('4')
      await page.getByTestId('opt-seed').fill('')
      await page.getByTestId('analyse').click()
      await expect(page.getByTestId('console-error')).toHaveText('Seed needs a number')
      await page.getByTestId('opt-seed').fill('42')
      // A check only main makes (end after start) comes back in words, naming the field.
      await page.getByTestId('opt-scope').selectOption('positions')
      await page.locator('[data-field="options.positions.start"] input').fill('5')
      await page.locator('[data-field="options.positions.end"] input').fill('3')
      await page.getByTestId('analyse').click()
      await expect(page.getByTestId('console-error')).toHaveText(
        'Positions: end must be greater than start'
      )
      await expect(page.getByTestId('console-error')).not.toContainText('sessions:run')
      // None of these started a run.
      await expect(workbench.sessions()).toHaveCount(sessions)
    })
  })
}
