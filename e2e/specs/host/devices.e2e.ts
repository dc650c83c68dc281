import * as os from 'node:os'
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { execFileSync } from 'node:child_process'
import type { WebSocketRoute } from '@playwright/test'
import { test, expect, repoRoot } from '../../fixtures/host'
import { DevicesPage, type PageWindow } from '../../pages/DevicesPage'

const screenshots = resolve(repoRoot, 'artifacts/e2e')
mkdirSync(screenshots, { recursive: true })

function formatGiB(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`
}

function nvidiaGpuCount(): number {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=index', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 5000
    })
    return out.split('\n').filter((l) => l.trim()).length
  } catch {
    return 0
  }
}

test.describe('device cards over the headless host', () => {
  test('show this machine: real CPU name, cores and memory', async ({ page, host }) => {
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text())
    })
    const devices = new DevicesPage(page)
    await devices.open(host.url)
    await devices.showDetails()

    await expect(devices.figure('cpu', 'name')).toHaveText(os.cpus()[0]!.model.trim())
    await expect(devices.figure('cpu', 'cores')).toHaveText(String(os.cpus().length))
    await expect(devices.card('cpu')).toHaveAttribute(
      'data-memory-total-bytes',
      String(os.totalmem())
    )
    await expect(devices.figure('cpu', 'memory-total')).toHaveText(formatGiB(os.totalmem()))
    const freeBytes = Number(await devices.card('cpu').getAttribute('data-memory-free-bytes'))
    expect(freeBytes).toBeGreaterThan(0)
    expect(freeBytes).toBeLessThanOrEqual(os.totalmem())

    // One card per NVIDIA GPU nvidia-smi lists, or a note saying why there are none.
    const gpus = nvidiaGpuCount()
    await expect(devices.cards).toHaveCount(1 + gpus)
    if (gpus === 0) await expect(page.getByTestId('gpu-note')).toContainText('nvidia-smi')

    await expect(page.getByTestId('ort-version')).toContainText('ONNX Runtime 1.')
    await expect(page.getByTestId('provider-cpu')).toHaveAttribute('data-available', 'true')

    await page.screenshot({ path: resolve(screenshots, 'devices.png'), fullPage: true })
    expect(errors).toEqual([])
  })

  test('a dropped socket reconnects and the page is told to read the state again', async ({
    page,
    host
  }) => {
    // Pass every /ipc socket through; once the page is ready on the first one, drop it from the
    // page's side, as a flaky network or a sleeping laptop would; the reconnect goes straight
    // through. (A drop on a timer raced the page's start on a loaded machine: a socket dropped
    // before it opened, or before the page listened to anything, is not a reconnect.)
    const sockets: WebSocketRoute[] = []
    await page.routeWebSocket(/\/ipc/, (ws) => {
      ws.connectToServer()
      sockets.push(ws)
    })
    const devices = new DevicesPage(page)
    // The e2e code is typed for Node (no DOM lib): reach the page's window through globalThis.
    type CountingWindow = {
      reconnects?: number
      addEventListener(type: string, listener: () => void): void
    }
    await page.addInitScript(() => {
      const w = globalThis as unknown as CountingWindow
      w.addEventListener('workbench:reconnected', () => {
        w.reconnects = (w.reconnects ?? 0) + 1
      })
    })
    await devices.open(host.url)
    const before = sockets.length
    expect(before).toBeGreaterThan(0)
    await sockets[before - 1]!.close()
    await expect
      .poll(() => page.evaluate(() => (globalThis as unknown as CountingWindow).reconnects ?? 0), {
        timeout: 15_000
      })
      .toBe(1)
    expect(sockets.length).toBeGreaterThan(before)
    // The page works over the new socket.
    const state = await page.evaluate(async () => {
      const api = (
        globalThis as unknown as { api: { invoke(c: string): Promise<{ ok: boolean }> } }
      ).api
      return (await api.invoke('system:state')).ok
    })
    expect(state).toBe(true)
  })

  test('stay live: pushed system:changed events reach the page', async ({ page, host }) => {
    const devices = new DevicesPage(page)
    await devices.open(host.url)
    await devices.waitForLiveUpdate()
    const updates = Number(await page.getByTestId('status').getAttribute('data-updates'))
    expect(updates).toBeGreaterThan(0)
  })

  test('without the token the page says it cannot reach the host', async ({ page, host }) => {
    await page.goto(`${host.origin}/`)
    await expect(page.getByTestId('status')).toContainText('cannot reach the Workbench host')
    await expect(page.getByTestId('connection-problem')).toContainText(
      'This address needs the token printed by the host'
    )
    await expect(page.getByTestId('device-card')).toHaveCount(0)
    await page.screenshot({ path: resolve(screenshots, 'no-token.png') })
  })

  test('the page runs under the strict CSP and window.api is the only bridge', async ({
    page,
    host
  }) => {
    const response = await page.goto(host.url)
    const csp = response?.headers()['content-security-policy'] ?? ''
    expect(csp).toContain("default-src 'self'")
    const shape = await page.evaluate(() => {
      const window = globalThis as PageWindow
      return {
        api: Object.keys(window.api).sort(),
        frozen: Object.isFrozen(window.api),
        hasRequire: 'require' in window,
        hasProcess: 'process' in window
      }
    })
    expect(shape).toEqual({
      api: ['invoke', 'on'],
      frozen: true,
      hasRequire: false,
      hasProcess: false
    })
    const invalid = await page.evaluate(() =>
      (globalThis as PageWindow).api.invoke('system:state', { nope: 1 } as never)
    )
    expect(invalid).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    const unknown = await page.evaluate(() =>
      (globalThis as PageWindow).api.invoke('system:format-disk' as never)
    )
    expect(unknown).toMatchObject({ ok: false, error: { code: 'unknown_channel' } })
  })
})
