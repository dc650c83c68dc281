import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { startBridge } from './ipc/bridge'
import { useAppStore } from './store'
import './styles/theme.css'

// Outside React: StrictMode double-invokes effects, and the bridge must subscribe exactly once.
startBridge(window.api, useAppStore)

const root = document.getElementById('root')
if (!root) throw new Error('index.html has no #root element')
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>
)
