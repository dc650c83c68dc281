/**
 * The built command line as an install without dev dependencies runs it: bin/talkative.cjs and
 * out/main/ copied into a scratch package whose node_modules holds only the production
 * dependencies (the lockfile's non-dev packages), so neither tsx nor the sources can be reached.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LensFrameSchema } from '@shared/public/lensFrame'
import { ensureDemoBundle } from '../../src/main/engine'

const root = resolve(__dirname, '../..')
const builtCli = resolve(root, 'out/main/cli.js')
let install: string
let cache: string

function talkative(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [join(install, 'bin/talkative.cjs'), ...args], {
    cwd: install,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, TALKATIVE_CACHE_DIR: cache, NODE_PATH: '' }
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

beforeAll(async () => {
  // `npm test` builds first; a bare `vitest run` builds once here so the test never reads nothing.
  if (!existsSync(builtCli)) {
    execFileSync(
      process.execPath,
      [resolve(root, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'],
      { cwd: root, stdio: 'inherit' }
    )
  }
  install = mkdtempSync(join(tmpdir(), 'talkative-install-'))
  cache = join(install, 'cache')
  await ensureDemoBundle(cache)
  cpSync(resolve(root, 'package.json'), join(install, 'package.json'))
  cpSync(resolve(root, 'bin'), join(install, 'bin'), { recursive: true })
  cpSync(resolve(root, 'out/main'), join(install, 'out/main'), { recursive: true })
  const lock = JSON.parse(readFileSync(resolve(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>
  }
  for (const [path, entry] of Object.entries(lock.packages)) {
    // Top-level production packages only; nested ones come inside their parent's folder.
    if (!path.startsWith('node_modules/') || path.includes('/node_modules/', 1)) continue
    if (entry.dev || entry.devOptional || !existsSync(resolve(root, path))) continue
    mkdirSync(dirname(join(install, path)), { recursive: true })
    symlinkSync(resolve(root, path), join(install, path), 'dir')
  }
})

afterAll(() => {
  if (install) rmSync(install, { recursive: true, force: true })
})

describe('built command line, installed without dev dependencies', () => {
  it('has no tsx and no sources to fall back on', () => {
    expect(existsSync(join(install, 'node_modules/tsx'))).toBe(false)
    expect(existsSync(join(install, 'node_modules/commander'))).toBe(true)
    expect(existsSync(join(install, 'src'))).toBe(false)
  })

  it('prints its version and help', () => {
    const version = talkative('--version')
    expect(version.stderr).toBe('')
    expect(version.status).toBe(0)
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
    const help = talkative('analyze', '--help')
    expect(help.status).toBe(0)
    expect(help.stdout).toContain('--best-of-k')
  })

  it('analyses a text on the demo group, in the public row schema', () => {
    const r = talkative('analyze', '--text', 'the cat sat', '--best-of-k', '2', '--json')
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const frame = LensFrameSchema.parse(JSON.parse(r.stdout))
    expect(frame.metadata.group_id).toBe('demo-words')
    expect(frame.data.map((row) => row.token)).toEqual(['<bos>', 'the', 'cat', 'sat'])
  })

  it('names a bad flag with exit code 2', () => {
    const r = talkative('analyze', '--text', 'x', '--best-of-k', '0')
    expect(r.status).toBe(2)
    expect(r.stderr).toContain('--best-of-k')
  })
})
