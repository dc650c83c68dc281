import type { SerializedError } from '@shared/ipc/errors'

export type Theme = 'dark' | 'light'

export interface UiSlice {
  ui: {
    theme: Theme
    /** Polite screen-reader announcements (placement, run progress). */
    announcement: string
    /** Errors of actions that have no better place to be shown, newest last. */
    toasts: Array<{ id: number; error: SerializedError; where: string }>
  }
}

export const initialUiSlice: UiSlice = { ui: { theme: 'dark', announcement: '', toasts: [] } }

export const THEME_KEY = 'talkative.theme'

/** The theme chosen last time; dark when none was saved or storage is unavailable. */
export function savedTheme(storage: { getItem(key: string): string | null } | undefined): Theme {
  try {
    return storage?.getItem(THEME_KEY) === 'light' ? 'light' : 'dark'
  } catch {
    return 'dark'
  }
}
