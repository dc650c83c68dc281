import { useMemo, useState, type JSX, type KeyboardEvent } from 'react'
import {
  DEFAULT_BEST_OF_K,
  type AnalyzeOptionsInput,
  type OptimiseOptionsInput
} from '@shared/domain/analysis'
import { TERMINAL_JOB_STATUSES } from '@shared/domain/jobs'
import type { ChatMessage } from '@shared/domain/sessions'
import { call, errorOf } from '../../ipc/client'
import { checkNumberField, humanError, type NumberFieldPath } from '../../lib/humanErrors'
import { announce, useAppStore } from '../../store'
import { startedRun } from '../../store/slices/runsSlice'
import { GenerationOutput, type Generation } from './GenerationOutput'
import { NumberField } from './NumberField'
import {
  defaultOptimiseDraft,
  OPTIMISE_FIELDS,
  OptimiseOptions,
  type OptimiseDraft
} from './OptimiseOptions'

type Action = 'analyze' | 'generate' | 'generate-analyze'

/** Why the buttons cannot run yet, or null when they can. */
function notReadyReason(
  libraryLoaded: boolean,
  hasGroup: boolean,
  hasLens: boolean,
  groupName: string | undefined
): string | null {
  if (!libraryLoaded)
    return 'Waiting for the model library (the demo group is prepared on the first start)…'
  if (!hasGroup)
    return 'No model group can run: add a bundle to the models folder, or see the library for errors.'
  if (!hasLens) return `${groupName ?? 'This group'} has no lens to analyse with.`
  return null
}

