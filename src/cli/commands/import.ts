/**
 * `talkative import`: checkpoints into model groups (docs/import.md). Each kind is a subcommand
 * with its own file (`import base` in importBase.ts, `import lens` in importLens.ts); add another with `.addCommand(…)` below.
 */
import { Command } from 'commander'
import { usageExits } from './generate'
import { importBaseCommand } from './importBase'
import { importLensCommand } from './importLens'

export function importCommand(): Command {
  const cmd = new Command('import')
    .description('convert checkpoints into model groups (docs/import.md)')
    .addCommand(importBaseCommand())
    .addCommand(importLensCommand())
  usageExits(cmd)
  return cmd
}
