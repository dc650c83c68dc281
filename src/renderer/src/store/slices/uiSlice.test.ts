import { describe, expect, it } from 'vitest'
import { savedTheme, THEME_KEY } from './uiSlice'

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
