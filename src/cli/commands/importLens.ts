/**
 * `talkative import lens CHECKPOINT --into GROUP_DIR [--orig DIR]`: a predecessor training
 * checkpoint (`*.pt`, or a run folder: its newest readable one) becomes a lens of an existing
 * group (docs/lens-checkpoints.md). The file is read as data, never executed. Progress on stderr;
 * Ctrl-C or SIGTERM cancels and leaves the group as it was (exit 130); a bad or unsafe checkpoint,
 * a base that is not the group's, or a missing donor exits 3 naming the file and the key or field.
 */
import { Command, Option } from 'commander'
import {
  importLens,
  importedLensOf,
  lensProgressReporter,
  type ImportLensResult
} from '../../main/import/lens'
import { EXIT, reportError, usageExits } from './generate'
import { progressPrinter } from './importBase'

interface ImportLensFlags {
  into?: string
  group?: string
  id?: string
  name?: string
  orig?: string
  origBase?: string
  json?: boolean
  progress?: boolean
}

function summaryLines(r: ImportLensResult, groupDir: string): string[] {
  const p = r.provenance
  const patched =
    p.patchAllLayers === true
      ? 'every block'
      : p.patchAllLayers === false || p.patchAllLayers === 0
        ? 'the input only'
        : `blocks 0–${p.patchAllLayers - 1}`
  const lines = [
    `imported lens ${r.lensId} → ${groupDir}/${r.lensDir}`,
    `  from ${r.checkpoint}${p.step !== null ? ` (step ${p.step})` : ''}`,
    `  layer ${p.layer}, T ${p.explanationTokens}, patches ${patched}; trained on ${p.modelName}` +
      (p.origModelName && p.origModelName !== p.modelName
        ? ` with activations of ${p.origModelName}`
        : ''),
    `  activations from ${r.orig === 'base' ? 'the base' : `donor ${r.orig}`}` +
      (r.donor ? ` (written by this import from ${r.donor.name ?? r.donor.id})` : '')
  ]
  if (r.choiceNote) lines.push(`  ${r.choiceNote}`)
  for (const note of p.notes) lines.push(`  note: ${note}`)
  lines.push(
    `  analyse: talkative analyze --bundle ${JSON.stringify(groupDir)} --lens ${r.lensId} --text "…"`
  )
  return lines
}

export function importLensCommand(): Command {
  const cmd = new Command('lens')
    .description(
      "import a lens training checkpoint (the predecessor's torch.save *.pt) into a model group"
    )
    .argument('<checkpoint>', 'a *.pt file, or a training run folder (its newest readable *.pt)')
    .option('--into <group_dir>', 'the group folder the lens joins (holding manifest.json)')
    .addOption(new Option('--group <group_dir>', 'same as --into').hideHelp())
    .option('--id <id>', "lens id (default: the run folder's name and the layer, e.g. run-l12)")
    .option('--name <name>', 'display name (default: from the id, layer, T and step)')
    .option(
      '--orig <dir>',
      'the model the lens reads activations from, when it is not the base (orig_model_name): a Hugging Face folder or a PEFT adapter folder'
    )
    .option('--orig-base <dir>', 'with a PEFT adapter as --orig: the folder of the model it adapts')
    .option('--no-progress', 'no progress lines on stderr')
    .option('--json', 'print the result as JSON on stdout')
  usageExits(cmd)
  cmd.action(async (checkpoint: string, flags: ImportLensFlags) => {
    process.exitCode = await runImportLens(checkpoint, flags)
  })
  return cmd
}

async function runImportLens(checkpoint: string, flags: ImportLensFlags): Promise<number> {
  const group = flags.into ?? flags.group
  if (!group || (flags.into && flags.group && flags.into !== flags.group)) {
    process.stderr.write(
      `talkative: ${group ? 'give the group once' : 'missing --into <group_dir>'} (the group folder the lens joins)\n`
    )
    return EXIT.usage
  }
  if (flags.origBase && !flags.orig) {
    process.stderr.write('talkative: --orig-base only goes with --orig (a PEFT adapter folder)\n')
    return EXIT.usage
  }
  const controller = new AbortController()
  const onSignal = (): void => controller.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const printer = progressPrinter(flags.progress !== false && !flags.json)
  try {
    const result = await importLens({
      checkpoint,
      group,
      id: flags.id,
      name: flags.name,
      orig: flags.orig,
      origBase: flags.origBase,
      signal: controller.signal,
      onProgress: lensProgressReporter(printer.report)
    })
    printer.done()
    if (flags.json) process.stdout.write(JSON.stringify(importedLensOf(result)) + '\n')
    else process.stdout.write(summaryLines(result, group).join('\n') + '\n')
    return EXIT.ok
  } catch (err) {
    printer.done()
    return reportError(err, flags.json)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
