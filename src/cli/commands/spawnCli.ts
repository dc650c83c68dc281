/**
 * Test harness: the real command line spawned as a user runs it (`npx talkative` runs
 * bin/talkative.cjs), with its own cache folder holding a demo group built once up front so the
 * spawned runs do not race to build it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { ensureDemoBundle } from '../../main/engine'

export const ROOT = resolve(__dirname, '../../..')

export interface CliDone {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliHarness {
  /** A scratch folder for the test's files; removed by `cleanup`. */
  work: string
  env: NodeJS.ProcessEnv
  start(args: string[]): { child: ChildProcess; done: Promise<CliDone> }
  run(...args: string[]): Promise<CliDone>
  cleanup(): void
}

export async function cliHarness(prefix: string): Promise<CliHarness> {
  const work = mkdtempSync(join(tmpdir(), prefix))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TALKATIVE_CACHE_DIR: join(work, 'cache'),
    TSX_TSCONFIG_PATH: resolve(ROOT, 'tsconfig.node.json')
  }
  await ensureDemoBundle(env.TALKATIVE_CACHE_DIR)
  const start = (args: string[]): { child: ChildProcess; done: Promise<CliDone> } => {
    const child = spawn(process.execPath, [resolve(ROOT, 'bin/talkative.cjs'), ...args], {
      cwd: ROOT,
      env
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()))
    const done = new Promise<CliDone>((res) =>
      child.on('close', (code, signal) => res({ code, signal, stdout, stderr }))
    )
    return { child, done }
  }
  return {
    work,
    env,
    start,
    run: (...args) => start(args).done,
    cleanup: () => rmSync(work, { recursive: true, force: true })
  }
}
