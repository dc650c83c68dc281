/**
 * Smoke test of the built Electron main bundle: its externals resolve, it registers every contract
 * channel with ipcMain.handle (read from the contract, so channels added later are covered), it
 * creates a hardened window and serves that window. Electron itself is stubbed (no binary here).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { invokeChannelNames } from '@shared/ipc/contract'

const root = resolve(__dirname, '../..')
const mainBundle = resolve(root, 'out/main/index.js')

interface SmokeReport {
  handled: string[]
  windows: Array<{ webPreferences: Record<string, unknown>; loadedFile?: string }>
  appEvents: string[]
  sandboxEnabled?: boolean
  permissionHandler: boolean
  navigationPrevented?: boolean
  windowOpen?: { action: string } | null
  stateFromWindow?: { ok: boolean; value?: { cpu: { id: string } } }
  invalidFromWindow?: { ok: boolean; error?: { code: string } }
  fromIframe?: { ok: boolean; error?: { code: string } }
  firstEvent?: [string, string] | null
  errors: string[]
}

let report: SmokeReport

beforeAll(() => {
  // `npm test` builds first; a bare `vitest run` builds once here so the test never reads nothing.
  if (!existsSync(mainBundle)) {
    execFileSync(
      process.execPath,
      [resolve(root, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'],
      {
        cwd: root,
        stdio: 'inherit'
      }
    )
  }
  const run = spawnSync(process.execPath, [resolve(__dirname, 'electronStub.cjs')], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000
  })
  const line = run.stdout.split('\n').find((l) => l.startsWith('SMOKE-REPORT '))
  if (!line)
    throw new Error(
      `main bundle did not report (exit ${run.status}):\n${run.stdout}\n${run.stderr}`
    )
  report = JSON.parse(line.slice('SMOKE-REPORT '.length)) as SmokeReport
})

describe('built Electron main bundle (stubbed electron)', () => {
  it('loads without errors', () => {
    expect(report.errors).toEqual([])
  })

  it('registers every contract channel with ipcMain.handle, once', () => {
    expect([...report.handled].sort()).toEqual([...invokeChannelNames].sort())
  })

  it('creates one hardened window loading the built renderer with the CJS preload', () => {
    expect(report.sandboxEnabled).toBe(true)
    expect(report.permissionHandler).toBe(true)
    expect(report.windows).toHaveLength(1)
    const prefs = report.windows[0]!.webPreferences
    expect(prefs).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      webviewTag: false
    })
    expect(existsSync(String(prefs.preload))).toBe(true)
    expect(String(prefs.preload)).toMatch(/out[\\/]preload[\\/]index\.cjs$/)
    expect(report.windows[0]!.loadedFile).toBe(resolve(root, 'out/renderer/index.html'))
    expect(existsSync(report.windows[0]!.loadedFile!)).toBe(true)
  })

  it('denies navigation and window.open', () => {
    expect(report.navigationPrevented).toBe(true)
    expect(report.windowOpen).toEqual({ action: 'deny' })
  })

  it('answers the window, rejects bad payloads and iframes as data, and streams events to it', () => {
    expect(report.stateFromWindow).toMatchObject({ ok: true, value: { cpu: { id: 'cpu' } } })
    expect(report.invalidFromWindow).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    expect(report.fromIframe).toMatchObject({ ok: false, error: { code: 'forbidden' } })
    expect(report.firstEvent).toEqual(['workbench:event', 'system:changed'])
  })

  it('the preload listens on the channel main streams events on', () => {
    const preload = readFileSync(resolve(root, 'out/preload/index.cjs'), 'utf8')
    expect(preload).toMatch(/["']workbench:event["']/)
    expect(preload).toMatch(/exposeInMainWorld\(\s*["']api["']/)
    expect(preload).not.toMatch(/exposeInMainWorld\(\s*["']electron["']/)
  })
})
