import { defineConfig } from '@playwright/test'
import { resolve } from 'node:path'
import { chromiumLaunchOptions } from './chromium'

const root = resolve(__dirname, '..')

/**
 * Two projects: the built renderer in Debian's chromium against the headless host (runs
 * everywhere), and the real Electron app (runs only where an Electron binary is installed).
 * Both need `npm run build` first; `npm test` does that.
 */
export default defineConfig({
  testDir: resolve(__dirname, 'specs'),
  testMatch: '**/*.e2e.ts',
  outputDir: resolve(root, 'test-results/e2e'),
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list'], ['json', { outputFile: resolve(root, 'artifacts/playwright.json') }]],
  use: {
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure'
  },
  projects: [
    {
      name: 'host-chromium',
      testMatch: '**/host/**/*.e2e.ts',
      use: {
        browserName: 'chromium',
        viewport: { width: 1280, height: 800 },
        launchOptions: chromiumLaunchOptions
      }
    },
    {
      name: 'electron',
      testMatch: '**/electron/**/*.e2e.ts'
    }
  ]
})
