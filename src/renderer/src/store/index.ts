import { create } from 'zustand'
import { initialImportsSlice, type ImportsSlice } from './slices/importsSlice'
import { initialManagerSlice, type ManagerSlice } from './slices/managerSlice'
import { initialRunsSlice, type RunsSlice } from './slices/runsSlice'
import { initialSessionsSlice, type SessionsSlice } from './slices/sessionsSlice'
import { initialSystemSlice, type SystemSlice } from './slices/systemSlice'
import { humanError } from '../lib/humanErrors'
import { initialUiSlice, type Toast, type UiSlice } from './slices/uiSlice'

/**
 * One store, typed slices. Slices hold data only; updates happen outside React through the pure
 * functions next to each slice (applied by ipc/bridge.ts), so they are testable without a DOM.
 * Add a slice: declare it in store/slices/, spread its initial value here, extend AppState.
 */
export type AppState = SystemSlice &
  ManagerSlice &
  ImportsSlice &
  RunsSlice &
  SessionsSlice &
  UiSlice

export const initialAppState: AppState = {
  ...initialSystemSlice,
  ...initialManagerSlice,
  ...initialImportsSlice,
  ...initialRunsSlice,
  ...initialSessionsSlice,
  ...initialUiSlice
}

export const useAppStore = create<AppState>()(() => ({ ...initialAppState }))

let toastCounter = 0

function pushToast(toast: Omit<Toast, 'id'>, ms: number): void {
  const id = ++toastCounter
  useAppStore.setState((s) => ({
    ui: { ...s.ui, toasts: [...s.ui.toasts.slice(-3), { id, ...toast }] }
  }))
  setTimeout(() => {
    useAppStore.setState((s) => ({
      ui: { ...s.ui, toasts: s.ui.toasts.filter((t) => t.id !== id) }
    }))
  }, ms)
}

/** Shows an action's error where no component owns it (the toast stack), in words for people. */
export function reportError(
  where: string,
  error: { code: string; message: string; field?: string }
): void {
  pushToast({ kind: 'error', where, message: humanError(error).message }, 8000)
}

/** A short notice that an action did something not otherwise visible where the user looks. */
export function notify(message: string): void {
  pushToast({ kind: 'info', where: null, message }, 5000)
}

export function announce(message: string): void {
  useAppStore.setState((s) => ({ ui: { ...s.ui, announcement: message } }))
}
