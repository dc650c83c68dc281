export * from './messages'
export * from './tokenizerConfig'
export * from './template'
export * from './turns'
