/**
 * `talkative import base HF_DIR --out GROUP_DIR`: a Hugging Face model folder (save_pretrained, a
 * cache snapshot, or a `models--org--name` folder) → a new group with only its base. Progress on
 * stderr; Ctrl-C or SIGTERM cancels and leaves nothing behind (exit 130); a bad checkpoint exits
 * 3 with the file and tensor named.
 */
import path from 'node:path'
import { Command, Option } from 'commander'
import type { ImportProgress } from '@shared/domain/imports'
import { importHfBase, type ImportBaseResult } from '../../main/import/hf'
import { EXIT, reportError, usageExits } from './generate'

interface ImportBaseFlags {
  out: string
  name?: string
  id?: string
  refuseNonFinite?: boolean
  json?: boolean
  progress?: boolean
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`
}

function parameters(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(1)} M`
}

/** One progress line: stage, tensors, bytes, rate, time left. */
export function progressLine(p: ImportProgress): string {
  const parts = [p.stage]
  if (p.tensorsTotal > 0) parts.push(`${p.tensorsDone}/${p.tensorsTotal} tensors`)
  if (p.bytesTotal > 0) parts.push(`${mb(p.bytesDone)} of ${mb(p.bytesTotal)}`)
  if (p.mbPerSecond !== null) parts.push(`${p.mbPerSecond.toFixed(0)} MB/s`)
  if (p.etaSeconds !== null && p.bytesDone < p.bytesTotal)
    parts.push(`${Math.ceil(p.etaSeconds)} s left`)
  return parts.join(', ')
}

/** Writes progress to stderr: one rewritten line on a terminal, a line every few seconds else. */
export function progressPrinter(enabled: boolean): {
  report: (p: ImportProgress) => void
  done: () => void
} {
  const tty = process.stderr.isTTY === true
  let last = 0
  let lastStage = ''
  let shown = false
  return {
    report(p) {
      if (!enabled) return
      const now = Date.now()
      if (tty) {
        process.stderr.write(`\r\x1b[2K${progressLine(p)}`)
        shown = true
      } else if (p.stage !== lastStage || now - last >= 5000) {
        process.stderr.write(`${progressLine(p)}\n`)
        last = now
      }
      lastStage = p.stage
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[2K')
    }
  }
}

function summaryLines(r: ImportBaseResult): string[] {
  const rate = r.weightSeconds > 0 ? r.bytesRead / 1e6 / r.weightSeconds : 0
  return [
    `imported ${r.name} → ${r.dir} (group ${r.groupId})`,
    `  ${r.architecture} (${r.modelType}), ${parameters(r.parameters)} parameters, checkpoint ${r.checkpointDtype}, runs in ${r.graphDtype}`,
    `  ${mb(r.weightBytes)} of weights, estimated memory ${mb(r.estimatedBytes)}`,
    `  read ${mb(r.bytesRead)} in ${r.weightSeconds.toFixed(1)} s (${rate.toFixed(0)} MB/s); ${r.seconds.toFixed(1)} s in all`,
    `  no lens yet: generation and chat run now (talkative chat --bundle ${JSON.stringify(r.dir)} --message "Hello"); add a lens with talkative import lens`
  ]
}

export function importBaseCommand(): Command {
  const cmd = new Command('base')
    .description(
      'import a Hugging Face model folder (save_pretrained, or the HF cache) as a new model group'
    )
    .argument('<hf_dir>', 'model folder: config.json, safetensors weights, tokenizer.json')
    .requiredOption('--out <group_dir>', 'folder to create for the group (absent or empty)')
    .option('--name <name>', 'display name (default: the repository or folder name)')
    .option('--id <id>', "group id (default: the --out folder's name)")
    .addOption(
      new Option(
        '--refuse-non-finite',
        'refuse weights holding NaN or infinities (default: import, warning with each tensor named)'
      )
    )
    .option('--no-progress', 'no progress lines on stderr')
    .option('--json', 'print the result as JSON on stdout')
  usageExits(cmd)
  cmd.action(async (hfDir: string, flags: ImportBaseFlags) => {
    process.exitCode = await runImportBase(hfDir, flags)
  })
  return cmd
}

async function runImportBase(hfDir: string, flags: ImportBaseFlags): Promise<number> {
  const controller = new AbortController()
  const onSignal = (): void => controller.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const printer = progressPrinter(flags.progress !== false && !flags.json)
  try {
    const result = await importHfBase({
      source: hfDir,
      out: path.resolve(flags.out),
      name: flags.name,
      groupId: flags.id,
      nonFinite: flags.refuseNonFinite ? 'refuse' : 'warn',
      outField: '--out',
      signal: controller.signal,
      onProgress: printer.report,
      onWarning: (m) => {
        printer.done()
        process.stderr.write(`talkative: warning: ${m}\n`)
      }
    })
    printer.done()
    if (flags.json) process.stdout.write(JSON.stringify(result) + '\n')
    else process.stdout.write(summaryLines(result).join('\n') + '\n')
    return EXIT.ok
  } catch (err) {
    printer.done()
    return reportError(err, flags.json)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
