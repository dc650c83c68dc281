/**
 * A loaded model group: the base session (and donors) created once per device through the reload
 * cache (loading.ts), lenses loaded on first use (lenses.ts), and the runs on them (analysis.ts,
 * generation/) one at a time.
 */
import type { AnalysisResult } from '@shared/domain/analysis'
import type { InterventionRow } from '@shared/domain/research'
import { AppError } from '@shared/ipc/errors'
import { analyzeText, groupAutoRows, scoreExplanations } from './analysis'
import type { GenerateRequest, GenerationResult } from './generation/options'
import { runGeneration } from './generation/run'
import { GroupLenses } from './lenses'
import { interveneText } from './research/intervene'
import { sweepText } from './research/sweep'
import { keepForReload, openGroupParts, type GroupParts, type LoadHooks } from './loading'
import type { TextTokenizer, TokenizedText } from './tokenizer'
import type {
  AnalyzeHooks,
  AnalyzeRequest,
  BundleSummary,
  ExplanationScore,
  InterveneRequest,
  InterventionResult,
  LoadedGroup,
  ResearchHooks,
  ScoreRequest,
  SessionTarget,
  SweepEngineRequest
} from './types'
import { createLogger } from '../platform/logger'

const log = createLogger('engine')

export async function loadGroup(
  dir: string,
  target: SessionTarget,
  hooks: LoadHooks = {}
): Promise<LoadedGroup> {
  return new Group(await openGroupParts(dir, target, hooks))
}

class Group implements LoadedGroup {
  readonly summary: BundleSummary
  readonly #parts: GroupParts
  readonly #lenses: GroupLenses
  #disposed = false
  #running = Promise.resolve()

  constructor(parts: GroupParts) {
    this.#parts = parts
    this.summary = parts.bundle.summary
    this.#lenses = new GroupLenses(parts)
  }

  // What generation/run.ts reads of a group.
  get bundle(): GroupParts['bundle'] {
    return this.#parts.bundle
  }

  get target(): SessionTarget {
    return this.#parts.target
  }

  get tokenizer(): TextTokenizer {
    return this.#parts.tokenizer
  }

  get models(): GroupParts['models'] {
    return this.#parts.models
  }

  get autoRowsPerBatch(): number {
    return groupAutoRows(this.#parts)
  }

  tokenize(text: string): TokenizedText {
    return this.#parts.tokenizer.encode(text)
  }

  analyze(req: AnalyzeRequest, hooks: AnalyzeHooks = {}): Promise<AnalysisResult> {
    // One run at a time per group: ONNX Runtime sessions are not meant for concurrent runs from
    // one thread pool, and timings would be meaningless.
    return this.#serialised(() =>
      analyzeText(this.#parts, (id) => this.#lenses.get(id), req, hooks)
    )
  }

  generate(req: GenerateRequest): Promise<GenerationResult> {
    return this.#serialised(() => runGeneration(this, req))
  }

  intervene(
    req: InterveneRequest,
    hooks: ResearchHooks<InterventionRow> = {}
  ): Promise<InterventionResult> {
    return this.#serialised(() =>
      interveneText(this.#parts, (id) => this.#lenses.get(id), req, hooks)
    )
  }

  sweep(req: SweepEngineRequest, hooks: AnalyzeHooks = {}): Promise<AnalysisResult> {
    return this.#serialised(() => sweepText(this.#parts, (id) => this.#lenses.get(id), req, hooks))
  }

  async scoreExplanations(req: ScoreRequest): Promise<ExplanationScore[]> {
    return scoreExplanations(this.#parts, await this.#lenses.get(req.lensId), req)
  }

  #serialised<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#running.then(() => {
      if (this.#disposed) throw new AppError('unavailable', 'group was disposed')
      return run()
    })
    this.#running = next.then(
      () => undefined,
      () => undefined
    )
    return next
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    await this.#running
    await this.#lenses.settled()
    await Promise.all(this.#parts.sessions.map((s) => s.release()))
    await keepForReload(this.#parts).catch(
      log.failed(`keeping ${this.summary.groupId} in the host cache`)
    )
  }
}
