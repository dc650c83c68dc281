import { promises as fs } from 'node:fs'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SESSION_FORMAT, type Session } from '@shared/domain/sessions'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import { SessionStore, type DurableWriteFs } from './store'

function session(id: string): Session {
  return {
    format: SESSION_FORMAT,
    version: 1,
    id,
    name: 'durable',
    createdAt: 1,
    updatedAt: 2,
    appVersion: '0.1.0',
    kind: 'analyze',
    input: { mode: 'text', text: 'The cat sat.' },
    groupId: 'demo-words',
    lensId: 'words-l1',
    bundleHash: 'abc123',
    options: AnalyzeOptionsSchema.parse({}),
    jobId: null,
    status: 'completed',
    error: null,
    metadata: null,
    rows: [],
    completions: [],
    interventions: []
  }
}

/** The real file system, with every call that matters for durability written to `log`. */
function recordingFs(folder: string, log: string[], temps: Set<string>): DurableWriteFs {
  const name = (p: string): string => {
    if (p === folder) return '<folder>'
    if (p.endsWith('.tmp')) temps.add(p)
    return p.endsWith('.tmp') ? '<temp>' : basename(p)
  }
  return {
    async open(file, flags) {
      const handle = await fs.open(file, flags)
      const who = name(file)
      log.push(`open ${who}`)
      return {
        writeFile: async (...args: Parameters<typeof handle.writeFile>) => {
          log.push(`write ${who}`)
          return handle.writeFile(...args)
        },
        sync: async () => {
          log.push(`sync ${who}`)
          return handle.sync()
        },
        close: async () => {
          log.push(`close ${who}`)
          return handle.close()
        }
      }
    },
    async rename(from, to) {
      log.push(`rename ${name(from)} ${name(to)}`)
      return fs.rename(from, to)
    }
  }
}

let dir = ''
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'session-store-'))
})
afterEach(() => rm(dir, { recursive: true, force: true }))

describe('SessionStore.write durability', () => {
  it('fsyncs the temp file before the rename and the folder after it', async () => {
    const log: string[] = []
    const temps = new Set<string>()
    const store = new SessionStore(dir, recordingFs(dir, log, temps))
    await store.write(session('s-durable'))
    // One temp file, in the sessions folder itself (a rename across folders is not atomic).
    expect([...temps].map((t) => [dirname(t), basename(t)])).toEqual([
      [dir, expect.stringMatching(/^\.s-durable\.\d+\.\d+\.tmp$/)]
    ])
    expect(log).toEqual([
      'open <temp>',
      'write <temp>',
      'sync <temp>',
      'close <temp>',
      'rename <temp> s-durable.json',
      ...(process.platform === 'win32' ? [] : ['open <folder>', 'sync <folder>', 'close <folder>'])
    ])
    expect(await readdir(dir)).toEqual(['s-durable.json'])
    expect(JSON.parse(await readFile(join(dir, 's-durable.json'), 'utf8')).name).toBe('durable')
  })

  it('closes and removes the temp file when the write fails, and reports it as data', async () => {
    const failing: DurableWriteFs = {
      async open(file, flags) {
        const handle = await fs.open(file, flags)
        return {
          writeFile: async () => {
            throw new Error('disk full')
          },
          sync: () => handle.sync(),
          close: () => handle.close()
        }
      },
      rename: (from, to) => fs.rename(from, to)
    }
    const store = new SessionStore(dir, failing)
    await expect(store.write(session('s-full'))).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringContaining('disk full')
    })
    expect(await readdir(dir)).toEqual([])
  })
})
