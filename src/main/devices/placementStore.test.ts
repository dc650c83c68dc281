import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  defaultPlacementsFile,
  EMPTY_PLACEMENTS,
  PlacementStore,
  type SavedPlacements
} from './placementStore'

let dir = ''
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'talkative-store-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const STATE: SavedPlacements = {
  version: 1,
  groups: { g: { replicas: { min: 1, max: 2 }, preload: true } },
  placements: [{ groupId: 'g', deviceId: 'cuda:0', pinned: true }]
}

describe('PlacementStore', () => {
  it('reads a missing file as the empty state', async () => {
    const store = new PlacementStore(join(dir, 'nested', 'placements.json'))
    expect(await store.read()).toEqual({ saved: EMPTY_PLACEMENTS })
  })

  it('saves atomically (no temporary file left) and reads back what it saved', async () => {
    const file = join(dir, 'nested', 'placements.json')
    const store = new PlacementStore(file)
    await store.save(STATE)
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(STATE)
    expect(await readdir(join(dir, 'nested'))).toEqual(['placements.json'])
    expect((await new PlacementStore(file).read()).saved).toEqual(STATE)
  })

  it('writes only the latest of saves asked for while one runs, and skips unchanged states', async () => {
    const file = join(dir, 'placements.json')
    const store = new PlacementStore(file)
    const first = store.save(EMPTY_PLACEMENTS)
    void store.save({ ...STATE, placements: [] })
    const last = store.save(STATE)
    await Promise.all([first, last])
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(STATE)
    await writeFile(file, 'changed behind its back')
    await store.save(STATE)
    expect(await readFile(file, 'utf8')).toBe('changed behind its back')
  })

  it.each([
    { name: 'not JSON', text: '{ nope', why: /is not JSON/ },
    {
      name: 'a wrong field',
      text: JSON.stringify({ ...STATE, placements: [{ groupId: 'g', deviceId: 'gpu0' }] }),
      why: /placements/
    },
    {
      name: 'replicas max below min',
      text: JSON.stringify({
        ...STATE,
        groups: { g: { replicas: { min: 3, max: 2 }, preload: false } }
      }),
      why: /max must be at least min/
    },
    { name: 'an unknown version', text: JSON.stringify({ ...STATE, version: 2 }), why: /version/ }
  ])('sets a file with $name aside and says why', async ({ text, why }) => {
    const file = join(dir, 'placements.json')
    await writeFile(file, text)
    const out = await new PlacementStore(file).read()
    expect(out.saved).toEqual(EMPTY_PLACEMENTS)
    expect(out.problem).toMatch(why)
    expect(out.problem).toMatch(/moved to placements\.json\.bad-\d+/)
    const names = await readdir(dir)
    expect(names.some((n) => n.startsWith('placements.json.bad-'))).toBe(true)
    expect(names).not.toContain('placements.json')
  })

  it('takes its file from TALKATIVE_PLACEMENTS_FILE; off saves nothing', () => {
    expect(defaultPlacementsFile({ TALKATIVE_PLACEMENTS_FILE: '/x/p.json' })).toBe('/x/p.json')
    expect(defaultPlacementsFile({ TALKATIVE_PLACEMENTS_FILE: 'off' })).toBeNull()
    expect(defaultPlacementsFile({})).toMatch(/\.talkative-workbench[/\\]placements\.json$/)
  })
})
