/**
 * `talkative analyze`: explain every token of a text with a lens and print the rows (a table,
 * or `{ metadata, rows }` with --json).
 */
import { Command, InvalidArgumentError } from 'commander'
import {
  DEFAULT_BEST_OF_K,
  type AnalyzeOptionsInput,
  type OptimiseOptionsInput
} from '@shared/domain/analysis'
import { toLensFrame } from '@shared/public/lensFrame'
import { AppError } from '@shared/ipc/errors'
import {
  EXIT,
  addGroupOptions,
  floatArg,
  intArg,
  openGroup,
  readTextFile,
  reportError,
  seedArg,
  tokenCell,
  usageExits,
  type GroupFlags
} from './generate'

interface AnalyzeFlags extends GroupFlags {
  text?: string
  file?: string
  bestOfK?: number
  temperature?: number
  seed: number
  rowsPerBatch?: number
  salience: boolean
  logitLens?: boolean
  kl: boolean
  positions?: { start: number; end: number }
  optimise?: boolean
  samplesPerIteration?: number
  salienceThreshold?: number
  maxTempIncreases?: number
  tempIncreaseFactor?: number
  json?: boolean
}

/** `A:B` → analyse positions A..B-1; `A:` → from A to the end. */
export function positionsArg(value: string): { start: number; end: number } {
  const m = /^(\d+):(\d*)$/.exec(value.trim())
  if (!m)
    throw new InvalidArgumentError(`--positions must be A:B (e.g. 3:10) or A:, got "${value}"`)
  const start = Number(m[1])
  const end = m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2])
  if (end <= start)
    throw new InvalidArgumentError(`--positions end (${end}) must be greater than start (${start})`)
  return { start, end }
}

export function analyzeCommand(): Command {
  const cmd = new Command('analyze')
    .description('explain every token of a text with a lens')
    .option('--text <str>', 'the text to analyse')
    .option('--file <f>', 'read the text from a file')
    .option(
      '--best-of-k <n>',
      `rollouts per position; the lowest-MSE one is kept (default ${DEFAULT_BEST_OF_K})`,
      intArg('--best-of-k', 1, 512)
    )
    .option(
      '--temperature <x>',
      'decoder sampling temperature, 0 = greedy (default 1)',
      floatArg('--temperature', 0, 5)
    )
    .addOption(seedArg())
    .option(
      '--rows-per-batch <n>',
      'decoder rows (positions × K) per batch (default: automatic)',
      intArg('--rows-per-batch', 1, 65536)
    )
    .option('--no-salience', 'skip token salience')
    .option('--logit-lens', 'add the logit-lens top tokens')
    .option('--no-kl', 'skip the KL divergence')
    .option('--positions <A:B>', 'analyse only token positions A..B-1', positionsArg)
    .option(
      '--optimise',
      'optimise each explanation iteratively (salience-guided) instead of best-of-K'
    )
    .option(
      '--samples-per-iteration <n>',
      'optimiser: rollouts per regeneration (default 16)',
      intArg('--samples-per-iteration', 1, 512)
    )
    .option(
      '--salience-threshold <x>',
      'optimiser: regenerate after a token whose salience is below this (default 0)',
      floatArg('--salience-threshold', -10, 10)
    )
    .option(
      '--max-temp-increases <n>',
      'optimiser: retries of a failed regeneration at a higher temperature (default 2)',
      intArg('--max-temp-increases', 0, 10)
    )
    .option(
      '--temp-increase-factor <x>',
      'optimiser: temperature multiplier per retry (default 1.5)',
      floatArg('--temp-increase-factor', 1, 10)
    )
    .option(
      '--json',
      'print { "metadata": …, "data": […] } (docs/public-schema.md) as one JSON document'
    )
  addGroupOptions(cmd)
  usageExits(cmd)
  cmd.action(async (flags: AnalyzeFlags) => {
    process.exitCode = await runAnalyze(flags)
  })
  return cmd
}

function textFrom(flags: AnalyzeFlags): string {
  if (flags.text !== undefined && flags.file !== undefined) {
    throw new AppError('invalid_input', 'give either --text or --file, not both', {
      field: '--file'
    })
  }
  const [text, flag] =
    flags.text !== undefined
      ? [flags.text, '--text']
      : flags.file !== undefined
        ? [readTextFile(flags.file, '--file'), '--file']
        : [undefined, '--text']
  if (text === undefined) {
    throw new AppError('invalid_input', 'nothing to analyse: give --text STR or --file F', {
      field: '--text'
    })
  }
  // As the app refuses it: a text of spaces has nothing to explain but the start token.
  if (!text.trim()) {
    throw new AppError('invalid_input', `nothing to analyse: ${flag} is empty`, { field: flag })
  }
  return text
}

