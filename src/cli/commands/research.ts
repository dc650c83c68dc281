/**
 * `talkative intervene` and `talkative sweep`: the research modes on the command line (docs/cli.md).
 * Their --json output uses the predecessor's snake_case keys and the public metadata
 * (docs/public-schema.md), as `analyze` and the API do.
 */
import { Command } from 'commander'
import type { AnalyzeOptionsInput } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import { AppError } from '@shared/ipc/errors'
import { toLensFrame, toPublicMetadata } from '@shared/public/lensFrame'
import { toWire } from '../../main/api/names'
import {
  EXIT,
  addGroupOptions,
  floatArg,
  intArg,
  openGroup,
  readTextFile,
  reportError,
  seedArg,
  usageExits,
  type GroupFlags
} from './generate'

interface ExplainFlags extends GroupFlags {
  text?: string
  file?: string
  bestOfK?: number
  temperature?: number
  seed: number
  json?: boolean
}

interface InterveneFlags extends ExplainFlags {
  position: number[]
  string: string[]
  nextPosition?: number
  topK: number
  maxNewTokens: number
}

interface SweepFlags extends ExplainFlags {
  position: number
  layer?: number[]
  fixedLens?: boolean
  salience: boolean
  logitLens?: boolean
  kl: boolean
}

const collect =
  <T>(parse: (v: string) => T) =>
  (value: string, previous: T[] | undefined): T[] => [...(previous ?? []), parse(value)]

function addExplainOptions(cmd: Command): Command {
  return cmd
    .option('--text <str>', 'the text')
    .option('--file <f>', 'read the text from a file')
    .option(
      '--best-of-k <n>',
      'rollouts per explanation; the lowest-MSE one is kept (default 16)',
      intArg('--best-of-k', 1, 512)
    )
    .option(
      '--temperature <x>',
      'decoder sampling temperature, 0 = greedy (default 1)',
      floatArg('--temperature', 0, 5)
    )
    .addOption(seedArg())
    .option('--json', 'print one JSON document')
}

function textFrom(flags: ExplainFlags): string {
  if (flags.text !== undefined && flags.file !== undefined) {
    throw new AppError('invalid_input', 'give either --text or --file, not both', {
      field: '--file'
    })
  }
  if (flags.text !== undefined) return flags.text
  if (flags.file !== undefined) return readTextFile(flags.file, '--file')
  throw new AppError('invalid_input', 'no text: give --text STR or --file F', { field: '--text' })
}

function explainOptions(flags: ExplainFlags): AnalyzeOptionsInput {
  const o: AnalyzeOptionsInput = { seed: flags.seed }
  if (flags.bestOfK !== undefined) o.bestOfK = flags.bestOfK
  if (flags.temperature !== undefined) o.temperature = flags.temperature
  return o
}

/** Request fields the engine names, as the flags that set them. */
const FLAG_OF_FIELD: [RegExp, string][] = [
  [/^intervention\.positions\b/, '--position'],
  [/^intervention\.strings\b/, '--string'],
  [/^intervention\.nextPosition\b/, '--next-position'],
  [/^sweep\.position\b/, '--position'],
  [/^sweep\.layers\b/, '--layer']
]

function asFlagError(err: unknown): unknown {
  if (!(err instanceof AppError) || !err.field) return err
  const flag = FLAG_OF_FIELD.find(([re]) => re.test(err.field!))?.[1]
  return flag ? new AppError(err.code, err.message, { field: flag }) : err
}

/** Runs `body` on the opened group with Ctrl-C as a cancel; returns the exit code. */
async function withGroup(
  flags: ExplainFlags,
  body: (
    opened: Awaited<ReturnType<typeof openGroup>>,
    isCancelled: () => boolean
  ) => Promise<number>
): Promise<number> {
  let opened: Awaited<ReturnType<typeof openGroup>> | undefined
  let interrupted = false
  const onSignal = (): void => {
    interrupted = true
  }
  process.once('SIGINT', onSignal)
  try {
    textFrom(flags)
    opened = await openGroup(flags)
    return await body(opened, () => interrupted)
  } catch (err) {
    return reportError(asFlagError(err), flags.json)
  } finally {
    process.off('SIGINT', onSignal)
    await opened?.group.dispose()
  }
}

/** An intervention row with the predecessor's keys (§ "Research modes" in docs/cli.md). */
export function interventionJson(row: InterventionRow, originalText: string): unknown {
  return { original_text: originalText, ...(toWire(row) as Record<string, unknown>) }
}

function predictions(list: InterventionRow['topPredictionsOriginal'], n = 3): string {
  return list
    .slice(0, n)
    .map((p) => `${JSON.stringify(p.token)} ${p.probability.toFixed(3)}`)
    .join(', ')
}

