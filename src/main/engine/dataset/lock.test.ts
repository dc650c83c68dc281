import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  holderAlive,
  parseLockFile,
  parseProcStat,
  probeProcess,
  type LockRecord,
  type ProcessProbe
} from './lock'
import { ResultWriter } from './output'

const SELF = { pid: 100, host: 'here' }
const lock = (pid: number, startTime: string | null = '555', host: string | null = 'here') =>
  ({ pid, startTime, host }) satisfies LockRecord
const probe = (exists: boolean, state: string | null = 'S', startTime: string | null = '555') =>
  ({ exists, state, startTime }) satisfies ProcessProbe

describe('who holds a lock', () => {
  it.each([
    ['a running holder', lock(7), probe(true), true],
    ['a holder that is gone', lock(7), probe(false, null, null), false],
    ['a zombie (killed, never reaped)', lock(7), probe(true, 'Z'), false],
    ['a dead task', lock(7), probe(true, 'X'), false],
    ['a reused pid (another start time)', lock(7), probe(true, 'S', '999'), false],
    ['a lock of earlier versions (pid only), running', lock(7, null, null), probe(true), true],
    ['a lock of earlier versions, zombie', lock(7, null, null), probe(true, 'Z'), false],
    ['no /proc: what kill() says', lock(7), probe(true, null, null), true],
    ['this very process (a lock left by an earlier one)', lock(100), probe(true), false],
    ['another host: cannot be checked, respected', lock(7, '1', 'there'), probe(false), true]
  ])('%s', (_name, holder, p, alive) => {
    expect(holderAlive(holder, p, SELF)).toBe(alive)
  })

  it('reads /proc/PID/stat even when the command name has spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3))
    fields[0] = 'Z'
    expect(parseProcStat(`42 (my (odd) cmd) ${fields.join(' ')}`)).toEqual({
      state: 'Z',
      startTime: '22'
    })
    expect(parseProcStat('garbage')).toBeNull()
  })

  it('reads its own format and the bare pid of earlier versions; anything else is no lock', () => {
    expect(parseLockFile('123\n')).toEqual({ pid: 123, startTime: null, host: null })
    expect(parseLockFile('{"pid":5,"startTime":"77","host":"h"}')).toEqual(lock(5, '77', 'h'))
    expect(parseLockFile('')).toBeNull()
    expect(parseLockFile('{"pid":-1}')).toBeNull()
  })
})

// Real processes: a zombie needs a parent that does not reap it. Perl is part of every Debian
// (perl-base is essential); elsewhere these tests say why they are skipped.
const perl = spawnSync('perl', ['-e', '1']).status === 0
const onLinux = existsSync('/proc/self/stat')
const why = !onLinux ? 'no /proc on this system' : !perl ? 'perl is not installed' : ''
if (why) console.log(`skipped: zombie lock holders: ${why}`)

let dir = ''
let parent: ChildProcess | undefined
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'talkative-lock-'))
})
afterEach(() => {
  // Closing its stdin lets the parent reap the zombie and exit: nothing is left behind.
  parent?.stdin?.end()
  parent = undefined
  rmSync(dir, { recursive: true, force: true })
})

/** A process whose child has exited but is not reaped until the parent's stdin closes. */
async function zombie(): Promise<{ pid: number; parentPid: number }> {
  parent = spawn('perl', [
    '-e',
    '$| = 1; my $pid = fork; if (!$pid) { exit 0 } print "$pid\\n"; <STDIN>; waitpid($pid, 0)'
  ])
  const pid = await new Promise<number>((resolve, reject) => {
    parent!.stdout!.once('data', (b: Buffer) => resolve(Number(b.toString().trim())))
    parent!.once('error', reject)
  })
  for (let i = 0; i < 500 && probeProcess(pid).state !== 'Z'; i++)
    await new Promise((r) => setTimeout(r, 10))
  return { pid, parentPid: parent.pid! }
}

describe.skipIf(why !== '')('a lock held by a real process', () => {
  it('a zombie holder is taken for dead: the run resumes', async () => {
    const { pid } = await zombie()
    const probed = probeProcess(pid)
    // kill(pid, 0) alone would call it alive: that is what the lock must not trust.
    expect(probed).toMatchObject({ exists: true, state: 'Z' })
    const out = join(dir, 'out.jsonl')
    writeFileSync(`${out}.lock`, String(pid))
    const w = ResultWriter.open(out, 'jsonl')
    expect(parseLockFile(readFileSync(`${out}.lock`, 'utf8'))).toMatchObject({
      pid: process.pid,
      host: hostname()
    })
    w.close()
    expect(existsSync(`${out}.lock`)).toBe(false)
  })

  it('a live holder keeps it, and the same pid with another start time does not', async () => {
    const { parentPid } = await zombie()
    const out = join(dir, 'out.jsonl')
    const live: LockRecord = {
      pid: parentPid,
      startTime: probeProcess(parentPid).startTime,
      host: hostname()
    }
    expect(live.startTime).not.toBeNull()
    writeFileSync(`${out}.lock`, JSON.stringify(live))
    expect(() => ResultWriter.open(out, 'jsonl')).toThrow(
      new RegExp(`being written by another run \\(process ${parentPid}\\)`)
    )
    // The pid was reused by another process since the lock was written.
    writeFileSync(`${out}.lock`, JSON.stringify({ ...live, startTime: '1' }))
    ResultWriter.open(out, 'jsonl').close()
  })
})
