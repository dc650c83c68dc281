/** The chat message schema is the contract's (src/shared/domain/chat.ts); the engine uses it as is. */
export {
  ChatMessageSchema,
  ChatMessagesSchema,
  ChatRoleSchema,
  parseChatMessages,
  type ChatMessage,
  type ChatRole
} from '@shared/domain/chat'
