import { expect, type Locator, type Page } from '@playwright/test'
import type { WorkbenchApi } from '../../src/shared/ipc/api'

/** `window` as the page sees it, for code passed to `page.evaluate` (e2e compiles without DOM types). */
export type PageWindow = typeof globalThis & {
  api: WorkbenchApi
  require?: unknown
  process?: unknown
}

/** The device view, in the words a user would use. */
export class DevicesPage {
  readonly page: Page
  readonly cards: Locator

  constructor(page: Page) {
    this.page = page
    this.cards = page.getByTestId('device-card')
  }

  async open(url: string): Promise<void> {
    await this.page.goto(url)
    await this.waitUntilReady()
  }

  async waitUntilReady(): Promise<void> {
    await expect(this.page.getByTestId('status')).toHaveText(/Ready|Live/)
    await expect(this.card('cpu')).toBeVisible()
  }

  /** The full device cards instead of the compact strip above the results. */
  async showDetails(): Promise<void> {
    const toggle = this.page.getByTestId('devices-toggle')
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click()
    await expect(toggle).toHaveAttribute('aria-expanded', 'true')
  }

  /** Waits until at least one pushed `system:changed` reached the page. */
  async waitForLiveUpdate(): Promise<void> {
    await expect(this.page.getByTestId('status')).toHaveText('Live')
  }

  card(deviceId: string): Locator {
    return this.page.locator(`[data-testid="device-card"][data-device-id="${deviceId}"]`)
  }

  figure(
    deviceId: string,
    name: 'name' | 'cores' | 'memory-total' | 'memory-free' | 'utilization'
  ): Locator {
    return this.card(deviceId).getByTestId(`device-${name}`)
  }
}
