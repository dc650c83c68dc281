export type Theme = 'dark' | 'light'

export interface Toast {
  id: number
  kind: 'error' | 'info'
  /** What the user was doing (errors only). */
  where: string | null
  message: string
}

export interface RowFocus {
  sessionId: string
  position: number
  seq: number
}

export type ResultsViewKind = 'table' | 'transposed' | 'text' | 'plot' | 'compare'

export interface UiSlice {
  ui: {
    theme: Theme
    /** Polite screen-reader announcements (placement, run progress). */
    announcement: string
    /** Errors of actions that have no better place to be shown, and short notices; newest last. */
    toasts: Toast[]
    /** Which view of the active result is shown (History's Compare switches it). */
    resultsView: ResultsViewKind
    /**
     * A row of one run to bring into view in the table (a click in the plot or the text); `seq`
     * makes a repeated jump to the same row a new one.
     */
    focus: RowFocus | null
    /** Device cards shown in full instead of the compact strip. */
    devicesExpanded: boolean
    /** The library and history rail folded away, for more room to read results. */
    railCollapsed: boolean
  }
}

export const initialUiSlice: UiSlice = {
  ui: {
    theme: 'dark',
    announcement: '',
    toasts: [],
    resultsView: 'table',
    focus: null,
    devicesExpanded: false,
    railCollapsed: false
  }
}

/** Shows the table and scrolls it to the row of this position of this run. */
export function focusedRow(state: UiSlice, sessionId: string, position: number): UiSlice {
  return {
    ui: {
      ...state.ui,
      resultsView: 'table',
      focus: { sessionId, position, seq: (state.ui.focus?.seq ?? 0) + 1 }
    }
  }
}

export const THEME_KEY = 'talkative.theme'

/** The theme chosen last time; dark when none was saved or storage is unavailable. */
export function savedTheme(storage: { getItem(key: string): string | null } | undefined): Theme {
  try {
    return storage?.getItem(THEME_KEY) === 'light' ? 'light' : 'dark'
  } catch {
    return 'dark'
  }
}
