/**
 * `talkative generate`: continuations of a text or a conversation from the group's orig model
 * (the lens's donor where it has one), optionally analysed with the lens right after. Also the
 * option parsing, device selection, group loading and error reporting that `chat` and `run`
 * share with it.
 */
import { readFileSync } from 'node:fs'
import { Command, InvalidArgumentError, Option, type CommanderError } from 'commander'
import {
  DEFAULT_BEST_OF_K,
  type AnalysisRow,
  type AnalyzeOptionsInput
} from '@shared/domain/analysis'
import { toLensFrame } from '@shared/public/lensFrame'
import { ExecutionProviderSchema, type ExecutionProvider } from '@shared/domain/system'
import { noLensMessage } from '@shared/domain/models'
import { AppError, toSerializedError } from '@shared/ipc/errors'
import {
  ensureDemoBundle,
  generateThenAnalyze,
  loadGroup,
  parseChatMessages,
  type ChatMessage,
  type GenerateOptionsInput,
  type GenerationResult,
  type LoadedGroup,
  type SessionTarget
} from '../../main/engine'

/** Exit codes shared by generate, chat and run (documented in docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The engine or the system failed (a bug, a device error). */
  failed: 1,
  /** A bad command line: unknown or malformed option, missing argument, contradictory flags. */
  usage: 2,
  /** Bad input data: a bundle, dataset or messages file that cannot be used. */
  badInput: 3,
  /** A dataset run finished, but some records failed (their errors are in OUT). */
  partial: 4,
  /** Interrupted (Ctrl-C / SIGTERM); a dataset run resumes where it stopped. */
  interrupted: 130
} as const

// ---------------------------------------------------------------- option parsers

