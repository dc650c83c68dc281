import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SESSION_FORMAT, type Session } from '@shared/domain/sessions'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import { SessionStore } from './store'

function session(id: string, extra: Partial<Session> = {}): Session {
  return {
    format: SESSION_FORMAT,
    version: 1,
    id,
    name: 'The cat, "quoted" · words-l1',
    createdAt: 1,
    updatedAt: 2,
    appVersion: '0.1.0',
    kind: 'analyze',
    input: { mode: 'text', text: 'The cat sat.' },
    groupId: 'demo-words',
    lensId: 'words-l1',
    bundleHash: 'abc123',
    options: AnalyzeOptionsSchema.parse({ bestOfK: 8 }),
    jobId: null,
    status: 'completed',
    error: null,
    metadata: null,
    rows: [
      {
        position: 1,
        token: 'cat',
        tokenId: 7,
        explanation: 'cat, "feline"\nnew',
        explanationStructured: ['cat,', '"feline"', '\nnew'],
        mse: 0.001,
        relativeRmse: 0.1,
        klDivergence: null,
        tokenSalience: [0.2, -0.1, 0],
        logitLensTop: 'cat dog'
      }
    ],
    completions: [],
    interventions: [],
    ...extra
  }
}

let dir = ''
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sessions-test-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe('session store', () => {
  it('writes atomically, reads back, and leaves no temp files', async () => {
    const store = new SessionStore(dir)
    await store.write(session('s-one'))
    await store.write(session('s-one', { name: 'renamed' }))
    expect(readdirSync(dir)).toEqual(['s-one.json'])
    expect((await store.read('s-one')).name).toBe('renamed')
  })

  it('reports a corrupt or foreign file and skips it, never failing the list', async () => {
    const store = new SessionStore(dir)
    await store.write(session('s-good'))
    writeFileSync(join(dir, 's-torn.json'), '{"format":"talkative-session","id":')
    writeFileSync(join(dir, 's-shape.json'), JSON.stringify({ format: 'other' }))
    writeFileSync(join(dir, 'notes.txt'), 'ignored')
    const { summaries, problems } = await store.readSummaries()
    expect(summaries.map((s) => s.id)).toEqual(['s-good'])
    expect(problems.map((p) => p.file).sort()).toEqual(['s-shape.json', 's-torn.json'])
    expect(problems.find((p) => p.file === 's-torn.json')?.message).toMatch(/corrupt/)
    await expect(store.read('s-torn')).rejects.toMatchObject({ code: 'invalid_input' })
  })

  it('lists from memory what has not changed on disk, and re-reads what has', async () => {
    const store = new SessionStore(dir)
    await store.write(session('s-a'))
    await store.write(session('s-b'))
    const first = await store.readSummaries()
    expect(first.summaries.map((s) => s.id)).toEqual(['s-a', 's-b'])
    expect(store.fullReads).toBe(2)
    await store.readSummaries()
    expect(store.fullReads).toBe(2)
    await store.write(session('s-b', { name: 'renamed' }))
    const third = await store.readSummaries()
    expect(store.fullReads).toBe(3)
    expect(third.summaries.find((s) => s.id === 's-b')?.name).toBe('renamed')
    await store.remove('s-a')
    expect((await store.readSummaries()).summaries.map((s) => s.id)).toEqual(['s-b'])
    // A file that turns corrupt is reported, not served from memory.
    writeFileSync(join(dir, 's-b.json'), '{"format":')
    const broken = await store.readSummaries()
    expect(broken.summaries).toEqual([])
    expect(broken.problems.map((p) => p.file)).toEqual(['s-b.json'])
  })

  it('refuses ids that could leave the folder', async () => {
    const store = new SessionStore(dir)
    for (const bad of ['../x', 's-../../etc', '/etc/passwd', 's-A', 's-a/b', '']) {
      expect(() => store.pathOf(bad), bad).toThrow(/session id/)
    }
    await expect(store.read('s-missing')).rejects.toMatchObject({ code: 'not_found' })
    await expect(store.remove('s-missing')).rejects.toMatchObject({ code: 'not_found' })
  })
})
