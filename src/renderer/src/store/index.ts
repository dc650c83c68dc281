import { create } from 'zustand'
import { initialSystemSlice, type SystemSlice } from './slices/systemSlice'

/**
 * One store, typed slices. Slices hold data only; updates happen outside React through the pure
 * functions next to each slice (applied by ipc/bridge.ts), so they are testable without a DOM.
 * Add a slice: declare it in store/slices/, spread its initial value here, extend AppState.
 */
export type AppState = SystemSlice

export const initialAppState: AppState = {
  ...initialSystemSlice
}

export const useAppStore = create<AppState>()(() => ({ ...initialAppState }))
