import { useMemo, useState, type JSX, type KeyboardEvent } from 'react'
import type { AnalyzeOptionsInput } from '@shared/domain/analysis'
import { TERMINAL_JOB_STATUSES } from '@shared/domain/jobs'
import type { ChatMessage } from '@shared/domain/sessions'
import { call, errorOf } from '../../ipc/client'
import { announce, useAppStore } from '../../store'
import { startedRun } from '../../store/slices/runsSlice'

type Action = 'analyze' | 'generate' | 'generate-analyze'

function ProgressLine(): JSX.Element | null {
  const run = useAppStore((s) => (s.runs.activeId ? s.runs.byId[s.runs.activeId] : undefined))
  const [cancelError, setCancelError] = useState<string | null>(null)
  if (!run?.jobId) return null
  const job = run.job
  const status = job?.status ?? 'queued'
  const done = TERMINAL_JOB_STATUSES.includes(status)
  const p = job?.progress
  const fraction = p && p.rowsTotal > 0 ? p.rowsDone / p.rowsTotal : 0
  return (
    <div className="run-progress" data-testid="run-progress" data-status={status}>
      <progress max={1} value={done && status === 'done' ? 1 : fraction} aria-label="analysis progress" />
      <span role="status" data-testid="run-status">
        {status === 'queued'
          ? `Queued${job?.queuePosition ? ` (position ${job.queuePosition})` : ''}`
          : status === 'loading'
            ? `Loading${job?.stage ? `: ${job.stage}` : ''}`
            : status === 'running'
              ? `Running · ${p ? `${p.rowsDone}/${p.rowsTotal} positions` : ''}${job?.etaSeconds != null ? ` · ETA ${Math.ceil(job.etaSeconds)} s` : ''}`
              : status === 'done'
                ? `Done · ${run.rows.length} positions`
                : status === 'cancelled'
                  ? `Cancelled · ${run.rows.length} positions kept`
                  : `Failed: ${job?.error?.message ?? ''}`}
      </span>
      {!done && (
        <button
          type="button"
          className="button button--danger"
          data-testid="cancel-run"
          onClick={() =>
            call('jobs:cancel', { jobId: run.jobId as string }).then(
              () => announce('Cancelling the run'),
              (err: unknown) => setCancelError(errorOf(err).message)
            )
          }
        >
          Cancel
        </button>
      )}
      {cancelError && <span className="inline-error">{cancelError}</span>}
    </div>
  )
}

