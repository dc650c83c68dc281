/**
 * Jobs built from a loaded group's primitives: generate-then-analyse as one job (as the
 * predecessor's generate_and_analyze did), and the text a conversation is analysed as.
 */
import type { AnalysisResult, AnalyzeOptionsInput } from '@shared/domain/analysis'
import type { AnalyzeHooks, LoadedGroup } from '../types'
import type { ChatMessage } from '../chat/messages'
import { ChatTemplate } from '../chat/template'
import { readTokenizerConfig } from '../chat/tokenizerConfig'
import type { GenerateOptionsInput, GenerationResult } from './options'

export interface GenerateThenAnalyzeRequest {
  lensId: string
  text?: string
  messages?: ChatMessage[]
  /** `n` is forced to 1: the one completion is what gets analysed. */
  generation?: GenerateOptionsInput
  analysis?: AnalyzeOptionsInput
}

export interface GenerateThenAnalyzeResult {
  generation: GenerationResult
  analysis: AnalysisResult
}

/** Generates one completion, then analyses its full text (prompt + completion, specials kept). */
export async function generateThenAnalyze(
  group: LoadedGroup,
  req: GenerateThenAnalyzeRequest,
  hooks?: AnalyzeHooks
): Promise<GenerateThenAnalyzeResult> {
  const generation = await group.generate({
    lensId: req.lensId,
    text: req.text,
    messages: req.messages,
    options: { ...req.generation, n: 1 }
  })
  const analysis = await group.analyze(
    { lensId: req.lensId, text: generation.completions[0]!.fullText, options: req.analysis },
    hooks
  )
  return { generation, analysis }
}

/**
 * A conversation as the analysis sees it (the predecessor's list form): the group's chat template with
 * the generation prompt when the last turn is the user's, the final message left open otherwise.
 */
export function conversationText(group: LoadedGroup, messages: readonly ChatMessage[]): string {
  // A dataset run renders one conversation per record: compile the group's template once.
  let template = templates.get(group)
  if (!template) {
    template = ChatTemplate.fromSpecials(readTokenizerConfig(group.summary.dir))
    templates.set(group, template)
  }
  return template.render(messages).text
}

const templates = new WeakMap<LoadedGroup, ChatTemplate>()

/** A job's continuation options (src/shared/domain/jobs.ts) in the engine's terms. */
export function generateOptionsFromJob(o: {
  maxNewTokens?: number
  temperature?: number
  topP?: number
  seed?: number
  completions?: number
  stopAtEndOfTurn?: boolean
}): GenerateOptionsInput {
  const out: GenerateOptionsInput = {}
  if (o.maxNewTokens !== undefined) out.maxNewTokens = o.maxNewTokens
  if (o.temperature !== undefined) out.temperature = o.temperature
  if (o.topP !== undefined) out.topP = o.topP
  if (o.seed !== undefined) out.seed = o.seed
  if (o.completions !== undefined) out.n = o.completions
  if (o.stopAtEndOfTurn !== undefined) out.stopAtEndOfTurn = o.stopAtEndOfTurn
  return out
}
