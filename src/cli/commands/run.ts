/**
 * `talkative run --dataset IN.jsonl --out OUT.jsonl`: analyse (or generate, then analyse) every
 * record of a dataset, one result line per record as it finishes, resumable after any stop.
 */
import { Command, Option } from 'commander'
import { SingleBar } from 'cli-progress'
import { AppError } from '@shared/ipc/errors'
import type { AnalyzeOptionsInput } from '@shared/domain/analysis'
import {
  conversationText,
  formatFromPath,
  generateThenAnalyze,
  OUTPUT_FORMATS,
  runDataset,
  type DatasetRecord,
  type DatasetRunSummary,
  type GenerateOptionsInput,
  type LoadedGroup,
  type OutputFormat,
  type RecordProcessor
} from '../../main/engine'
import {
  EXIT,
  addAnalysisOptions,
  addGroupOptions,
  analysisOptions,
  floatArg,
  intArg,
  openGroup,
  reportError,
  seedArg,
  usageExits,
  type AnalysisFlags,
  type GroupFlags
} from './generate'

interface RunFlags extends GroupFlags, AnalysisFlags {
  dataset: string
  out: string
  format?: OutputFormat
  generate?: boolean
  onBadLine: 'skip' | 'fail'
  seed: number
  maxNewTokens: number
  genTemperature: number
  topP: number
  stopAtEndOfTurn?: boolean
  progress?: boolean
  quiet?: boolean
  /** commander's `--no-retry-failed`: false when given. */
  retryFailed?: boolean
}

export interface RecordJobOptions {
  lensId: string
  generate: boolean
  generation: GenerateOptionsInput
  analysis: AnalyzeOptionsInput
}

/**
 * What one record becomes: its text (or its conversation through the chat template) analysed;
 * with generation, the continuation is generated first and its full text analysed. A run that is
 * interrupted mid-record returns null so nothing partial is written.
 */
export function recordProcessor(group: LoadedGroup, job: RecordJobOptions): RecordProcessor {
  return async (record: DatasetRecord, isCancelled) => {
    const prompt = 'messages' in record ? { messages: record.messages } : { text: record.text }
    if (job.generate) {
      const { generation, analysis } = await generateThenAnalyze(
        group,
        { lensId: job.lensId, ...prompt, generation: job.generation, analysis: job.analysis },
        { isCancelled }
      )
      if (analysis.metadata.status === 'cancelled') return null
      const c = generation.completions[0]!
      return {
        text: c.fullText,
        generation: {
          prompt: generation.prompt,
          completion: c.text,
          fullText: c.fullText,
          finishReason: c.finishReason
        },
        metadata: analysis.metadata,
        rows: analysis.rows
      }
    }
    const text = 'messages' in record ? conversationText(group, record.messages) : record.text
    const analysis = await group.analyze(
      { lensId: job.lensId, text, options: job.analysis },
      { isCancelled }
    )
    if (analysis.metadata.status === 'cancelled') return null
    return { text, metadata: analysis.metadata, rows: analysis.rows }
  }
}

function resolveFormat(flags: RunFlags): OutputFormat {
  if (flags.format) return flags.format
  const fromName = formatFromPath(flags.out)
  if (!fromName) {
    throw new AppError(
      'invalid_input',
      `--format is needed: cannot tell the format of "${flags.out}" (use .jsonl, .json or .csv, or --format)`,
      {
        field: '--format'
      }
    )
  }
  return fromName
}

