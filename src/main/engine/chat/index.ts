export * from './messages'
export * from './tokenizer-config'
export * from './template'
export * from './turns'