/** The optimiser's options when --optimise (or one of its tuning flags) is given. */
function optimiseOptions(flags: AnalyzeFlags): OptimiseOptionsInput | undefined {
  const tuning = {
    ...(flags.samplesPerIteration === undefined
      ? {}
      : { samplesPerIteration: flags.samplesPerIteration }),
    ...(flags.salienceThreshold === undefined
      ? {}
      : { salienceThreshold: flags.salienceThreshold }),
    ...(flags.maxTempIncreases === undefined ? {} : { maxTempIncreases: flags.maxTempIncreases }),
    ...(flags.tempIncreaseFactor === undefined
      ? {}
      : { tempIncreaseFactor: flags.tempIncreaseFactor })
  }
  if (!flags.optimise && Object.keys(tuning).length > 0) {
    const flag = `--${Object.keys(tuning)[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
    throw new AppError('invalid_input', `${flag} tunes the optimiser: add --optimise`, {
      field: flag
    })
  }
  return flags.optimise ? tuning : undefined
}

async function runAnalyze(flags: AnalyzeFlags): Promise<number> {
  let opened: Awaited<ReturnType<typeof openGroup>> | undefined
  let interrupted = false
  const onSignal = (): void => {
    interrupted = true
  }
  process.once('SIGINT', onSignal)
  try {
    const text = textFrom(flags)
    opened = await openGroup(flags)
    const { group, lensId } = opened
    const options: AnalyzeOptionsInput = {
      seed: flags.seed,
      salience: flags.salience,
      kl: flags.kl,
      logitLens: flags.logitLens ?? false
    }
    if (flags.bestOfK !== undefined) options.bestOfK = flags.bestOfK
    if (flags.temperature !== undefined) options.temperature = flags.temperature
    if (flags.rowsPerBatch !== undefined) options.rowsPerBatch = flags.rowsPerBatch
    if (flags.positions) options.positions = flags.positions
    const optimise = optimiseOptions(flags)
    if (optimise) options.optimise = optimise
    const showProgress = process.stderr.isTTY && !flags.json
    const result = await group.analyze(
      { lensId, text, options },
      {
        isCancelled: () => interrupted,
        onOptimiser: (o) => {
          if (showProgress)
            process.stderr.write(
              `\rbatch ${o.batch}/${o.totalBatches}, optimiser step ${o.step}/${o.steps}   `
            )
        },
        onBatch: (_rows, p) => {
          if (showProgress) {
            const eta = p.etaSeconds === null ? '' : `, ETA ${p.etaSeconds.toFixed(1)} s`
            process.stderr.write(
              `\rbatch ${p.batch}/${p.totalBatches}, ${p.rowsDone}/${p.rowsTotal} rows${eta}   `
            )
          }
        }
      }
    )
    if (showProgress) process.stderr.write('\n')
    if (flags.json) {
      process.stdout.write(JSON.stringify(toLensFrame(result)) + '\n')
    } else {
      for (const r of result.rows) {
        const kl = r.klDivergence === null ? '' : `\tkl=${r.klDivergence.toPrecision(3)}`
        const lens = r.logitLensTop === null ? '' : `\tlogit-lens: ${r.logitLensTop}`
        const before = r.mseBefore === undefined ? '' : `\tmse-before=${r.mseBefore.toPrecision(4)}`
        process.stdout.write(
          `${r.position}\t${tokenCell(r)}\t${r.explanation}\tmse=${r.mse.toPrecision(4)}${before}${kl}${lens}\n`
        )
      }
      const m = result.metadata
      process.stderr.write(
        `${m.status}: ${m.analysedPositions} of ${m.numTokens} positions, lens ${m.lensId}, ${(m.timings.totalMs! / 1000).toFixed(2)} s\n`
      )
    }
    return result.metadata.status === 'cancelled' ? EXIT.interrupted : EXIT.ok
  } catch (err) {
    return reportError(err, flags.json)
  } finally {
    process.off('SIGINT', onSignal)
    await opened?.group.dispose()
  }
}
