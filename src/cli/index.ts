/** `talkative`: the command line over the lens engine (docs/cli.md). */
import { Command } from 'commander'
import { ENGINE_VERSION } from '../main/engine'
import { analyzeCommand } from './commands/analyze'
import { chatCommand } from './commands/chat'
import { EXIT, generateCommand } from './commands/generate'
import { importCommand } from './commands/import'
import { inspectCommand } from './commands/inspect'
import { interveneCommand, sweepCommand } from './commands/research'
import { runCommand } from './commands/run'

// A reader that stops early (`talkative analyze … | head`) closes the pipe: that ends the command
// quietly, as for any command-line tool, instead of an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok)
    throw err
  })
}

const program = new Command('talkative')
  .description('Talkative Workbench: lens analyses of text on ONNX Runtime')
  .version(ENGINE_VERSION)
  .addCommand(analyzeCommand())
  .addCommand(inspectCommand())
  .addCommand(generateCommand())
  .addCommand(chatCommand())
  .addCommand(runCommand())
  .addCommand(importCommand())
  .addCommand(interveneCommand())
  .addCommand(sweepCommand())
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage)
  })

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`talkative: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = EXIT.failed
})
