export * from './input'
export * from './output'
export * from './runner'
