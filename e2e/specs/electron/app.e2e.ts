import { _electron as electron, expect, test } from '@playwright/test'
import { mkdirSync } from 'node:fs'
import * as os from 'node:os'
import { resolve } from 'node:path'
import { repoRoot } from '../../fixtures/host'
import { DevicesPage, type PageWindow } from '../../pages/DevicesPage'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { findElectronBinary } = require('../../../scripts/lib/electron-binary.cjs') as {
  findElectronBinary(root: string): { path: string } | { reason: string }
}

const binary = findElectronBinary(repoRoot)
const skipReason = 'reason' in binary ? binary.reason : undefined
if (skipReason) console.log(`electron e2e skipped: ${skipReason}`)

test.describe('Electron app', () => {
  test.skip(skipReason !== undefined, skipReason ?? '')

  test('opens one sandboxed window showing this machine', async () => {
    const app = await electron.launch({
      executablePath: 'path' in binary ? binary.path : '',
      args: [
        resolve(repoRoot, 'out/main/index.js'),
        ...(process.platform === 'linux' ? ['--no-sandbox'] : [])
      ],
      cwd: repoRoot
    })
    try {
      const page = await app.firstWindow()
      const devices = new DevicesPage(page)
      await devices.waitUntilReady()
      await devices.showDetails()
      await expect(devices.figure('cpu', 'cores')).toHaveText(String(os.cpus().length))
      await expect(devices.card('cpu')).toHaveAttribute(
        'data-memory-total-bytes',
        String(os.totalmem())
      )
      const isolated = await page.evaluate(() => {
        const window = globalThis as PageWindow
        return {
          keys: Object.keys(window.api).sort(),
          hasRequire: 'require' in window,
          hasProcess: 'process' in window
        }
      })
      expect(isolated).toEqual({ keys: ['invoke', 'on'], hasRequire: false, hasProcess: false })
      mkdirSync(resolve(repoRoot, 'artifacts/e2e'), { recursive: true })
      await page.screenshot({ path: resolve(repoRoot, 'artifacts/e2e/electron-devices.png') })
    } finally {
      await app.close()
    }
  })
})
