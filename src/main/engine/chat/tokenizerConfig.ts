import { existsSync, realpathSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { z } from 'zod'
import { AppError } from '@shared/ipc/errors'
import {
  BundleFileError,
  MAX_JSON_BYTES,
  isInsideFolder,
  jsonFailure,
  readRegularFile,
  readRegularFileSync,
  resolveInsideFolder
} from '../bundle/files'

export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json'

/** A special token is written either as its text or as an AddedToken object. */
const TokenTextSchema = z.union([z.string(), z.object({ content: z.string() }).loose()]).nullish()

const NamedTemplateSchema = z.object({ name: z.string(), template: z.string() })

const TokenizerConfigSchema = z
  .object({
    chat_template: z.union([z.string(), z.array(NamedTemplateSchema)]).nullish(),
    bos_token: TokenTextSchema,
    eos_token: TokenTextSchema,
    pad_token: TokenTextSchema,
    unk_token: TokenTextSchema,
    /** Not a Hugging Face key: the Workbench bundle format may list end-of-turn tokens explicitly. */
    end_of_turn_tokens: z.array(z.string()).optional(),
    added_tokens_decoder: z
      .record(
        z.string(),
        z.object({ content: z.string(), special: z.boolean().optional() }).loose()
      )
      .optional()
  })
  .loose()

/** What chat formatting and generation need from `tokenizer_config.json`. */
export interface TokenizerSpecials {
  chatTemplate: string | null
  bosToken: string | null
  eosToken: string | null
  padToken: string | null
  unkToken: string | null
  /** Explicit end-of-turn token texts, when the config lists them. */
  endOfTurnTokens: string[]
  /** Text of every token the config marks special. */
  specialTokens: string[]
  /** Where it came from, for error messages. */
  file: string | null
}

function tokenText(v: z.infer<typeof TokenTextSchema>): string | null {
  if (v === null || v === undefined) return null
  return typeof v === 'string' ? v : v.content
}

export function parseTokenizerConfig(raw: unknown, file: string | null = null): TokenizerSpecials {
  const parsed = TokenizerConfigSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = issue?.path.map(String).join('.') || undefined
    throw new AppError(
      'bundle_invalid',
      `${TOKENIZER_CONFIG_FILE}: ${issue?.message ?? 'invalid'}`,
      {
        field,
        file: file ?? TOKENIZER_CONFIG_FILE
      }
    )
  }
  const cfg = parsed.data
  let chatTemplate: string | null = null
  if (typeof cfg.chat_template === 'string') chatTemplate = cfg.chat_template
  else if (Array.isArray(cfg.chat_template)) {
    // Hugging Face stores several named templates this way; "default" is the chat one.
    const named = cfg.chat_template.find((t) => t.name === 'default') ?? cfg.chat_template[0]
    chatTemplate = named?.template ?? null
  }
  const specials = new Set<string>()
  for (const t of Object.values(cfg.added_tokens_decoder ?? {})) {
    if (t.special !== false) specials.add(t.content)
  }
  const bosToken = tokenText(cfg.bos_token)
  const eosToken = tokenText(cfg.eos_token)
  const padToken = tokenText(cfg.pad_token)
  const unkToken = tokenText(cfg.unk_token)
  for (const t of [bosToken, eosToken, padToken, unkToken]) if (t) specials.add(t)
  return {
    chatTemplate,
    bosToken,
    eosToken,
    padToken,
    unkToken,
    endOfTurnTokens: cfg.end_of_turn_tokens ?? [],
    specialTokens: [...specials],
    file
  }
}

/**
 * Reads a bundle's tokenizer config: the file its manifest names (`tokenizer.config`), else
 * `tokenizer_config.json`. A bundle without one has no specials and no template.
 */
export function readTokenizerConfig(bundleDir: string): TokenizerSpecials {
  let manifestText: string | null = null
  try {
    manifestText = readRegularFileSync(join(bundleDir, 'manifest.json'), MAX_JSON_BYTES).toString()
  } catch {
    // No readable manifest: bundle validation reports that; the default name applies here.
  }
  const file = configFileOf(bundleDir, manifestText)
  try {
    const real = realpathSync(file)
    if (!isInsideFolder(realpathSync(bundleDir), real))
      throw new BundleFileError('resolves outside the bundle folder (symlink)')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return parseTokenizerConfig({}, null)
    throw configFailure(file, err)
  }
  return readTokenizerConfigFile(file)
}

/** `readTokenizerConfig` without blocking the thread (the device manager reads it per scan). */
export async function loadTokenizerConfig(bundleDir: string): Promise<TokenizerSpecials> {
  const manifestText = await readRegularFile(join(bundleDir, 'manifest.json'), MAX_JSON_BYTES)
    .then((b) => b.toString('utf8'))
    .catch(() => null)
  const file = configFileOf(bundleDir, manifestText)
  let text: string
  try {
    await resolveInsideFolder(bundleDir, file)
    text = (await readRegularFile(file, MAX_JSON_BYTES)).toString('utf8')
  } catch (err) {
    if (err instanceof BundleFileError && err.code === 'ENOENT')
      return parseTokenizerConfig({}, null)
    throw configFailure(file, err)
  }
  return parseConfigText(text, file)
}

/** The config file the manifest names (`tokenizer.config`), else `tokenizer_config.json`. */
function configFileOf(bundleDir: string, manifestText: string | null): string {
  let configured: string | undefined
  try {
    const manifest = JSON.parse(manifestText ?? '') as { tokenizer?: { config?: unknown } }
    if (typeof manifest.tokenizer?.config === 'string') configured = manifest.tokenizer.config
  } catch {
    // No readable manifest: bundle validation reports that; the default name applies here.
  }
  const file = resolve(bundleDir, configured ?? TOKENIZER_CONFIG_FILE)
  if (!isInsideFolder(resolve(bundleDir), file)) {
    throw new AppError(
      'bundle_invalid',
      'manifest.json (tokenizer.config): the path escapes the bundle folder',
      { file: 'manifest.json', field: 'tokenizer.config' }
    )
  }
  return file
}

/** A config that cannot be read, named by its file name (never its absolute path or content). */
function configFailure(file: string, err: unknown): AppError {
  if (err instanceof AppError) return err
  const reason = err instanceof BundleFileError ? err.reason : 'cannot be read'
  return new AppError('bundle_invalid', `${basename(file)}: ${reason}`, { file: basename(file) })
}

export function readTokenizerConfigFile(file: string): TokenizerSpecials {
  if (!existsSync(file)) return parseTokenizerConfig({}, null)
  let text: string
  try {
    text = readRegularFileSync(file, MAX_JSON_BYTES).toString('utf8')
  } catch (err) {
    throw configFailure(file, err)
  }
  return parseConfigText(text, file)
}

function parseConfigText(text: string, file: string): TokenizerSpecials {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new AppError('bundle_invalid', `${basename(file)}: ${jsonFailure(err)}`, {
      file: basename(file)
    })
  }
  // Errors and templates name the file inside the bundle, never where the bundle lives.
  return parseTokenizerConfig(raw, basename(file))
}
