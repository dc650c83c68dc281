import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { startBridge } from './ipc/bridge'
import { useAppStore } from './store'
import { savedTheme } from './store/slices/uiSlice'
import './styles/theme.css'

// Before the first render, so a light-theme user never sees a dark frame.
const theme = savedTheme(globalThis.localStorage)
useAppStore.setState((s) => ({ ui: { ...s.ui, theme } }))
document.documentElement.dataset.theme = theme

// Outside React: StrictMode double-invokes effects, and the bridge must subscribe exactly once.
startBridge(window.api, useAppStore)

const root = document.getElementById('root')
if (!root) throw new Error('index.html has no #root element')
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>
)
