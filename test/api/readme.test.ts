/**
 * The README's "Scripting API" examples, run as written against a live host: every curl block
 * (BASE, TOKEN and JOB substituted through the environment) and the Python `requests` example.
 */
import { execFile, execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApiHost, type ApiHost } from './helpers'

const run = promisify(execFile)
const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8')
const sectionStart = readme.indexOf('## Scripting API')
const sectionEnd = readme.indexOf('\n## ', sectionStart + 1)
const section = readme.slice(sectionStart, sectionEnd === -1 ? undefined : sectionEnd)
const blocks = [...section.matchAll(/```(sh|python)\n([\s\S]*?)```/g)].map((m) => ({
  lang: m[1] ?? '',
  code: m[2] ?? ''
}))
const curlBlocks = blocks.filter((b) => b.lang === 'sh' && /^curl /m.test(b.code))
const pythonBlock = blocks.find((b) => b.lang === 'python')

function hasPythonRequests(): boolean {
  try {
    execFileSync('python3', ['-c', 'import requests'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

let h: ApiHost

beforeAll(async () => {
  // The examples name the default CPU device `cpu`, as on a user's machine.
  h = await startApiHost({}, ['cpu', 'cpu:1'])
}, 120_000)

afterAll(async () => {
  await h?.stop()
})

describe('README scripting examples', () => {
  it('has the examples this test runs', () => {
    expect(curlBlocks.length).toBeGreaterThanOrEqual(10)
    expect(pythonBlock).toBeDefined()
    const paths = curlBlocks.map((b) => /\$BASE(\/[\w/$-]+)/.exec(b.code)?.[1])
    for (const path of [
      '/system/state',
      '/groups/load',
      '/groups/pin',
      '/groups/unload',
      '/models/process',
      '/models/generate',
      '/models/generate-and-analyze',
      '/jobs/$JOB',
      '/jobs/$JOB/cancel'
    ]) {
      expect(paths).toContain(path)
    }
  })

  it('runs every curl example with the documented outcome', async () => {
    const env = { ...process.env, BASE: h.base, TOKEN: h.token, JOB: '' }
    for (const block of curlBlocks) {
      const expected = Number(/^# → (\d{3})/m.exec(block.code)?.[1] ?? 200)
      // Only addition: print the HTTP status after the body.
      const command = block.code.replace(/^curl -s /m, `curl -s -w '\\n%{http_code}' `)
      const { stdout } = await run('bash', ['-euc', command], { env, timeout: 60_000 })
      const lines = stdout.trimEnd().split('\n')
      const status = Number(lines.pop())
      const body = JSON.parse(lines.join('\n'))
      expect([block.code, status]).toEqual([block.code, expected])
      if (expected >= 400) expect(body.error.code).not.toBe('internal')
      if (body.job_id) env.JOB = body.job_id
    }
    expect(env.JOB).toMatch(/^job-/)
  }, 120_000)

  const pythonRequests = hasPythonRequests()
  // Skipping is silent in the summary, so the reason goes in the title and on stderr.
  if (!pythonRequests) console.warn('readme.test.ts: skipped: python3 requests not installed')
  it.skipIf(!pythonRequests)(
    pythonRequests
      ? 'runs the Python requests example'
      : 'runs the Python requests example (skipped: python3 requests not installed)',
    async () => {
      const { stdout } = await run('python3', ['-c', pythonBlock!.code], {
        env: { ...process.env, BASE: h.base, TOKEN: h.token },
        timeout: 60_000
      })
      const lines = stdout.trim().split('\n')
      expect(lines[0]).toMatch(/^2 \[.*'demo-words'.*\]$/)
      expect(lines.some((l) => /^farmer .*farmer/.test(l))).toBe(true)
    },
    120_000
  )
})
