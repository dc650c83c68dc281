/** Bumped when analysis results for the same bundle, text and options may change. */
export const ENGINE_VERSION = '0.1.5'
