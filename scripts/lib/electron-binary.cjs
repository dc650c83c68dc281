'use strict'
/*
 * Finds an installed Electron binary FROM FILES. Never require('electron'): its index.js starts a
 * download when the binary is missing, and these machines cannot reach the download host.
 * Shared by scripts/start.mjs and the Electron e2e project.
 */
const { existsSync, readFileSync } = require('node:fs')
const path = require('node:path')

/** @returns {{ path: string } | { reason: string }} */
function findElectronBinary(root) {
  const fromEnv = process.env.ELECTRON_EXEC_PATH
  if (fromEnv) {
    return existsSync(fromEnv)
      ? { path: fromEnv }
      : { reason: `ELECTRON_EXEC_PATH points to ${fromEnv}, which does not exist` }
  }
  const pkgDir = path.join(root, 'node_modules', 'electron')
  const pathFile = path.join(pkgDir, 'path.txt')
  if (!existsSync(pathFile)) {
    return { reason: 'Electron binary not installed (no node_modules/electron/path.txt)' }
  }
  const relative = readFileSync(pathFile, 'utf8').trim()
  const binary = path.join(pkgDir, 'dist', relative)
  if (!existsSync(binary)) return { reason: `Electron binary not installed (${binary} is missing)` }
  return { path: binary }
}

module.exports = { findElectronBinary }
