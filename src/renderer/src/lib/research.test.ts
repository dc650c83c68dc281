import { describe, expect, it } from 'vitest'
import type { InterventionRow } from '@shared/domain/research'
import { draftForRow, fitNote, layersFromText, requestFromDraft } from './research'

const POSITIONS = [0, 1, 2, 3, 4, 5]

describe('intervention draft', () => {
  it('starts from the picked row: its explanation, its position', () => {
    const draft = draftForRow({ position: 3, explanation: 'a small cat' })
    expect(requestFromDraft(draft, POSITIONS)).toEqual({
      ok: true,
      request: { positions: [3], strings: ['a small cat'], topK: 10, maxNewTokens: 20 }
    })
  })

  it('reads one string per line, more positions and a later prediction position', () => {
    const draft = {
      ...draftForRow({ position: 2, explanation: 'x' }),
      strings: 'first one\n\n  second  \n',
      positions: '2, 4 2',
      nextPosition: '5'
    }
    expect(requestFromDraft(draft, POSITIONS)).toMatchObject({
      ok: true,
      request: { positions: [2, 4], strings: ['first one', 'second'], nextPosition: 5 }
    })
  })

  it.each([
    [{ strings: ' \n ' }, 'strings', 'at least one'],
    [{ positions: 'two' }, 'positions', '“two”'],
    [{ positions: '9' }, 'positions', 'no row at position 9'],
    [{ positions: '' }, 'positions', 'at least one'],
    [{ nextPosition: '1' }, 'nextPosition', 'at or after'],
    [{ nextPosition: '99' }, 'nextPosition', 'position of this result'],
    [{ topK: '0' }, 'topK', '1 to 100'],
    [{ maxNewTokens: '-1' }, 'maxNewTokens', '0 to 512']
  ] as const)('refuses %o naming %s', (change, field, words) => {
    const draft = { ...draftForRow({ position: 3, explanation: 'x' }), ...change }
    const r = requestFromDraft(draft, POSITIONS)
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.field).toBe(field)
      expect(r.message).toContain(words)
    }
  })
})

describe('fit note', () => {
  const row = (truncatedTokens: number): InterventionRow =>
    ({ interventionIds: [1, 2, 3, 4], truncatedTokens, paddedTokens: 0 }) as InterventionRow
  it('says when and how much a string was cut to T tokens', () => {
    expect(fitNote(row(0))).toBeNull()
    expect(fitNote(row(1))).toBe('Truncated to T=4 tokens: 1 token was cut from the start.')
    expect(fitNote(row(7))).toContain('7 tokens were cut')
  })
})

describe('sweep layers field', () => {
  it.each([
    ['', 4, undefined],
    ['  ', null, undefined],
    ['2', 4, [2]],
    ['3, 0-1 1', 4, [0, 1, 3]],
    ['0-3', null, [0, 1, 2, 3]]
  ] as const)('reads %j (depth %s) as %j', (text, depth, layers) => {
    expect(layersFromText(text, depth)).toEqual({ ok: true, layers })
  })

  it.each([
    ['two', 4, '“two” is not a layer'],
    ['-1', 4, '“-1” is not a layer'],
    ['3-1', 4, 'runs backwards'],
    ['4', 4, 'Layer 4 is outside the model (the model has layers 0 to 3)'],
    ['0-5', 4, 'Layer 5 is outside']
  ] as const)('refuses %j (depth %s), saying %j', (text, depth, words) => {
    const r = layersFromText(text, depth)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.message).toContain(words)
  })
})