function formatSeconds(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '--'
  const total = Math.round(s)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const sec = total % 60
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m`
    : m > 0
      ? `${m}m${String(sec).padStart(2, '0')}s`
      : `${sec}s`
}

export function runCommand(): Command {
  const cmd = new Command('run')
    .description('analyse (or generate, then analyse) every record of a dataset; resumable')
    .requiredOption(
      '--dataset <file>',
      'input JSON Lines: {"id": …, "text": "…"} or {"id": …, "messages": [...]} per line'
    )
    .requiredOption(
      '--out <file>',
      'output; re-running with the same --out skips the ids already in it'
    )
    .addOption(
      new Option('--format <fmt>', 'output format (default: from the --out extension)').choices([
        ...OUTPUT_FORMATS
      ])
    )
    .option(
      '--generate',
      'generate a continuation of each record first, then analyse prompt + continuation'
    )
    .addOption(
      new Option('--on-bad-line <policy>', 'malformed input lines: skip them (reported) or fail')
        .choices(['skip', 'fail'])
        .default('skip')
    )
    .addOption(seedArg())
    .option(
      '--max-new-tokens <n>',
      'with --generate: new tokens per continuation',
      intArg('--max-new-tokens', 1, 4096),
      32
    )
    .option(
      '--gen-temperature <x>',
      'with --generate: sampling temperature (0 = greedy)',
      floatArg('--gen-temperature', 0, 5),
      1
    )
    .option(
      '--top-p <x>',
      'with --generate: nucleus sampling mass, in (0, 1]',
      floatArg('--top-p', 0, 1, { minExclusive: true }),
      1
    )
    .option('--stop-at-end-of-turn', 'with --generate: stop a continuation at an end-of-turn token')
    .option('--progress', 'show the progress bar even when stderr is not a terminal')
    .option('--quiet', 'no progress bar and no summary')
    .option(
      '--no-retry-failed',
      'on resume, keep records that failed in an earlier run as they are (default: redo them)'
    )
  addAnalysisOptions(cmd)
  addGroupOptions(cmd)
  usageExits(cmd)
  cmd.action(async (flags: RunFlags, command: Command) => {
    const fromCommandLine = (key: string): boolean => command.getOptionValueSource(key) === 'cli'
    process.exitCode = await runRun(flags, fromCommandLine)
  })
  return cmd
}

async function runRun(flags: RunFlags, fromCommandLine: (key: string) => boolean): Promise<number> {
  let opened: Awaited<ReturnType<typeof openGroup>> | undefined
  let interrupts = 0
  const onSignal = (): void => {
    interrupts++
    if (interrupts > 1) {
      // Each record is written whole, so leaving now loses at most the one in progress.
      process.stderr.write('\ntalkative: stopped; run the same command again to resume\n')
      process.exit(EXIT.interrupted)
    }
    process.stderr.write(
      '\ntalkative: stopping after the current record (Ctrl-C again to stop now)\n'
    )
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const showBar = !flags.quiet && (flags.progress || process.stderr.isTTY === true)
  let bar: SingleBar | undefined
  try {
    const format = resolveFormat(flags)
    if (!flags.generate) {
      for (const [flag, key] of [
        ['--max-new-tokens', 'maxNewTokens'],
        ['--gen-temperature', 'genTemperature'],
        ['--top-p', 'topP'],
        ['--stop-at-end-of-turn', 'stopAtEndOfTurn']
      ] as const) {
        if (fromCommandLine(key)) {
          throw new AppError('invalid_input', `${flag} only applies with --generate`, {
            field: flag
          })
        }
      }
    }
    opened = await openGroup(flags)
    const processor = recordProcessor(opened.group, {
      lensId: opened.lensId,
      generate: flags.generate === true,
      generation: {
        maxNewTokens: flags.maxNewTokens,
        temperature: flags.genTemperature,
        topP: flags.topP,
        seed: flags.seed,
        stopAtEndOfTurn: flags.stopAtEndOfTurn ?? false
      },
      analysis: analysisOptions(flags, flags.seed)
    })
    const summary = await runDataset(
      {
        input: flags.dataset,
        out: flags.out,
        format,
        onBadLine: flags.onBadLine,
        retryFailed: flags.retryFailed !== false
      },
      processor,
      {
        isCancelled: () => interrupts > 0,
        onStart: (info) => {
          for (const bad of info.badLines) {
            process.stderr.write(
              `talkative: ${flags.dataset} line ${bad.line}: ${bad.message} (skipped)\n`
            )
          }
          if (!flags.quiet && info.truncatedBytes > 0) {
            process.stderr.write(
              `talkative: removed an incomplete last record (${info.truncatedBytes} bytes) from ${flags.out}\n`
            )
          }
          if (!flags.quiet && info.retryingFailed > 0) {
            process.stderr.write(
              `talkative: redoing ${info.retryingFailed} record(s) that failed in an earlier run\n`
            )
          }
          if (!flags.quiet && info.alreadyDone > 0) {
            process.stderr.write(
              `talkative: resuming: ${info.alreadyDone} of ${info.total} records already in ${flags.out}\n`
            )
          }
          if (showBar && info.todo > 0) {
            bar = new SingleBar({
              format:
                ' {bar} {value}/{total} records | {failed} failed | elapsed {elapsedText} | ETA {etaText}',
              stream: process.stderr,
              hideCursor: true,
              clearOnComplete: false
            })
            bar.start(info.todo, 0, { failed: 0, elapsedText: '0s', etaText: '--' })
          }
        },
        onRecord: (_result, p) => {
          bar?.update(p.done, {
            failed: p.failed,
            elapsedText: formatSeconds(p.elapsedSeconds),
            etaText: formatSeconds(p.etaSeconds)
          })
        }
      }
    )
    bar?.stop()
    bar = undefined
    if (!flags.quiet) printSummary(summary)
    if (summary.cancelled) return EXIT.interrupted
    return summary.failed > 0 ? EXIT.partial : EXIT.ok
  } catch (err) {
    bar?.stop()
    return reportError(err)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await opened?.group.dispose()
  }
}

function printSummary(s: DatasetRunSummary): void {
  const parts = [
    `${s.processed} processed`,
    s.alreadyDone > 0 ? `${s.alreadyDone} already done` : '',
    s.failed > 0 ? `${s.failed} failed` : '',
    s.badLines.length > 0 ? `${s.badLines.length} bad lines skipped` : '',
    `${s.outRecords} records in ${s.out}`
  ].filter(Boolean)
  process.stderr.write(`talkative: ${s.cancelled ? 'interrupted' : 'done'}: ${parts.join(', ')}\n`)
}
