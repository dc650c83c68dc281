import { describe, expect, it } from 'vitest'
import { focusedRow, initialUiSlice, savedTheme, THEME_KEY } from './uiSlice'

function storage(entries: Record<string, string>): { getItem(key: string): string | null } {
  return { getItem: (key) => entries[key] ?? null }
}

describe('saved theme', () => {
  it('restores the theme chosen last time, dark otherwise', () => {
    expect(savedTheme(storage({ [THEME_KEY]: 'light' }))).toBe('light')
    expect(savedTheme(storage({ [THEME_KEY]: 'dark' }))).toBe('dark')
    expect(savedTheme(storage({ [THEME_KEY]: 'purple' }))).toBe('dark')
    expect(savedTheme(storage({}))).toBe('dark')
    expect(savedTheme(undefined)).toBe('dark')
  })

  it('falls back to dark when storage refuses to be read (e.g. disabled in a browser)', () => {
    const refusing = {
      getItem: (): string | null => {
        throw new Error('SecurityError')
      }
    }
    expect(savedTheme(refusing)).toBe('dark')
  })
})

describe('row focus', () => {
  it('a click in the plot or the text opens the table at that row of that run, each click a new jump', () => {
    let state = focusedRow(initialUiSlice, 's-a', 7)
    expect(state.ui.resultsView).toBe('table')
    expect(state.ui.focus).toEqual({ sessionId: 's-a', position: 7, seq: 1 })
    state = focusedRow({ ui: { ...state.ui, resultsView: 'plot' } }, 's-a', 7)
    expect(state.ui.focus).toEqual({ sessionId: 's-a', position: 7, seq: 2 })
  })
})
