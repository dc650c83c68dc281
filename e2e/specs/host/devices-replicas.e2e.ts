import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Page } from '@playwright/test'
import { expect, repoRoot, startBuiltHost, test, type HostProcess } from '../../fixtures/host'
import { DevicesPage } from '../../pages/DevicesPage'

const screenshots = resolve(repoRoot, 'artifacts/e2e')
mkdirSync(screenshots, { recursive: true })

const GROUP = 'demo-words'

/** `window.api.invoke` in the page, throwing the host's message on an error answer. */
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

// Its own host: two virtual CPU devices and an empty models folder, so that only the demo group
// is in the library and nothing is placed at start.
let host: (HostProcess & { stop(): Promise<void> }) | undefined
let tempDir = ''

test.beforeAll(async () => {
  tempDir = mkdtempSync(join(tmpdir(), 'talkative-replicas-e2e-'))
  mkdirSync(join(tempDir, 'models'))
  host = await startBuiltHost([], {
    TALKATIVE_DEVICES: 'cpu:0,threads=1,budget=1GiB;cpu:1,threads=1,budget=1GiB',
    TALKATIVE_MODELS_DIR: join(tempDir, 'models'),
    TALKATIVE_SESSIONS_DIR: join(tempDir, 'sessions')
  })
})

test.afterAll(async () => {
  await host?.stop()
  rmSync(tempDir, { recursive: true, force: true })
})

test('device cards show replicas, preload and pins; clearing a device names what unloads', async ({
  page
}) => {
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  const devices = new DevicesPage(page)
  // Virtual devices: the cards are cpu:0 and cpu:1 (no plain `cpu` card to wait for).
  await page.goto(host!.url)
  await expect(page.getByTestId('status')).toHaveText(/Ready|Live/)
  await devices.showDetails()
  await expect(devices.card('cpu:1')).toBeVisible()
  const groupCard = page.locator(`[data-testid="group-card"][data-group-id="${GROUP}"]`)

  // Replicas {min 2, max 2} through the library card's settings.
  await groupCard.getByTestId('group-settings').locator('summary').click()
  await groupCard.getByTestId('group-replicas-min').fill('2')
  await groupCard.getByTestId('group-replicas-max').fill('2')
  await groupCard.getByTestId('group-replicas-save').click()
  await expect
    .poll(async () => {
      const state = await invoke<{
        library: { groups: { groupId: string; settings?: { replicas: unknown } }[] }
      }>(page, 'devices:state')
      return state.library.groups.find((g) => g.groupId === GROUP)?.settings?.replicas
    })
    .toEqual({ min: 2, max: 2 })

  // The group on cpu:0 only, then a burst: jobs queue while cpu:0 is busy and cpu:1 idle, so the
  // scheduler loads a replica there.
  await invoke(page, 'models:load', { groupId: GROUP, deviceId: 'cpu:0' })
  const placement = (deviceId: string) =>
    devices.card(deviceId).locator('[data-testid="placement"]').filter({ hasText: GROUP })
  await expect(placement('cpu:0')).toBeVisible()
  const submitted = await Promise.all(
    Array.from({ length: 6 }, () =>
      invoke<{ jobId: string }>(page, 'jobs:submit', {
        kind: 'analyze',
        groupId: GROUP,
        text: 'The cat sat on the red chair. A dog ran to the river.',
        options: { bestOfK: 16 }
      })
    )
  )
  expect(submitted).toHaveLength(6)
  await expect(placement('cpu:1').getByTestId('placement-replica')).toHaveText('replica 2 of 2', {
    timeout: 60_000
  })
  await expect(placement('cpu:0').getByTestId('placement-replica')).toHaveText('replica 1 of 2')

  // Preload: the library card and both placements say so.
  // Controlled by the host's answer: the box turns checked when the new settings arrive.
  await groupCard.getByTestId('group-preload-toggle').click()
  await expect(groupCard.getByTestId('group-preload-toggle')).toBeChecked()
  await expect(groupCard.getByTestId('group-preload')).toHaveText('preload')
  await expect(placement('cpu:0').getByTestId('placement-preload')).toBeVisible()
  await expect(placement('cpu:1').getByTestId('placement-preload')).toBeVisible()

  // A pin on cpu:0 shows on its card.
  await placement('cpu:0').getByRole('checkbox', { name: 'pin' }).click()
  await expect(placement('cpu:0').locator('.badge--pinned')).toHaveText('pinned')
  await page.screenshot({ path: resolve(screenshots, 'devices-replicas.png'), fullPage: true })

  // Clearing cpu:1 once the burst is over: the confirmation names the group that will unload.
  await expect
    .poll(
      async () =>
        (
          await invoke<{ queue: { jobs: { status: string }[] } }>(page, 'devices:state')
        ).queue.jobs.filter((j) => !['done', 'failed', 'cancelled'].includes(j.status)).length,
      { timeout: 60_000 }
    )
    .toBe(0)
  const dialogs: string[] = []
  page.once('dialog', (dialog) => {
    dialogs.push(dialog.message())
    void dialog.accept()
  })
  await devices.card('cpu:1').getByTestId('clear-device').click()
  await expect(devices.card('cpu:1').getByTestId('device-empty')).toBeVisible()
  expect(dialogs).toEqual([`Unload ${GROUP} from cpu:1?`])
  // The pinned copy on cpu:0 stays, no longer a replica of anything.
  await expect(placement('cpu:0')).toBeVisible()
  await expect(placement('cpu:0').getByTestId('placement-replica')).toHaveCount(0)
  expect(errors).toEqual([])
})
