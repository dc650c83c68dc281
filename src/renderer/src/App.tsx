import { useEffect, type JSX } from 'react'
import { PromptConsole } from './features/console/PromptConsole'
import { DeviceGrid } from './features/devices/DeviceGrid'
import { LibraryPanel } from './features/library/LibraryPanel'
import { PlacementDnd } from './features/placement/PlacementDnd'
import { ResultsPanel } from './features/results/ResultsPanel'
import { HistoryPanel } from './features/sessions/HistoryPanel'
import { RuntimePanel } from './features/system/RuntimePanel'
import { useAppStore } from './store'
import { THEME_KEY, type Theme } from './store/slices/uiSlice'

function StatusLine(): JSX.Element {
  const status = useAppStore((s) => s.system.status)
  const error = useAppStore((s) => s.system.error)
  const updates = useAppStore((s) => s.system.updates)
  if (status === 'error' && error) {
    return (
      <p className="status status--error" role="alert" data-testid="status">
        {error.message}
      </p>
    )
  }
  return (
    <p className={`status status--${status}`} data-testid="status" data-updates={updates}>
      {status === 'connecting' ? 'Connecting…' : updates > 0 ? 'Live' : 'Ready'}
    </p>
  )
}

function ThemeToggle(): JSX.Element {
  const theme = useAppStore((s) => s.ui.theme)
  // The saved theme is in the store before the first render (main.tsx): reading it here, after a
  // render, first wrote the default back over it (and StrictMode's second mount then read that).
  useEffect(() => {
    document.documentElement.dataset.theme = theme
    localStorage.setItem(THEME_KEY, theme)
  }, [theme])
  const next: Theme = theme === 'dark' ? 'light' : 'dark'
  return (
    <button
      type="button"
      className="button button--small"
      data-testid="theme-toggle"
      aria-label={`Switch to the ${next} theme`}
      onClick={() => useAppStore.setState((s) => ({ ui: { ...s.ui, theme: next } }))}
    >
      {theme === 'dark' ? '☀ Light' : '☾ Dark'}
    </button>
  )
}

function Toasts(): JSX.Element {
  const toasts = useAppStore((s) => s.ui.toasts)
  const announcement = useAppStore((s) => s.ui.announcement)
  return (
    <>
      <div className="visually-hidden" aria-live="polite" data-testid="announcer">
        {announcement}
      </div>
      <div className="toasts" role="alert">
        {toasts.map((t) => (
          <div key={t.id} className="toast" data-testid="toast">
            <strong>{t.where}:</strong> {t.error.message}
          </div>
        ))}
      </div>
    </>
  )
}

export function App(): JSX.Element {
  const appVersion = useAppStore((s) => s.system.snapshot?.appVersion)
  return (
    <div className="app">
      <header className="app__bar">
        <h1 className="app__title">Talkative Workbench</h1>
        {appVersion && <span className="app__version">v{appVersion}</span>}
        <StatusLine />
        <RuntimePanel />
        <ThemeToggle />
      </header>
      <main className="app__layout">
        <PlacementDnd>
          <aside className="app__side">
            <LibraryPanel />
            <HistoryPanel />
          </aside>
          <div className="app__center">
            <DeviceGrid />
            <PromptConsole />
            <ResultsPanel />
          </div>
        </PlacementDnd>
      </main>
      <Toasts />
    </div>
  )
}
