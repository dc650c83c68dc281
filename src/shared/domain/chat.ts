import { z } from 'zod'
import { AppError, describeZodError } from '../ipc/errors'

/**
 * A chat conversation: the one message schema of the contract, used by jobs (a conversation
 * rendered with the group's chat template), saved sessions and the command line.
 */
export const ChatRoleSchema = z.enum(['system', 'user', 'assistant'])
export type ChatRole = z.infer<typeof ChatRoleSchema>

/** One chat turn. */
export const ChatMessageSchema = z
  .object({
    role: ChatRoleSchema,
    content: z.string().max(200_000)
  })
  .strict()
export type ChatMessage = z.infer<typeof ChatMessageSchema>

/** A conversation: at least one message. */
export const ChatMessagesSchema = z
  .array(ChatMessageSchema)
  .min(1, 'at least one message is needed')

/**
 * Parses and checks a conversation: the roles the seed accepts, at most one system message, and
 * that one first (a system turn in the middle has no meaning for the templates we render).
 */
export function parseChatMessages(value: unknown, field = 'messages'): ChatMessage[] {
  const parsed = ChatMessagesSchema.safeParse(value)
  if (!parsed.success) {
    const { message, field: where } = describeZodError(parsed.error, field)
    throw new AppError('invalid_input', message, { field: where ?? field })
  }
  const messages = parsed.data
  messages.forEach((m, i) => {
    if (m.role === 'system' && i > 0) {
      throw new AppError('invalid_input', 'a system message may only be the first message', {
        field: `${field}.${i}.role`
      })
    }
  })
  return messages
}
