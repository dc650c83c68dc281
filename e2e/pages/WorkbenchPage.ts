import { expect, type Locator, type Page } from '@playwright/test'

/** The Workbench as a researcher sees it: library, device cards, console, results, history. */
export class WorkbenchPage {
  readonly page: Page

  constructor(page: Page) {
    this.page = page
  }

  async open(url: string): Promise<void> {
    await this.page.goto(url)
    await expect(this.page.getByTestId('status')).toHaveText(/Ready|Live/)
    await expect(this.groupCard('demo-words')).toBeVisible({ timeout: 60_000 })
  }

  groupCard(groupId: string): Locator {
    return this.page.locator(`[data-testid="group-card"][data-group-id="${groupId}"]`)
  }

  groupHandle(groupId: string): Locator {
    return this.groupCard(groupId).getByTestId('group-drag-handle')
  }

  card(deviceId: string): Locator {
    return this.page.locator(`[data-testid="device-card"][data-device-id="${deviceId}"]`)
  }

  placement(deviceId: string, groupId: string): Locator {
    return this.card(deviceId).locator(`[data-testid="placement"][data-group-id="${groupId}"]`)
  }

  preview(deviceId: string): Locator {
    return this.card(deviceId).getByTestId('fit-preview')
  }

  get rows(): Locator {
    return this.page.getByTestId('result-row')
  }

  row(position: number): Locator {
    return this.page.locator(`[data-testid="result-row"][data-position="${position}"]`)
  }

  sessions(): Locator {
    return this.page.getByTestId('session-item')
  }

  /** Presses the mouse on `from`, moves in small steps over `to` (the preview shows), keeps it held. */
  async dragOver(from: Locator, to: Locator): Promise<void> {
    const a = await from.boundingBox()
    const b = await to.boundingBox()
    if (!a || !b) throw new Error('drag source or target is not on screen')
    await this.page.mouse.move(a.x + a.width / 2, a.y + a.height / 2)
    await this.page.mouse.down()
    await this.page.mouse.move(a.x + a.width / 2 + 10, a.y + a.height / 2 + 10, { steps: 4 })
    await this.page.mouse.move(b.x + b.width / 2, b.y + b.height / 3, { steps: 12 })
  }

  async analyse(text: string, options: { bestOfK?: number } = {}): Promise<void> {
    await this.page.getByTestId('prompt-text').fill(text)
    if (options.bestOfK) await this.page.getByTestId('opt-best-of-k').fill(String(options.bestOfK))
    await this.page.getByTestId('analyse').click()
  }

  /** Waits until the result on screen is the finished run of `text` (its title starts with it). */
  async waitForCompleted(text: string): Promise<void> {
    await expect(this.page.getByTestId('results-title')).toContainText(text.slice(0, 20), {
      timeout: 60_000
    })
    await expect(this.page.getByTestId('results-status')).toHaveText('completed', {
      timeout: 60_000
    })
  }

  /** The header cell and the cells of one column. */
  header(columnId: string): Locator {
    return this.page.locator(`[role="columnheader"][data-column="${columnId}"]`)
  }

  cells(columnId: string): Locator {
    return this.page.locator(`[data-testid="result-row"] [data-column="${columnId}"]`)
  }
}