/** Where the researcher types a text or a chat and starts an analysis. */
export function PromptConsole(): JSX.Element {
  const library = useAppStore((s) => s.manager.snapshot?.library)
  const groups = library?.groups
  const okGroups = useMemo(() => (groups ?? []).filter((g) => g.status === 'ok'), [groups])
  const [groupId, setGroupId] = useState<string>('')
  const [lensId, setLensId] = useState<string>('')
  const [mode, setMode] = useState<'text' | 'chat'>('text')
  const [text, setText] = useState('')
  const [messages, setMessages] = useState<ChatMessage[]>([{ role: 'user', content: '' }])
  const [bestOfK, setBestOfK] = useState(String(DEFAULT_BEST_OF_K))
  const [temperature, setTemperature] = useState('1')
  const [seed, setSeed] = useState('42')
  const [salience, setSalience] = useState(true)
  const [logitLens, setLogitLens] = useState(false)
  const [kl, setKl] = useState(true)
  const [optimise, setOptimise] = useState(false)
  const [optimiseDraft, setOptimiseDraft] = useState<OptimiseDraft>(defaultOptimiseDraft)
  const [scope, setScope] = useState<'all' | 'positions' | 'lastN'>('all')
  const [start, setStart] = useState('0')
  const [end, setEnd] = useState('16')
  const [lastN, setLastN] = useState('1')
  const [maxNewTokens, setMaxNewTokens] = useState('16')
  const [error, setError] = useState<{ message: string; field?: string } | null>(null)
  const [busy, setBusy] = useState(false)
  const [generation, setGeneration] = useState<Generation | null>(null)

  const group = okGroups.find((g) => g.groupId === groupId) ?? okGroups[0]
  const lens = group?.lenses.find((l) => l.id === lensId) ?? group?.lenses[0]
  const notReady = notReadyReason(
    library !== undefined,
    group !== undefined,
    lens !== undefined,
    group?.name
  )

  /** The typed numbers this action uses, checked as main checks them; the first problem otherwise. */
  const numbers = (
    action: Action
  ):
    | { ok: true; values: Partial<Record<NumberFieldPath, number>> }
    | { ok: false; message: string; field: NumberFieldPath } => {
    const fields: Array<[NumberFieldPath, string]> = []
    if (action !== 'generate') {
      // The optimiser replaces best-of-K: K is not read (nor checked) while it is on.
      if (!optimise) fields.push(['options.bestOfK', bestOfK])
      fields.push(['options.temperature', temperature], ['options.seed', seed])
      if (optimise) for (const f of OPTIMISE_FIELDS) fields.push([f.path, optimiseDraft[f.key]])
      if (scope === 'positions')
        fields.push(['options.positions.start', start], ['options.positions.end', end])
      if (scope === 'lastN') fields.push(['options.lastNMessages', lastN])
    }
    if (action !== 'analyze') {
      fields.push(
        ['generate.maxNewTokens', maxNewTokens],
        ['generate.temperature', temperature],
        ['generate.seed', seed]
      )
    }
    const values: Partial<Record<NumberFieldPath, number>> = {}
    for (const [path, raw] of fields) {
      const checked = checkNumberField(path, raw)
      if (!checked.ok) return { ok: false, message: checked.message, field: path }
      values[path] = checked.value
    }
    return { ok: true, values }
  }

  // Chat messages go to the job as they are (the group's chat template renders them in main);
  // `inputText` is only what the history shows and what the empty-input check reads.
  const chatMessages = messages.filter((m) => m.content.trim())
  const inputText =
    mode === 'chat' ? chatMessages.map((m) => `${m.role}: ${m.content}`).join('\n') : text

  const run = async (action: Action): Promise<void> => {
    if (!group || !lens) return
    if (!inputText.trim()) {
      setError({
        message: mode === 'chat' ? 'Write a message first' : 'Type a text to analyse first',
        field: 'text'
      })
      return
    }
    const checked = numbers(action)
    if (!checked.ok) {
      setError({ message: checked.message, field: checked.field })
      return
    }
    const n = checked.values
    const generate = {
      maxNewTokens: n['generate.maxNewTokens']!,
      temperature: n['generate.temperature']!,
      seed: n['generate.seed']!
    }
    setError(null)
    setBusy(true)
    try {
      if (action === 'generate') {
        const { jobId } = await call('jobs:submit', {
          kind: 'generate',
          groupId: group.groupId,
          ...(mode === 'chat' ? { messages: chatMessages } : { text: inputText }),
          generate
        })
        setGeneration(null)
        await waitForJob(jobId)
        const result = await call('jobs:result', { jobId })
        if (result.job.status === 'failed')
          setError(humanError(result.job.error ?? { message: 'generation failed' }))
        setGeneration({ mode, completions: result.completions, replies: result.replies })
        return
      }
      const optimiseOptions: OptimiseOptionsInput | undefined = optimise
        ? {
            samplesPerIteration: n['options.optimise.samplesPerIteration']!,
            salienceThreshold: n['options.optimise.salienceThreshold']!,
            maxTempIncreases: n['options.optimise.maxTempIncreases']!,
            tempIncreaseFactor: n['options.optimise.tempIncreaseFactor']!
          }
        : undefined
      const options: AnalyzeOptionsInput = {
        ...(optimiseOptions ? { optimise: optimiseOptions } : { bestOfK: n['options.bestOfK']! }),
        temperature: n['options.temperature']!,
        seed: n['options.seed']!,
        salience,
        logitLens,
        kl,
        ...(scope === 'positions'
          ? {
              positions: { start: n['options.positions.start']!, end: n['options.positions.end']! }
            }
          : {}),
        ...(scope === 'lastN' ? { lastNMessages: n['options.lastNMessages']! } : {})
      }
      const reply = await call('sessions:run', {
        kind: action,
        groupId: group.groupId,
        lensId: lens.id,
        input:
          mode === 'chat'
            ? { mode, text: inputText, messages: chatMessages }
            : { mode, text: inputText },
        options,
        ...(action === 'generate-analyze' ? { generate } : {})
      })
      useAppStore.setState((s) => startedRun(s, reply.session, reply.jobId))
      // The rows appear in the results area: make sure it is in view.
      document.querySelector('[data-testid="results"]')?.scrollIntoView({ block: 'nearest' })
      announce(`Analysis started with ${lens.name}`)
    } catch (err) {
      setError(humanError(errorOf(err)))
    } finally {
      setBusy(false)
    }
  }

  const onKeyDown = (e: KeyboardEvent): void => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault()
      if (!notReady && !busy) void run('analyze')
    }
  }
  const invalid = (path: string): boolean => error?.field === path

  return (
    <section
      className="console"
      aria-label="Prompt console"
      data-testid="console"
      onKeyDown={onKeyDown}
    >
      <div className="console__row">
        <label>
          Group
          <select
            value={group?.groupId ?? ''}
            onChange={(e) => setGroupId(e.target.value)}
            data-testid="group-picker"
          >
            {okGroups.map((g) => (
              <option key={g.groupId} value={g.groupId}>
                {g.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Lens
          <select
            value={lens?.id ?? ''}
            onChange={(e) => setLensId(e.target.value)}
            data-testid="lens-picker"
          >
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
              <input
                type="radio"
                name="input-mode"
                checked={mode === m}
                onChange={() => setMode(m)}
              />
              {m === 'text' ? 'Plain text' : 'Chat'}
            </label>
          ))}
        </div>
        <div className="console__actions">
          <button
            type="button"
            className="button button--primary"
            disabled={busy || notReady !== null}
            title={notReady ?? 'Analyse every position (Ctrl+Enter)'}
            onClick={() => void run('analyze')}
            data-testid="analyse"
          >
            Analyse
          </button>
          <button
            type="button"
            className="button"
            disabled={busy || notReady !== null}
            title={notReady ?? 'Continue the text with the group’s model'}
            onClick={() => void run('generate')}
            data-testid="generate"
          >
            Generate
          </button>
          <button
            type="button"
            className="button"
            disabled={busy || notReady !== null}
            title={notReady ?? 'Continue the text, then analyse prompt and continuation'}
            onClick={() => void run('generate-analyze')}
            data-testid="generate-analyse"
          >
            Generate + analyse
          </button>
        </div>
      </div>
      {mode === 'text' ? (
        <textarea
          className="console__text"
          data-testid="prompt-text"
          aria-label="Text to analyse"
          aria-invalid={invalid('text') || undefined}
          placeholder="Enter text to analyse (Ctrl+Enter runs)"
          value={text}
          onChange={(e) => setText(e.target.value)}
          rows={2}
        />
      ) : (
        <ol className="chat" data-testid="chat-messages">
          {messages.map((m, i) => (
            <li key={i} className="chat__message">
              <select
                aria-label={`Role of message ${i + 1}`}
                value={m.role}
                onChange={(e) =>
                  setMessages(
                    messages.map((x, j) =>
                      j === i ? { ...x, role: e.target.value as ChatMessage['role'] } : x
                    )
                  )
                }
              >
                <option value="system">system</option>
                <option value="user">user</option>
                <option value="assistant">assistant</option>
              </select>
              <textarea
                aria-label={`Message ${i + 1}`}
                aria-invalid={(invalid('text') && !m.content.trim()) || undefined}
                rows={1}
                value={m.content}
                onChange={(e) =>
                  setMessages(
                    messages.map((x, j) => (j === i ? { ...x, content: e.target.value } : x))
                  )
                }
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
                setMessages([
                  ...messages,
                  { role: messages.at(-1)?.role === 'user' ? 'assistant' : 'user', content: '' }
                ])
              }
            >
              Add message
            </button>
          </li>
        </ol>
      )}
      <div className="console__options" role="group" aria-label="Options">
        <NumberField
          label="Best of K"
          path="options.bestOfK"
          value={bestOfK}
          onChange={setBestOfK}
          invalid={invalid('options.bestOfK')}
          testId="opt-best-of-k"
          disabled={optimise}
          title={optimise ? 'Not used: the optimiser replaces best-of-K' : undefined}
        />
        <NumberField
          label="Temp."
          title="Decoder sampling temperature (0: greedy)"
          path="options.temperature"
          value={temperature}
          onChange={setTemperature}
          invalid={invalid('options.temperature') || invalid('generate.temperature')}
          testId="opt-temperature"
          step={0.05}
        />
        <NumberField
          label="Seed"
          path="options.seed"
          value={seed}
          onChange={setSeed}
          invalid={invalid('options.seed') || invalid('generate.seed')}
          testId="opt-seed"
        />
        <label className="toggle">
          <input
            type="checkbox"
            checked={salience}
            onChange={(e) => setSalience(e.target.checked)}
          />{' '}
          salience
        </label>
        <label className="toggle">
          <input
            type="checkbox"
            checked={logitLens}
            onChange={(e) => setLogitLens(e.target.checked)}
            data-testid="opt-logit-lens"
          />{' '}
          logit lens
        </label>
        <label className="toggle">
          <input type="checkbox" checked={kl} onChange={(e) => setKl(e.target.checked)} /> KL
        </label>
        <label title="Which token positions to analyse: all of them, a range, or the last N chat messages">
          <span className="visually-hidden">Positions</span>
          <select
            value={scope}
            onChange={(e) => setScope(e.target.value as typeof scope)}
            data-testid="opt-scope"
          >
            <option value="all">all positions</option>
            <option value="positions">a range</option>
            <option value="lastN">last N msgs</option>
          </select>
        </label>
        {scope === 'positions' && (
          <>
            <NumberField
              label="from"
              path="options.positions.start"
              value={start}
              onChange={setStart}
              invalid={invalid('options.positions.start')}
            />
            <NumberField
              label="to"
              path="options.positions.end"
              value={end}
              onChange={setEnd}
              invalid={invalid('options.positions.end') || invalid('options.positions')}
            />
          </>
        )}
        {scope === 'lastN' && (
          <NumberField
            label="N"
            path="options.lastNMessages"
            value={lastN}
            onChange={setLastN}
            invalid={invalid('options.lastNMessages')}
          />
        )}
        <OptimiseOptions
          on={optimise}
          onToggle={setOptimise}
          draft={optimiseDraft}
          onChange={(key, value) => setOptimiseDraft((d) => ({ ...d, [key]: value }))}
          invalid={invalid}
        />
        <NumberField
          label="New tokens"
          title="How many tokens Generate adds"
          path="generate.maxNewTokens"
          value={maxNewTokens}
          onChange={setMaxNewTokens}
          invalid={invalid('generate.maxNewTokens')}
          testId="opt-new-tokens"
        />
      </div>
      {notReady && (
        <p className="note" role="status" data-testid="console-not-ready">
          {notReady}
        </p>
      )}
      {error && (
        <p
          className="inline-error"
          role="alert"
          data-testid="console-error"
          data-field={error.field}
        >
          {error.message}
        </p>
      )}
      {generation && (
        <GenerationOutput
          generation={generation}
          onDismiss={() => setGeneration(null)}
          onUseAsText={(t) => {
            setMode('text')
            setText(t)
          }}
          onContinueChat={(reply) => {
            setMessages([
              ...chatMessages,
              { role: 'assistant', content: reply },
              { role: 'user', content: '' }
            ])
          }}
        />
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
