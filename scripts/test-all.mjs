#!/usr/bin/env node
/*
 * npm test: typecheck, lint, import-cycle check, format check, build, unit + contract + smoke tests (vitest), end-to-end (Playwright).
 * Every step runs even after a failure, so one run reports everything. The last line is the only
 * summary CI reads: `N passed, N failed, N skipped` over vitest and Playwright tests, plus one
 * per typecheck / lint / build step.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import electronBinary from './lib/electron-binary.cjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const bin = (pkg, file) => resolve(root, 'node_modules', pkg, file)
const artifacts = resolve(root, 'artifacts')
const vitestJson = resolve(artifacts, 'vitest.json')
const playwrightJson = resolve(artifacts, 'playwright.json')
mkdirSync(artifacts, { recursive: true })

const totals = { passed: 0, failed: 0, skipped: 0 }
const report = []

function step(name, command, args, { count, env } = {}) {
  console.log(`\n── ${name} ──`)
  const started = Date.now()
  const result = spawnSync(command, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...env }
  })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  const ok = result.status === 0
  let detail = ''
  if (count) {
    const counted = count()
    if (counted) {
      totals.passed += counted.passed
      totals.failed += counted.failed
      totals.skipped += counted.skipped
      detail = ` (${counted.passed} passed, ${counted.failed} failed, ${counted.skipped} skipped)`
      // A runner that crashed after writing its report must still fail the run.
      if (!ok && counted.failed === 0) totals.failed += 1
    } else {
      totals.failed += 1
      detail = ' (no report written)'
    }
  } else if (ok) totals.passed += 1
  else totals.failed += 1
  report.push(`${ok ? '✓' : '✗'} ${name} ${seconds} s${detail}`)
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return undefined
  }
}

function vitestCounts() {
  const json = readJson(vitestJson)
  if (!json) return undefined
  return {
    passed: json.numPassedTests ?? 0,
    failed: json.numFailedTests ?? 0,
    skipped: (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0)
  }
}

function playwrightCounts() {
  const stats = readJson(playwrightJson)?.stats
  if (!stats) return undefined
  return {
    passed: (stats.expected ?? 0) + (stats.flaky ?? 0),
    failed: stats.unexpected ?? 0,
    skipped: stats.skipped ?? 0
  }
}

rmSync(vitestJson, { force: true })
rmSync(playwrightJson, { force: true })

const tsc = bin('typescript', 'bin/tsc')
step('typecheck (main, preload, shared, cli, tests)', process.execPath, [
  resolve(root, 'scripts/typecheck-node.mjs')
])
step('typecheck (renderer)', process.execPath, [
  tsc,
  '--noEmit',
  '-p',
  'tsconfig.web.json',
  '--composite',
  'false'
])
step('lint', process.execPath, [bin('eslint', 'bin/eslint.js'), '--max-warnings', '0', '.'])
step('import cycles (madge)', process.execPath, [
  bin('madge', 'bin/cli.js'),
  '--circular',
  'src',
  'bench',
  'test'
])
step('format (prettier --check)', process.execPath, [
  bin('prettier', 'bin/prettier.cjs'),
  '--check',
  '.'
])
step('build', process.execPath, [bin('electron-vite', 'bin/electron-vite.js'), 'build'])
step(
  'unit, contract and smoke tests (vitest)',
  process.execPath,
  [
    bin('vitest', 'vitest.mjs'),
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${vitestJson}`
  ],
  { count: vitestCounts }
)

// The Electron project needs a display on Linux; the browser project is headless either way.
const playwrightArgs = [bin('@playwright/test', 'cli.js'), 'test', '-c', 'e2e/playwright.config.ts']
const electron = electronBinary.findElectronBinary(root)
const needsXvfb =
  'path' in electron &&
  process.platform === 'linux' &&
  !process.env.DISPLAY &&
  existsSync('/usr/bin/xvfb-run')
step(
  'end-to-end (Playwright)',
  needsXvfb ? '/usr/bin/xvfb-run' : process.execPath,
  needsXvfb ? ['-a', process.execPath, ...playwrightArgs] : playwrightArgs,
  { count: playwrightCounts }
)

console.log(`\n${report.join('\n')}`)
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`)
process.exit(totals.failed > 0 ? 1 : 0)
