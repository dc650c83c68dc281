/**
 * A loaded group's `generate`: picks the orig model (the lens's donor where it has one), prepares
 * the prompt, runs the `generate` role of that model's graph in one `session.run`, decodes.
 */
import { AppError } from '@shared/ipc/errors'
import type { BaseModel } from '../baseModel'
import type { ValidatedBundle } from '../bundle/open'
import { ROLE, baseInputPlaceholders } from '../graph/transformer'
import { Tensor, type Feeds, type SessionTarget } from '../ort'
import type { TextTokenizer } from '../tokenizer'
import { ENGINE_VERSION } from '../version'
import { readTokenizerConfigFile, type TokenizerSpecials } from '../chat/tokenizerConfig'
import {
  decodeCompletions,
  generateFeeds,
  parseGenerateOptions,
  preparePrompt,
  stopIdsFor,
  type GenerateFeeds,
  type GenerationTokenizer
} from './generate'
import type { GenerateRequest, GenerationResult } from './options'

/** What of a loaded group generation uses. */
export interface GenerationHost {
  readonly bundle: ValidatedBundle
  readonly target: SessionTarget
  readonly tokenizer: TextTokenizer
  readonly models: ReadonlyMap<string, BaseModel>
}

const specialsCache = new Map<string, TokenizerSpecials>()

function specialsOf(bundle: ValidatedBundle): TokenizerSpecials {
  let s = specialsCache.get(bundle.tokenizerConfigFile)
  if (!s) {
    s = readTokenizerConfigFile(bundle.tokenizerConfigFile)
    specialsCache.set(bundle.tokenizerConfigFile, s)
  }
  return s
}

function adaptTokenizer(tok: TextTokenizer, vocabSize: number): GenerationTokenizer {
  return {
    // The analysis tokenizer adds BOS and applies the double-BOS rule, so a chat-rendered text that
    // already starts with BOS keeps exactly one.
    encode: (text) => tok.encode(text).ids,
    decode: (ids) => tok.decode([...ids]),
    tokenToId: (text) => tok.tokenToId(text),
    vocabSize
  }
}

/**
 * Ids that end a turn for this group's tokenizer (EOS, end-of-turn specials): what an exact-length
 * continuation suppresses, as the predecessor's `min_new_tokens` did.
 */
export function endOfTurnIdsOf(host: Pick<GenerationHost, 'bundle' | 'tokenizer'>): number[] {
  const tokenizer = adaptTokenizer(host.tokenizer, host.bundle.manifest.base.vocabSize)
  return stopIdsFor(tokenizer, specialsOf(host.bundle))
}

/** The generate role's feeds on top of the placeholders every role of the graph needs. */
export function generateRoleFeeds(f: GenerateFeeds, hiddenSize: number): Feeds {
  const feeds: Feeds = {}
  for (const p of Object.values(baseInputPlaceholders(hiddenSize))) {
    feeds[p.name] =
      p.type === 'int64'
        ? new Tensor('int64', p.data as BigInt64Array, p.dims)
        : new Tensor('float32', p.data as Float32Array, p.dims)
  }
  return {
    ...feeds,
    role: new Tensor('int64', BigInt64Array.from([BigInt(ROLE.generate)]), []),
    input_ids: new Tensor('int64', f.inputIds, [1, f.promptLength]),
    uniforms: new Tensor('float32', f.uniforms, [f.n, f.steps]),
    temperature: new Tensor('float32', Float32Array.from([f.temperature]), []),
    top_p: new Tensor('float32', Float32Array.from([f.topP]), []),
    logit_bias: new Tensor('float32', f.logitBias, [f.logitBias.length]),
    stop_ids: new Tensor('int64', f.stopIds, [f.stopIds.length])
  }
}

export async function runGeneration(
  host: GenerationHost,
  req: GenerateRequest
): Promise<GenerationResult> {
  const t0 = performance.now()
  const options = parseGenerateOptions(req.options)
  const { bundle } = host
  let origId = 'base'
  if (req.lensId !== undefined) {
    const lens = bundle.lenses.find((l) => l.manifest.id === req.lensId)
    if (!lens) {
      const known = bundle.lenses.map((l) => l.manifest.id).join(', ')
      throw new AppError(
        'not_found',
        `no lens "${req.lensId}" in group ${bundle.summary.groupId} (lenses: ${known})`,
        {
          field: 'lensId'
        }
      )
    }
    origId = lens.manifest.orig
  }
  const ref =
    origId === 'base' ? bundle.manifest.base : bundle.donors.find((m) => m.ref.id === origId)!.ref
  const model = host.models.get(origId)
  if (!model) throw new AppError('internal', `orig model ${origId} is not loaded`)

  const specials = specialsOf(bundle)
  const tokenizer = adaptTokenizer(host.tokenizer, ref.vocabSize)
  const prompt = preparePrompt(req, tokenizer, specials)
  if (prompt.ids.length + options.maxNewTokens > ref.maxPositions) {
    throw new AppError(
      'invalid_input',
      `the prompt has ${prompt.ids.length} tokens; with maxNewTokens ${options.maxNewTokens} that exceeds this model's ${ref.maxPositions} positions`,
      { field: 'options.maxNewTokens' }
    )
  }
  const endIds = stopIdsFor(tokenizer, specials)
  const feeds = generateFeeds(prompt.ids, options, endIds, ref.vocabSize)
  const tPrepared = performance.now()
  const out = await model.runRole(ROLE.generate, generateRoleFeeds(feeds, ref.hiddenSize), [
    'out_i'
  ])
  const tRun = performance.now()
  const ids = out.out_i!
  const stepsRun = ids.dims[0] ?? 0
  const completions = decodeCompletions(
    ids.data as BigInt64Array,
    stepsRun,
    options.n,
    prompt,
    endIds,
    options.stopAtEndOfTurn,
    tokenizer
  )
  const tDone = performance.now()
  return {
    prompt: prompt.text,
    promptIds: prompt.ids,
    completions,
    metadata: {
      groupId: bundle.summary.groupId,
      origModel: ref.id,
      lensId: req.lensId ?? null,
      engineVersion: ENGINE_VERSION,
      executionProvider: host.target.provider,
      options,
      promptTokens: prompt.ids.length,
      chat: prompt.chat,
      timings: {
        prepareMs: tPrepared - t0,
        generateMs: tRun - tPrepared,
        decodeMs: tDone - tRun,
        totalMs: tDone - t0,
        tokensPerSecond: (stepsRun * options.n) / Math.max((tRun - tPrepared) / 1000, 1e-9)
      }
    }
  }
}
