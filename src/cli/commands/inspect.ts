/**
 * `talkative inspect [DIR]`: validate a bundle, every weight read for NaN/Inf, and print its
 * summary, or its errors.
 */
import { Command } from 'commander'
import { ensureDemoBundle, inspectBundle } from '../../main/engine'
import { EXIT, reportError, usageExits } from './generate'

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`
}

export function inspectCommand(): Command {
  const cmd = new Command('inspect')
    .description('validate a model group folder and print its summary (default: the demo group)')
    .argument('[dir]', 'bundle folder')
    .option('--json', 'print the summary as JSON')
  usageExits(cmd)
  cmd.action(async (dir: string | undefined, flags: { json?: boolean }) => {
    try {
      const s = await inspectBundle(dir ?? (await ensureDemoBundle()))
      if (flags.json) {
        process.stdout.write(JSON.stringify(s) + '\n')
      } else {
        const b = s.baseModel
        const lines = [
          `${s.name} (${s.groupId})  ${s.dir}`,
          `base ${b.id}: d=${b.hiddenSize}, ${b.layers} layers, vocab ${b.vocabSize}`,
          `weights ${mib(s.weightBytes)}, estimated device memory ${mib(s.estimatedBytes)}, chat template: ${s.hasChatTemplate ? 'yes' : 'no'}`,
          `content hash ${s.contentHash}`,
          ...s.lenses.map(
            (l) =>
              `lens ${l.id}: layer ${l.layer}, T=${l.tokens}, activations from ${l.origModel} — ${l.name}`
          )
        ]
        process.stdout.write(lines.join('\n') + '\n')
      }
      process.exitCode = EXIT.ok
    } catch (err) {
      process.exitCode = reportError(err, flags.json)
    }
  })
  return cmd
}
