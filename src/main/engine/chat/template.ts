import { Template } from '@huggingface/jinja'
import { AppError } from '@shared/ipc/errors'
import type { ChatMessage } from './messages'
import { parseChatMessages } from './messages'
import { TOKENIZER_CONFIG_FILE, type TokenizerSpecials } from './tokenizerConfig'
import { TemplateLimitError, renderWithLimits } from './guardedRender'

export interface RenderedChat {
  text: string
  /** True when the template's generation prompt was appended (last turn was the user's). */
  addGenerationPrompt: boolean
  /** True when the assistant's last message was left open so the model continues it. */
  continueFinalMessage: boolean
  /** True when a system message was folded into the first user turn. */
  systemMerged: boolean
  /** The messages actually handed to the template (after the merge). */
  messages: ChatMessage[]
}

/** A compiled chat template plus the special-token texts templates refer to. */
export class ChatTemplate {
  readonly source: string
  readonly file: string
  readonly #template: Template
  readonly #context: Record<string, unknown>
  #supportsSystem: boolean | undefined

  private constructor(
    source: string,
    template: Template,
    context: Record<string, unknown>,
    file: string
  ) {
    this.source = source
    this.#template = template
    this.#context = context
    this.file = file
  }

  static compile(source: string, specials: Partial<TokenizerSpecials> = {}): ChatTemplate {
    const file = specials.file ?? TOKENIZER_CONFIG_FILE
    let template: Template
    try {
      template = new Template(source)
    } catch (err) {
      throw templateError('could not be parsed', err, file)
    }
    const context = {
      bos_token: specials.bosToken ?? '',
      eos_token: specials.eosToken ?? '',
      pad_token: specials.padToken ?? '',
      unk_token: specials.unkToken ?? ''
    }
    return new ChatTemplate(source, template, context, file)
  }

  /** The bundle's template; a clear error when it has none. */
  static fromSpecials(specials: TokenizerSpecials): ChatTemplate {
    if (!specials.chatTemplate) {
      throw new AppError(
        'invalid_input',
        'this model group has no chat template (tokenizer_config.json has no chat_template), so messages cannot be formatted; pass plain text instead',
        { field: 'chat_template', file: specials.file ?? TOKENIZER_CONFIG_FILE }
      )
    }
    return ChatTemplate.compile(specials.chatTemplate, specials)
  }

  /** Renders the template as is, turning any template failure into an AppError. */
  renderRaw(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return renderWithLimits(this.#template, {
        ...this.#context,
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: addGenerationPrompt
      })
    } catch (err) {
      if (err instanceof TemplateLimitError) {
        // The bundle's template is at fault, not the conversation: named, and stopped in time.
        throw new AppError('bundle_invalid', `${this.file} (chat_template): ${err.message}`, {
          field: 'chat_template',
          file: this.file
        })
      }
      throw templateError('failed to render', err, this.file)
    }
  }

  /**
   * Whether a system turn survives rendering. Probed once with sentinel texts, because templates
   * without a system role either raise (Gemma) or silently drop it, and both mean "merge it".
   */
  get supportsSystemRole(): boolean {
    if (this.#supportsSystem === undefined) {
      const sentinel = 'talkative-system-probe-7f3a'
      try {
        const text = renderWithLimits(this.#template, {
          ...this.#context,
          messages: [
            { role: 'system', content: sentinel },
            { role: 'user', content: 'probe' }
          ],
          add_generation_prompt: false
        })
        this.#supportsSystem = text.includes(sentinel)
      } catch {
        this.#supportsSystem = false
      }
    }
    return this.#supportsSystem
  }

  /**
   * Renders a conversation with the seed's rules: a system message is merged into the first user
   * turn when the template has no system role; a trailing user turn gets the generation prompt; a
   * trailing assistant turn is left open (continue_final_message) so the model continues it.
   */
  render(input: readonly ChatMessage[]): RenderedChat {
    let messages = parseChatMessages(input)
    let systemMerged = false
    if (messages[0]?.role === 'system' && !this.supportsSystemRole) {
      messages = mergeSystemIntoFirstUser(messages)
      systemMerged = true
    }
    // parseChatMessages guarantees at least one message.
    const last = messages[messages.length - 1]!
    if (last.role !== 'assistant') {
      return {
        text: this.renderRaw(messages, true),
        addGenerationPrompt: true,
        continueFinalMessage: false,
        systemMerged,
        messages
      }
    }
    return {
      text: this.#renderContinuingLast(messages),
      addGenerationPrompt: false,
      continueFinalMessage: true,
      systemMerged,
      messages
    }
  }

  /**
   * Renders the conversation with the final assistant message left open. The message is located
   * through a render with a sentinel in its place: the text before the sentinel is exactly where
   * the message starts, so the cut never lands in closing markup that happens to contain the
   * message (prefill "turn" inside Gemma's `<end_of_turn>`).
   */
  #renderContinuingLast(messages: ChatMessage[]): string {
    const final = messages[messages.length - 1]!.content
    if (final.trim() === '') {
      // An empty prefill is the open assistant turn itself: what the generation prompt produces.
      return this.renderRaw(messages.slice(0, -1), true)
    }
    const dropped = (): AppError =>
      new AppError(
        'invalid_input',
        'chat template dropped or rewrote the final assistant message, so it cannot be continued',
        { field: 'messages', file: this.file }
      )
    const sentinel = uniqueSentinel(messages)
    const marked = this.renderRaw(
      [...messages.slice(0, -1), { role: 'assistant', content: sentinel }],
      false
    )
    const start = marked.indexOf(sentinel)
    if (start < 0 || marked.indexOf(sentinel, start + 1) >= 0) throw dropped()
    const before = marked.slice(0, start)
    const rendered = this.renderRaw(messages, false)
    // The text before the final message must not depend on it; the message's (possibly trimmed)
    // text then comes first after that point, before any closing markup.
    if (!rendered.startsWith(before)) throw dropped()
    const core = final.trim()
    const at = rendered.indexOf(core, before.length)
    if (at < 0 || rendered.slice(before.length, at).trim() !== '') throw dropped()
    // Keep the message's own leading and trailing spacing if the template kept it; cut everything
    // after it (the end-of-turn markup) so the model continues the text.
    const withLead = final.trimStart()
    const keep = rendered.startsWith(withLead, at) ? withLead.length : core.length
    return rendered.slice(0, at + keep)
  }
}

/** A word no message contains (templates may trim, so no spaces at either end). */
function uniqueSentinel(messages: readonly ChatMessage[]): string {
  for (let n = 0; ; n++) {
    const sentinel = `talkative-final-message-${n.toString(36)}-9c1e`
    if (!messages.some((m) => m.content.includes(sentinel))) return sentinel
  }
}

export function mergeSystemIntoFirstUser(messages: readonly ChatMessage[]): ChatMessage[] {
  const [system, ...rest] = messages
  if (system?.role !== 'system') return [...messages]
  const firstUser = rest.findIndex((m) => m.role === 'user')
  if (firstUser < 0) return [{ role: 'user', content: system.content }, ...rest]
  return rest.map((m, i) =>
    i === firstUser ? { role: 'user', content: `${system.content}\n\n${m.content}` } : m
  )
}

function templateError(what: string, err: unknown, file: string): AppError {
  const detail = err instanceof Error ? err.message : String(err)
  return new AppError('invalid_input', `chat template ${what}: ${detail}`, {
    field: 'chat_template',
    file
  })
}
