// Placeholder so the main build has its `cli` entry; the CLI engineer replaces this file.
console.error('talkative: the command line is not built yet')
process.exitCode = 1