/** Where the researcher types a text or a chat and starts an analysis. */
export function PromptConsole(): JSX.Element {
  const groups = useAppStore((s) => s.manager.snapshot?.library.groups)
  const okGroups = useMemo(() => (groups ?? []).filter((g) => g.status === 'ok'), [groups])
  const [groupId, setGroupId] = useState<string>('')
  const [lensId, setLensId] = useState<string>('')
  const [mode, setMode] = useState<'text' | 'chat'>('text')
  const [text, setText] = useState('')
  const [messages, setMessages] = useState<ChatMessage[]>([{ role: 'user', content: '' }])
  const [bestOfK, setBestOfK] = useState(8)
  const [temperature, setTemperature] = useState(1)
  const [seed, setSeed] = useState(42)
  const [salience, setSalience] = useState(true)
  const [logitLens, setLogitLens] = useState(false)
  const [kl, setKl] = useState(true)
  const [scope, setScope] = useState<'all' | 'positions' | 'lastN'>('all')
  const [start, setStart] = useState(0)
  const [end, setEnd] = useState(16)
  const [lastN, setLastN] = useState(1)
  const [maxNewTokens, setMaxNewTokens] = useState(16)
  const [error, setError] = useState<{ message: string; field?: string } | null>(null)
  const [busy, setBusy] = useState(false)
  const [completions, setCompletions] = useState<string[]>([])

  const group = okGroups.find((g) => g.groupId === groupId) ?? okGroups[0]
  const lens = group?.lenses.find((l) => l.id === lensId) ?? group?.lenses[0]

  const options = (): AnalyzeOptionsInput => ({
    bestOfK,
    temperature,
    seed,
    salience,
    logitLens,
    kl,
    ...(scope === 'positions' ? { positions: { start, end } } : {}),
    ...(scope === 'lastN' ? { lastNMessages: lastN } : {})
  })

  // Chat messages go to the job as they are (the group's chat template renders them in main);
  // `inputText` is only what the history shows and what the empty-input check reads.
  const chatMessages = messages.filter((m) => m.content.trim())
  const inputText =
    mode === 'chat' ? chatMessages.map((m) => `${m.role}: ${m.content}`).join('\n') : text

  const run = async (action: Action): Promise<void> => {
    if (!group || !lens) {
      setError({ message: 'No group is available yet: the library is still loading' })
      return
    }
    if (!inputText.trim()) {
      setError({ message: 'Type a text to analyse first', field: 'text' })
      return
    }
    setError(null)
    setBusy(true)
    try {
      if (action === 'generate') {
        const { jobId } = await call('jobs:submit', {
          kind: 'generate',
          groupId: group.groupId,
          ...(mode === 'chat' ? { messages: chatMessages } : { text: inputText }),
          generate: { maxNewTokens, temperature, seed }
        })
        setCompletions([])
        await waitForJob(jobId)
        const result = await call('jobs:result', { jobId })
        if (result.job.status === 'failed') setError({ message: result.job.error?.message ?? 'generation failed' })
        setCompletions(result.completions)
        return
      }
      const reply = await call('sessions:run', {
        kind: action,
        groupId: group.groupId,
        lensId: lens.id,
        input: mode === 'chat' ? { mode, text: inputText, messages: chatMessages } : { mode, text: inputText },
        options: options(),
        ...(action === 'generate-analyze' ? { generate: { maxNewTokens, temperature, seed } } : {})
      })
      useAppStore.setState((s) => startedRun(s, reply.session, reply.jobId))
      announce(`Analysis started with ${lens.name}`)
    } catch (err) {
      const e = errorOf(err) as { message: string; field?: string }
      setError(e)
    } finally {
      setBusy(false)
    }
  }

  const onKeyDown = (e: KeyboardEvent): void => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault()
      void run('analyze')
    }
  }

  return (
    <section className="console" aria-label="Prompt console" data-testid="console" onKeyDown={onKeyDown}>
      <h2 className="section-title">Prompt</h2>
      <div className="console__row">
        <label>
          Group
          <select value={group?.groupId ?? ''} onChange={(e) => setGroupId(e.target.value)} data-testid="group-picker">
            {okGroups.map((g) => (
              <option key={g.groupId} value={g.groupId}>
                {g.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Lens
          <select value={lens?.id ?? ''} onChange={(e) => setLensId(e.target.value)} data-testid="lens-picker">
            {group?.lenses.map((l) => (
              <option key={l.id} value={l.id}>
                {l.name} · layer {l.layer}
              </option>
            ))}
          </select>
        </label>
        <div className="segmented" role="radiogroup" aria-label="Input kind">
          {(['text', 'chat'] as const).map((m) => (
            <label key={m} className={mode === m ? 'on' : ''}>
              <input type="radio" name="input-mode" checked={mode === m} onChange={() => setMode(m)} />
              {m === 'text' ? 'Plain text' : 'Chat'}
            </label>
          ))}
        </div>
      </div>
      {mode === 'text' ? (
        <textarea
          className="console__text"
          data-testid="prompt-text"
          aria-label="Text to analyse"
          aria-invalid={error?.field === 'text'}
          placeholder="Enter text to analyse (Ctrl+Enter runs)"
          value={text}
          onChange={(e) => setText(e.target.value)}
          rows={4}
        />
      ) : (
        <ol className="chat" data-testid="chat-messages">
          {messages.map((m, i) => (
            <li key={i} className="chat__message">
              <select
                aria-label={`Role of message ${i + 1}`}
                value={m.role}
                onChange={(e) =>
                  setMessages(messages.map((x, j) => (j === i ? { ...x, role: e.target.value as ChatMessage['role'] } : x)))
                }
              >
                <option value="system">system</option>
                <option value="user">user</option>
                <option value="assistant">assistant</option>
              </select>
              <textarea
                aria-label={`Message ${i + 1}`}
                rows={2}
                value={m.content}
                onChange={(e) => setMessages(messages.map((x, j) => (j === i ? { ...x, content: e.target.value } : x)))}
              />
              <button
                type="button"
                className="link"
                aria-label={`Remove message ${i + 1}`}
                disabled={messages.length === 1}
                onClick={() => setMessages(messages.filter((_, j) => j !== i))}
              >
                ×
              </button>
            </li>
          ))}
          <li>
            <button
              type="button"
              className="button button--small"
              onClick={() =>
                setMessages([...messages, { role: messages.at(-1)?.role === 'user' ? 'assistant' : 'user', content: '' }])
              }
            >
              Add message
            </button>
          </li>
        </ol>
      )}
      <fieldset className="console__options">
        <legend>Options</legend>
        <label>
          Best of K
          <input type="number" min={1} max={512} value={bestOfK} onChange={(e) => setBestOfK(Number(e.target.value))} data-testid="opt-best-of-k" />
        </label>
        <label>
          Temperature
          <input type="number" min={0} max={5} step={0.05} value={temperature} onChange={(e) => setTemperature(Number(e.target.value))} />
        </label>
        <label>
          Seed
          <input type="number" min={0} value={seed} onChange={(e) => setSeed(Number(e.target.value))} data-testid="opt-seed" />
        </label>
        <label className="toggle">
          <input type="checkbox" checked={salience} onChange={(e) => setSalience(e.target.checked)} /> salience
        </label>
        <label className="toggle">
          <input type="checkbox" checked={logitLens} onChange={(e) => setLogitLens(e.target.checked)} /> logit lens
        </label>
        <label className="toggle">
          <input type="checkbox" checked={kl} onChange={(e) => setKl(e.target.checked)} /> KL
        </label>
        <label>
          Analyse
          <select value={scope} onChange={(e) => setScope(e.target.value as typeof scope)}>
            <option value="all">every position</option>
            <option value="positions">positions…</option>
            <option value="lastN">last N messages</option>
          </select>
        </label>
        {scope === 'positions' && (
          <>
            <label>
              from
              <input type="number" min={0} value={start} onChange={(e) => setStart(Number(e.target.value))} />
            </label>
            <label>
              to
              <input type="number" min={1} value={end} onChange={(e) => setEnd(Number(e.target.value))} />
            </label>
          </>
        )}
        {scope === 'lastN' && (
          <label>
            N
            <input type="number" min={1} value={lastN} onChange={(e) => setLastN(Number(e.target.value))} />
          </label>
        )}
        <label>
          New tokens
          <input type="number" min={1} max={4096} value={maxNewTokens} onChange={(e) => setMaxNewTokens(Number(e.target.value))} />
        </label>
      </fieldset>
      <div className="console__actions">
        <button type="button" className="button button--primary" disabled={busy} onClick={() => void run('analyze')} data-testid="analyse">
          Analyse
        </button>
        <button type="button" className="button" disabled={busy} onClick={() => void run('generate')} data-testid="generate">
          Generate
        </button>
        <button type="button" className="button" disabled={busy} onClick={() => void run('generate-analyze')} data-testid="generate-analyse">
          Generate + analyse
        </button>
        <span className="muted small">Ctrl+Enter analyses</span>
      </div>
      {error && (
        <p className="inline-error" role="alert" data-testid="console-error">
          {error.field ? `${error.field}: ` : ''}
          {error.message}
        </p>
      )}
      <ProgressLine />
      {completions.length > 0 && (
        <ol className="completions" data-testid="completions" aria-label="Completions (prompt and continuation, special tokens kept)">
          {completions.map((c, i) => (
            <li key={i}>
              <pre>{c}</pre>
              <button type="button" className="button button--small" onClick={() => { setMode('text'); setText(c) }}>
                Add to input
              </button>
            </li>
          ))}
        </ol>
      )}
    </section>
  )
}

async function waitForJob(jobId: string): Promise<void> {
  for (;;) {
    const state = await call('jobs:get', { jobId })
    if (TERMINAL_JOB_STATUSES.includes(state.status)) return
    await new Promise((r) => setTimeout(r, 250))
  }
}