export function interveneCommand(): Command {
  const cmd = new Command('intervene')
    .description(
      'replace the residual at a position by the encoding of an edited explanation and compare the model’s predictions'
    )
    .requiredOption(
      '--position <n>',
      'token position to intervene at (repeatable)',
      collect(intArg('--position', 0, 1_000_000))
    )
    .requiredOption(
      '--string <s>',
      'intervention text, one row each (repeatable)',
      collect((s: string) => s)
    )
    .option(
      '--next-position <n>',
      'read the predictions after this position (default: the intervened one)',
      intArg('--next-position', 0, 1_000_000)
    )
    .option('--top-k <n>', 'predicted tokens listed per run', intArg('--top-k', 1, 100), 10)
    .option(
      '--max-new-tokens <n>',
      'greedy continuation length per run (0 = none)',
      intArg('--max-new-tokens', 0, 512),
      20
    )
  addExplainOptions(cmd)
  addGroupOptions(cmd)
  usageExits(cmd)
  cmd.action(async (flags: InterveneFlags) => {
    process.exitCode = await withGroup(flags, async ({ group, lensId }, isCancelled) => {
      const text = textFrom(flags)
      const result = await group.intervene(
        {
          lensId,
          text,
          options: explainOptions(flags),
          intervention: {
            positions: flags.position,
            strings: flags.string,
            topK: flags.topK,
            maxNewTokens: flags.maxNewTokens,
            ...(flags.nextPosition === undefined ? {} : { nextPosition: flags.nextPosition })
          }
        },
        { isCancelled }
      )
      if (flags.json) {
        process.stdout.write(
          JSON.stringify({
            metadata: toPublicMetadata(result.metadata),
            interventions: result.rows.map((r) => interventionJson(r, text))
          }) + '\n'
        )
      } else {
        for (const r of result.rows) {
          const cut =
            r.truncatedTokens > 0 ? ` (cut ${r.truncatedTokens} tokens from the start)` : ''
          process.stdout.write(
            [
              `@${r.interventionPosition} ${JSON.stringify(r.intervenedToken)} → predicting after @${r.nextTokenPosition} ${JSON.stringify(r.predictionContextToken)}`,
              `  explanation:  ${r.explanationOriginal}`,
              `  intervention: ${r.interventionString}${cut}`,
              `  KL(A‖int)=${r.klDivergence.toPrecision(4)}  KL(A‖Â)=${r.klDivOrigDecoded.toPrecision(4)}  MSE(A,int)=${r.mse.toPrecision(4)}  MSE(A,Â)=${r.mseOrigDecoded.toPrecision(4)}`,
              `  top A:   ${predictions(r.topPredictionsOriginal)}`,
              `  top int: ${predictions(r.topPredictionsIntervention)}`,
              `  top Â:   ${predictions(r.topPredictionsOriginalDecoded)}`,
              `  continue A:   ${r.continuationOriginal}`,
              `  continue int: ${r.continuationIntervention}`,
              `  continue Â:   ${r.continuationOriginalDecoded}`,
              ''
            ].join('\n')
          )
        }
        process.stderr.write(
          `${result.metadata.status}: ${result.rows.length} interventions, lens ${result.metadata.lensId}\n`
        )
      }
      return result.metadata.status === 'cancelled' ? EXIT.interrupted : EXIT.ok
    })
  })
  return cmd
}

export function sweepCommand(): Command {
  const cmd = new Command('sweep')
    .description('explain the residual at one position from every layer, one row per layer')
    .requiredOption(
      '--position <n>',
      'token position to explain',
      intArg('--position', 0, 1_000_000)
    )
    .option(
      '--layer <n>',
      'explain only this layer (repeatable; default: every layer)',
      collect(intArg('--layer', 0, 1024))
    )
    .option(
      '--fixed-lens',
      'use the chosen lens at every layer (default: a lens trained at the layer where the group has one)'
    )
    .option('--no-salience', 'skip token salience')
    .option('--logit-lens', 'add the logit-lens top tokens')
    .option('--no-kl', 'skip the KL divergence')
  addExplainOptions(cmd)
  addGroupOptions(cmd)
  usageExits(cmd)
  cmd.action(async (flags: SweepFlags) => {
    process.exitCode = await withGroup(flags, async ({ group, lensId }, isCancelled) => {
      const result = await group.sweep(
        {
          lensId,
          text: textFrom(flags),
          options: {
            ...explainOptions(flags),
            salience: flags.salience,
            kl: flags.kl,
            logitLens: flags.logitLens ?? false
          },
          sweep: {
            position: flags.position,
            lenses: flags.fixedLens ? 'fixed' : 'trained',
            ...(flags.layer ? { layers: flags.layer } : {})
          }
        },
        { isCancelled }
      )
      if (flags.json) {
        process.stdout.write(JSON.stringify(toLensFrame(result)) + '\n')
      } else {
        for (const r of result.rows) {
          const kl = r.klDivergence === null ? '' : `\tkl=${r.klDivergence.toPrecision(3)}`
          const trained = r.trainedAtLayer ? 'trained here' : `trained at ${r.lensLayer ?? '?'}`
          process.stdout.write(
            `layer ${r.layer}\t${JSON.stringify(r.token)}\t${r.explanation}\tmse=${r.mse.toPrecision(4)}\trrmse=${r.relativeRmse.toPrecision(3)}${kl}\t${r.lensId ?? ''} (${trained})\n`
          )
        }
        process.stderr.write(
          `${result.metadata.status}: ${result.rows.length} layers at position ${flags.position}\n`
        )
      }
      return result.metadata.status === 'cancelled' ? EXIT.interrupted : EXIT.ok
    })
  })
  return cmd
}
