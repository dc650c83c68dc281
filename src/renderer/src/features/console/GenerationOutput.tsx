import { useState, type JSX } from 'react'

export interface Generation {
  mode: 'text' | 'chat'
  /** Full texts as the job returns them: prompt (special tokens kept), then the continuation. */
  completions: string[]
  /** The engine's reply of each completion: its new text without the closing end of turn. */
  replies: string[]
}

function Completion({
  full,
  reply,
  onUseAsText,
  onContinueChat
}: {
  full: string
  /** The reply to show first (chat mode), or null to show the full text. */
  reply: string | null
  onUseAsText(text: string): void
  onContinueChat(reply: string): void
}): JSX.Element {
  const [showTranscript, setShowTranscript] = useState(false)
  return (
    <li className="generation__item">
      {reply !== null ? (
        <>
          <div className="generation__reply" data-testid="generate-reply">
            {reply || (
              <span className="muted">(an empty reply: the model ended its turn at once)</span>
            )}
          </div>
          <div className="generation__actions">
            <button
              type="button"
              className="link"
              aria-expanded={showTranscript}
              onClick={() => setShowTranscript(!showTranscript)}
              data-testid="show-transcript"
            >
              {showTranscript ? 'Hide the full transcript' : 'Show the full transcript'}
            </button>
            <button type="button" className="link" onClick={() => onContinueChat(reply)}>
              Add the reply to the chat
            </button>
            <button type="button" className="link" onClick={() => onUseAsText(full)}>
              Use the transcript as text
            </button>
          </div>
          {showTranscript && (
            <pre className="generation__transcript" data-testid="generate-transcript">
              {full}
            </pre>
          )}
        </>
      ) : (
        <>
          <pre className="generation__transcript" data-testid="generate-transcript">
            {full}
          </pre>
          <div className="generation__actions">
            <button type="button" className="link" onClick={() => onUseAsText(full)}>
              Add to input
            </button>
          </div>
        </>
      )}
    </li>
  )
}

/**
 * What Generate returned. In chat mode the assistant's reply comes first, the whole transcript
 * (rendered prompt with its special tokens, then the reply) one click away; in text mode the full
 * text (prompt and continuation) is the output.
 */
export function GenerationOutput({
  generation,
  onDismiss,
  onUseAsText,
  onContinueChat
}: {
  generation: Generation
  onDismiss(): void
  onUseAsText(text: string): void
  onContinueChat(reply: string): void
}): JSX.Element {
  return (
    <div className="generation" data-testid="completions" aria-label="Generated output">
      <div className="generation__head">
        <strong>{generation.mode === 'chat' ? 'Reply' : 'Continuation'}</strong>
        <span className="muted small">
          {generation.mode === 'chat'
            ? 'the assistant’s turn'
            : 'prompt and continuation, special tokens kept'}
        </span>
        <button
          type="button"
          className="link generation__close"
          aria-label="Close the generated output"
          onClick={onDismiss}
        >
          ×
        </button>
      </div>
      <ol className="generation__list">
        {generation.completions.map((c, i) => (
          <Completion
            key={i}
            full={c}
            reply={generation.mode === 'chat' ? (generation.replies[i] ?? null) : null}
            onUseAsText={onUseAsText}
            onContinueChat={onContinueChat}
          />
        ))}
      </ol>
    </div>
  )
}