export function intArg(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${flag} must be an integer, got "${value}"`)
    }
    if (n < min || n > max)
      throw new InvalidArgumentError(`${flag} must be between ${min} and ${max}, got ${n}`)
    return n
  }
}

export function floatArg(
  flag: string,
  min: number,
  max: number,
  { minExclusive = false } = {}
): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n)) {
      throw new InvalidArgumentError(`${flag} must be a number, got "${value}"`)
    }
    if (n < min || n > max || (minExclusive && n === min)) {
      const low = minExclusive ? `above ${min}` : `at least ${min}`
      throw new InvalidArgumentError(`${flag} must be ${low} and at most ${max}, got ${n}`)
    }
    return n
  }
}

/** `--device cpu|cuda:N` and `--ep cpu|cuda|webgpu` → a session target; contradictions are named. */
export function parseTarget(
  device: string | undefined,
  ep: string | undefined,
  threads?: number
): SessionTarget {
  const dev = device ?? 'cpu'
  // A bare GPU index means cuda:N, as `device_id` does in the API.
  const m = /^(cpu|(?:cuda:)?(\d+))$/.exec(dev)
  if (!m)
    throw new AppError(
      'invalid_input',
      `--device must be cpu, cuda:N or a GPU index N, got "${dev}"`,
      { field: '--device' }
    )
  const gpuIndex = m[2] === undefined ? undefined : Number(m[2])
  let provider: ExecutionProvider
  if (ep === undefined) provider = gpuIndex === undefined ? 'cpu' : 'cuda'
  else {
    const parsed = ExecutionProviderSchema.safeParse(ep)
    if (!parsed.success) {
      throw new AppError('invalid_input', `--ep must be one of cpu, cuda, webgpu, got "${ep}"`, {
        field: '--ep'
      })
    }
    provider = parsed.data
  }
  if (provider === 'cpu' && gpuIndex !== undefined) {
    throw new AppError(
      'invalid_input',
      `--ep cpu cannot run on --device ${dev}; use --device cpu`,
      { field: '--ep' }
    )
  }
  if (provider !== 'cpu' && gpuIndex === undefined) {
    throw new AppError('invalid_input', `--ep ${provider} needs a GPU: add --device cuda:N`, {
      field: '--device'
    })
  }
  const target: SessionTarget = { provider }
  if (gpuIndex !== undefined) target.deviceIndex = gpuIndex
  if (threads !== undefined) target.threads = threads
  return target
}

/** The options every engine command takes: which group, which lens, which device. */
export function addGroupOptions(cmd: Command): Command {
  return cmd
    .option('--bundle <dir>', 'model group folder (default: the built-in demo group)')
    .option('--lens <id>', "lens id (default: the group's first lens)")
    .option('--device <id>', 'cpu, cuda:N or N (GPU index N, as in the API)', 'cpu')
    .addOption(
      new Option(
        '--ep <provider>',
        'execution provider (default: cpu on cpu, cuda on cuda:N)'
      ).choices(['cpu', 'cuda', 'webgpu'])
    )
    .option(
      '--threads <n>',
      'CPU intra-op threads (0 = ONNX Runtime default)',
      intArg('--threads', 0, 1024)
    )
}

export function addGenerationOptions(
  cmd: Command,
  defaults: { maxNewTokens: number; temperatureFlag: string }
): Command {
  const t = defaults.temperatureFlag
  return cmd
    .option(
      '--max-new-tokens <n>',
      'new tokens per completion',
      intArg('--max-new-tokens', 1, 4096),
      defaults.maxNewTokens
    )
    .option(`${t} <x>`, 'sampling temperature (0 = greedy)', floatArg(t, 0, 5), 1)
    .option(
      '--top-p <x>',
      'nucleus sampling mass, in (0, 1]',
      floatArg('--top-p', 0, 1, { minExclusive: true }),
      1
    )
}

/** Flags of the analysis that follows a generation (names as in `talkative analyze`). */
export function addAnalysisOptions(cmd: Command, prefix = ''): Command {
  const f = (name: string): string => `--${prefix}${name}`
  return cmd
    .option(
      `${f('best-of-k')} <n>`,
      `rollouts per position (1-512, default ${DEFAULT_BEST_OF_K})`,
      intArg(f('best-of-k'), 1, 512)
    )
    .option(
      `${f('analysis-temperature')} <x>`,
      'decoder temperature of the analysis (0 = greedy)',
      floatArg(f('analysis-temperature'), 0, 5)
    )
    .option(
      '--rows-per-batch <n>',
      'decoder rows per batch (default: automatic)',
      intArg('--rows-per-batch', 1, 65536)
    )
    .option('--no-salience', 'skip token salience')
    .option('--logit-lens', 'add the logit-lens top tokens')
    .option('--no-kl', 'skip the KL divergence')
    .option(
      '--last-n-messages <n>',
      'analyse only the last N chat messages',
      intArg('--last-n-messages', 1, 100000)
    )
}

export interface AnalysisFlags {
  bestOfK?: number
  analysisTemperature?: number
  rowsPerBatch?: number
  salience: boolean
  logitLens?: boolean
  kl: boolean
  lastNMessages?: number
}

export function analysisOptions(flags: AnalysisFlags, seed: number): AnalyzeOptionsInput {
  const o: AnalyzeOptionsInput = {
    seed,
    salience: flags.salience,
    kl: flags.kl,
    logitLens: flags.logitLens ?? false
  }
  if (flags.bestOfK !== undefined) o.bestOfK = flags.bestOfK
  if (flags.analysisTemperature !== undefined) o.temperature = flags.analysisTemperature
  if (flags.rowsPerBatch !== undefined) o.rowsPerBatch = flags.rowsPerBatch
  if (flags.lastNMessages !== undefined) o.lastNMessages = flags.lastNMessages
  return o
}

/** The token the model received, and the word typed there when it did not know it. */
export function tokenCell(r: Pick<AnalysisRow, 'token' | 'sourceText'>): string {
  const token = JSON.stringify(r.token)
  return r.sourceText === undefined ? token : `${token} (typed ${JSON.stringify(r.sourceText)})`
}

// ---------------------------------------------------------------- input helpers

export function readTextFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new AppError(
      code === 'ENOENT' ? 'not_found' : 'invalid_input',
      `${flag}: cannot read ${file} (${code ?? String(err)})`,
      {
        field: flag,
        file
      }
    )
  }
}

/** Messages from a JSON string or file: an array of {role, content}. */
export function parseMessagesJson(json: string, flag: string, file?: string): ChatMessage[] {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch (err) {
    throw new AppError('invalid_input', `${flag}: not valid JSON (${(err as Error).message})`, {
      field: flag,
      file
    })
  }
  try {
    return parseChatMessages(value, flag)
  } catch (err) {
    if (err instanceof AppError)
      throw new AppError('invalid_input', `${err.message}`, { field: err.field, file })
    throw err
  }
}

// ---------------------------------------------------------------- running and reporting

export interface GroupFlags {
  bundle?: string
  lens?: string
  device?: string
  ep?: string
  threads?: number
}

/**
 * Loads the group for a generation or chat: with `--lens` (or the group's first lens) its orig
 * model continues the text; a group with only a base gives `lensId` undefined, and the base
 * generates.
 */
export async function openGroupForGeneration(
  flags: GroupFlags
): Promise<{ group: LoadedGroup; lensId: string | undefined }> {
  return openGroupWith(flags, 'optional')
}

/**
 * Loads the group and picks the lens (`--lens`, else the group's first); a group with only a
 * base is refused, saying it has no lens yet and how to add one.
 */
export async function openGroup(
  flags: GroupFlags
): Promise<{ group: LoadedGroup; lensId: string }> {
  const opened = await openGroupWith(flags, 'required')
  return { group: opened.group, lensId: opened.lensId! }
}

async function openGroupWith(
  flags: GroupFlags,
  lens: 'required' | 'optional'
): Promise<{ group: LoadedGroup; lensId: string | undefined }> {
  const target = parseTarget(flags.device, flags.ep, flags.threads)
  const dir = flags.bundle ?? (await ensureDemoBundle())
  const group = await loadGroup(dir, target)
  const lenses = group.summary.lenses
  if (lenses.length === 0 && flags.lens === undefined) {
    if (lens === 'optional') return { group, lensId: undefined }
    await group.dispose()
    throw new AppError('not_found', noLensMessage(group.summary.groupId), {
      field: '--lens',
      file: dir
    })
  }
  const lensId = flags.lens ?? lenses[0]?.id
  if (!lensId || !lenses.some((l) => l.id === lensId)) {
    const known = group.summary.lenses.map((l) => l.id).join(', ')
    await group.dispose()
    throw new AppError(
      'invalid_input',
      `--lens: no lens "${flags.lens}" in this group (lenses: ${known})`,
      { field: '--lens' }
    )
  }
  return { group, lensId }
}

/** Fields the engine names that are a flag's value on the command line. */
const FLAG_OF_FIELD: Record<string, string> = {
  dir: '--bundle',
  lensId: '--lens',
  text: '--text',
  out: '--out'
}

/**
 * The flag behind an error's field, or undefined when the field is not one: a field of a file
 * (`schemaVersion` of manifest.json) is named by the message with its file, never turned into a
 * flag that does not exist.
 */
export function flagName(field: string | undefined, file?: string): string | undefined {
  if (!field) return undefined
  if (field.startsWith('--')) return field
  const mapped = FLAG_OF_FIELD[field]
  if (mapped) return mapped
  // `options.bestOfK` → --best-of-k, `options.positions.end` → --positions: the analysis and
  // generation flags are named after the options.
  const option = /^options\.([a-z][A-Za-z]*)/.exec(field)?.[1]
  if (option && !file) return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
  return undefined
}

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof AppError)) return EXIT.failed
  if (err.code === 'invalid_input') return err.file ? EXIT.badInput : EXIT.usage
  if (err.code === 'bundle_invalid' || err.code === 'not_found') return EXIT.badInput
  if (err.code === 'cancelled') return EXIT.interrupted
  return EXIT.failed
}

/** One line on stderr naming what was wrong and where; returns the exit code. */
export function reportError(err: unknown, json = false): number {
  const e = toSerializedError(err)
  if (json) process.stdout.write(JSON.stringify({ error: e }) + '\n')
  // The flag and the file, each unless the message already names it.
  const where = [flagName(e.field, e.file), e.file]
    .filter((part): part is string => !!part && !e.message.includes(part))
    .join(', ')
  process.stderr.write(`talkative: ${e.message}${where ? ` (${where})` : ''}\n`)
  return exitCodeFor(err)
}

/** Usage errors exit with EXIT.usage (commander would use 1); help and version exit 0. */
export function usageExits(cmd: Command): Command {
  return cmd.exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage)
  })
}

export function seedArg(): Option {
  return new Option('--seed <n>', 'random seed (same seed, same output)')
    .argParser(intArg('--seed', 0, 2 ** 31 - 1))
    .default(42)
}

// ---------------------------------------------------------------- the command

interface GenerateFlags extends GroupFlags, AnalysisFlags {
  text?: string
  file?: string
  messages?: string
  messagesFile?: string
  maxNewTokens: number
  n: number
  temperature: number
  topP: number
  seed: number
  stopAtEndOfTurn?: boolean
  analyze?: boolean
  json?: boolean
}

function promptFrom(flags: GenerateFlags): { text: string } | { messages: ChatMessage[] } {
  const given = [flags.text, flags.file, flags.messages, flags.messagesFile].filter(
    (v) => v !== undefined
  )
  if (given.length !== 1) {
    throw new AppError(
      'invalid_input',
      'give exactly one of --text, --file, --messages, --messages-file',
      {
        field: '--text'
      }
    )
  }
  if (flags.text !== undefined) return { text: flags.text }
  if (flags.file !== undefined) return { text: readTextFile(flags.file, '--file') }
  if (flags.messages !== undefined)
    return { messages: parseMessagesJson(flags.messages, '--messages') }
  const file = flags.messagesFile!
  return {
    messages: parseMessagesJson(readTextFile(file, '--messages-file'), '--messages-file', file)
  }
}

function printCompletions(result: GenerationResult): void {
  result.completions.forEach((c, i) => {
    if (result.completions.length > 1)
      process.stdout.write(`--- completion ${i + 1} (${c.finishReason})\n`)
    process.stdout.write(`${c.fullText}\n`)
  })
}

export function generateCommand(): Command {
  const cmd = new Command('generate')
    .description(
      "continue a text or a conversation with the group's orig model (the lens's donor where it has one)"
    )
    .option('--text <str>', 'the prompt text')
    .option('--file <f>', 'read the prompt text from a file')
    .option(
      '--messages <json>',
      'a conversation: [{"role":"user","content":"…"}, …] (chat template applied)'
    )
    .option('--messages-file <f>', 'read the conversation from a JSON file')
    .option('-n, --n <count>', 'completions to sample', intArg('--n', 1, 256), 1)
    .addOption(seedArg())
    .option(
      '--stop-at-end-of-turn',
      'end a completion at an end-of-turn token (default: exactly --max-new-tokens tokens)'
    )
    .option('--analyze', 'analyse the first completion with the lens, as one job')
    .option('--json', 'print JSON')
  addGenerationOptions(cmd, { maxNewTokens: 100, temperatureFlag: '--temperature' })
  addAnalysisOptions(cmd)
  addGroupOptions(cmd)
  usageExits(cmd)
  cmd.action(async (flags: GenerateFlags) => {
    process.exitCode = await runGenerate(flags)
  })
  return cmd
}

async function runGenerate(flags: GenerateFlags): Promise<number> {
  let opened: Awaited<ReturnType<typeof openGroupForGeneration>> | undefined
  try {
    const prompt = promptFrom(flags)
    opened = flags.analyze ? await openGroup(flags) : await openGroupForGeneration(flags)
    const { group, lensId } = opened
    const options: GenerateOptionsInput = {
      maxNewTokens: flags.maxNewTokens,
      n: flags.analyze ? 1 : flags.n,
      temperature: flags.temperature,
      topP: flags.topP,
      seed: flags.seed,
      stopAtEndOfTurn: flags.stopAtEndOfTurn ?? false
    }
    if (flags.analyze) {
      if (flags.n !== 1)
        throw new AppError('invalid_input', '--analyze analyses one completion: drop --n', {
          field: '--n'
        })
      const job = await generateThenAnalyze(group, {
        lensId: lensId!,
        ...prompt,
        generation: options,
        analysis: analysisOptions(flags, flags.seed)
      })
      if (flags.json) {
        // The analysis in the public shape, as `talkative analyze --json` prints it.
        const out = { generation: job.generation, analysis: toLensFrame(job.analysis) }
        process.stdout.write(JSON.stringify(out) + '\n')
      } else {
        printCompletions(job.generation)
        for (const r of job.analysis.rows) {
          process.stdout.write(
            `${r.position}\t${tokenCell(r)}\t${r.explanation}\tmse=${r.mse.toPrecision(4)}\n`
          )
        }
      }
      return EXIT.ok
    }
    const result = await group.generate({ lensId, ...prompt, options })
    if (flags.json) process.stdout.write(JSON.stringify(result) + '\n')
    else printCompletions(result)
    return EXIT.ok
  } catch (err) {
    return reportError(err, flags.json)
  } finally {
    await opened?.group.dispose()
  }
}
