import { useEffect, type JSX } from 'react'
import { PromptConsole } from './features/console/PromptConsole'
import { DeviceGrid } from './features/devices/DeviceGrid'
import { LibraryPanel } from './features/library/LibraryPanel'
import { PlacementDnd } from './features/placement/PlacementDnd'
import { ResultsPanel } from './features/results/ResultsPanel'
import { HistoryPanel } from './features/sessions/HistoryPanel'
import { RuntimePanel } from './features/system/RuntimePanel'
import { connectionProblem } from './lib/connection'
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

function RailToggle(): JSX.Element {
  const collapsed = useAppStore((s) => s.ui.railCollapsed)
  return (
    <button
      type="button"
      className="button button--small rail-toggle"
      aria-expanded={!collapsed}
      aria-controls="side-rail"
      title={
        collapsed
          ? 'Show the library and history'
          : 'Hide the library and history (more room for results)'
      }
      onClick={() =>
        useAppStore.setState((s) => ({ ui: { ...s.ui, railCollapsed: !s.ui.railCollapsed } }))
      }
      data-testid="rail-toggle"
    >
      {collapsed ? '☰ Library & history' : '⟨ Hide'}
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
          <div
            key={t.id}
            className={`toast toast--${t.kind}`}
            data-testid="toast"
            data-kind={t.kind}
          >
            {t.where && <strong>{t.where}: </strong>}
            {t.message}
          </div>
        ))}
      </div>
    </>
  )
}

/** The whole page when it never reached the Workbench (a missing or stale token, nearly always). */
function ConnectionScreen(): JSX.Element | null {
  const status = useAppStore((s) => s.system.status)
  const error = useAppStore((s) => s.system.error)
  const everConnected = useAppStore((s) => s.system.snapshot !== null)
  const problem =
    status === 'error' && error
      ? connectionProblem({
          neverConnected: !everConnected,
          errorMessage: error.message,
          headless: document.querySelector('script[src="/bridge.js"]') !== null,
          tokenInUrl: new URLSearchParams(location.search).has('token'),
          origin: location.origin
        })
      : null
  if (!problem || !error) return null
  return (
    <main className="connection" data-testid="connection-problem">
      <div className="connection__card">
        <h1 className="connection__title">{problem.title}</h1>
        <p>{problem.body}</p>
        {problem.hint && <p className="connection__hint">{problem.hint}</p>}
        <p className="status status--error small" data-testid="status">
          {error.message}
        </p>
      </div>
    </main>
  )
}

export function App(): JSX.Element {
  const appVersion = useAppStore((s) => s.system.snapshot?.appVersion)
  const railCollapsed = useAppStore((s) => s.ui.railCollapsed)
  const blocked = useAppStore((s) => s.system.status === 'error' && s.system.snapshot === null)
  if (blocked) {
    return (
      <div className="app app--blocked">
        <ConnectionScreen />
      </div>
    )
  }
  return (
    <div className="app">
      <header className="app__bar">
        <RailToggle />
        <h1 className="app__title">Talkative Workbench</h1>
        {appVersion && <span className="app__version">v{appVersion}</span>}
        <RuntimePanel />
        <StatusLine />
        <ThemeToggle />
      </header>
      <main className={`app__layout${railCollapsed ? ' app__layout--rail-collapsed' : ''}`}>
        <PlacementDnd>
          {!railCollapsed && (
            <aside className="app__side" id="side-rail" aria-label="Library and history">
              <LibraryPanel />
              <HistoryPanel />
            </aside>
          )}
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
