/**
 * The engine's public types: what a device worker, the device manager, the CLI and tests see. A
 * leaf: nothing here imports the engine's implementation (only the option schemas it names), so
 * every engine module may import these types without a cycle.
 */
import type {
  AnalysisMetadata,
  AnalysisProgress,
  AnalysisResult,
  AnalysisRow,
  AnalyzeOptionsInput,
  OptimiserProgress
} from '@shared/domain/analysis'
import type {
  InterventionRequestInput,
  InterventionRow,
  SweepRequestInput
} from '@shared/domain/research'
import type { ExecutionProvider } from '@shared/domain/system'
import type { TokenizedText } from './tokenizer'
import type { GenerateRequest, GenerationResult } from './generation/options'

/** Where a group's sessions run. */
export interface SessionTarget {
  provider: ExecutionProvider
  /** GPU index for cuda / webgpu. */
  deviceIndex?: number
  /** Intra-op threads for the CPU provider (0 = ONNX Runtime's default). */
  threads?: number
}

/** What finding message starts (`lastNMessages`) needs of a tokenizer. */
export interface TurnTokenizer {
  tokenToId(text: string): number | undefined
  readonly bosId?: number
}

/** How a load used the reload cache (reported through `LoadHooks.onCacheResult`). */
export interface LoadCacheResult {
  /** The group came from the host-memory cache (no validation, hashing or graph optimisation). */
  hostHit: boolean
  /** Sessions created from an optimized graph (from memory or disk). */
  preOptimizedSessions: number
  /** Optimized graphs written to disk during this load. */
  savedOptimized: number
}

export interface LensSummary {
  id: string
  name: string
  layer: number
  /** Explanation length T. */
  tokens: number
  /** Orig model id used for activations (the group's base unless the lens names a donor). */
  origModel: string
}

export interface BundleSummary {
  groupId: string
  name: string
  dir: string
  /** Hash over the manifest and every file the bundle references (hex). */
  contentHash: string
  baseModel: {
    id: string
    hiddenSize: number
    layers: number
    vocabSize: number
    /** Longest text, in tokens, the base model takes. */
    maxPositions: number
    /** The architecture the graph computes (manifest `architecture`). */
    architecture?: string
    /** Parameters of the graph (a tied head counted once); null when the manifest does not say. */
    parameters?: number | null
    /** The dtype the graph runs in. */
    graphDtype?: string
    /** The dtype of the checkpoint it was imported from (null: not imported). */
    checkpointDtype?: string | null
  }
  lenses: LensSummary[]
  /** Bytes of weights on disk; the memory estimate derives from it. */
  weightBytes: number
  /** Estimated device memory for the group loaded with all its lenses, in bytes (GPU budget). */
  estimatedBytes: number
  /**
   * The estimate by device kind: weights as ONNX Runtime holds them plus one batch at that kind's
   * rows budget (bundle/estimate.ts). Absent in summaries made before it existed.
   */
  estimatedBytesByKind?: { cpu: number; gpu: number }
  hasChatTemplate: boolean
}

export interface AnalyzeRequest {
  lensId: string
  text: string
  options?: AnalyzeOptionsInput
  /**
   * Explicit token positions to analyse (data-parallel splits). Each position's sample stream is
   * derived from (seed, position), so any split gives the same rows as a single run.
   */
  positionList?: number[]
}

export interface AnalyzeHooks {
  /** Called after every batch with the new rows (in position order) and the progress. */
  onBatch?: (rows: AnalysisRow[], progress: AnalysisProgress) => void
  /** Polled at each batch boundary; true stops the run and returns the rows so far as `cancelled`. */
  isCancelled?: () => boolean
  /** The iterative optimiser's progress inside a batch (analyses with `options.optimise`). */
  onOptimiser?: (progress: OptimiserProgress) => void
}

/** A causal intervention on a text (research/intervene.ts). */
export interface InterveneRequest {
  lensId: string
  text: string
  intervention: InterventionRequestInput
  /** How each position's own explanation is found (best-of-K or optimised, seed, temperature). */
  options?: AnalyzeOptionsInput
}

export interface InterventionResult {
  metadata: AnalysisMetadata
  rows: InterventionRow[]
}

/** A layer sweep at one position (research/sweep.ts); rows carry `layer`, `lensId`, `trainedAtLayer`. */
export interface SweepEngineRequest {
  lensId: string
  text: string
  sweep: SweepRequestInput
  options?: AnalyzeOptionsInput
}

export interface ResearchHooks<Row> {
  /** Called as rows are ready (in order) with the progress. */
  onRows?: (rows: Row[], progress: AnalysisProgress) => void
  /** Polled between positions; true stops the run and returns the rows so far as `cancelled`. */
  isCancelled?: () => boolean
}

export interface ScoreRequest {
  lensId: string
  text: string
  /** Token position whose activation is the target. */
  position: number
  /** Candidate explanations as text; each is tokenised without specials, cut or padded with the
   * null token to the lens's T. */
  explanations: string[]
}

export interface ExplanationScore {
  explanation: string
  ids: number[]
  mse: number
  relativeRmse: number
}

export interface LoadedGroup {
  readonly summary: BundleSummary
  readonly target: SessionTarget
  analyze(req: AnalyzeRequest, hooks?: AnalyzeHooks): Promise<AnalysisResult>
  /**
   * Continuations of a text or conversation from the lens's orig model (its donor where it has
   * one; the base without a lens): n completions in one graph run. See generation/options.ts.
   */
  generate(req: GenerateRequest): Promise<GenerationResult>
  /** Token ids and strings of a text, as the analysis sees them (after the double-BOS rule). */
  tokenize(text: string): TokenizedText
  /** What finding message starts (`lastNMessages`) needs of the tokenizer. */
  readonly tokenizer: TurnTokenizer
  /** Rows per engine batch when a request names none (the manifest's figure for this provider). */
  readonly autoRowsPerBatch: number
  /** Reconstruction error of given explanations for one position (e.g. a user's edit). */
  scoreExplanations(req: ScoreRequest): Promise<ExplanationScore[]>
  /** Causal intervention: one row per intervened position and string. */
  intervene(
    req: InterveneRequest,
    hooks?: ResearchHooks<InterventionRow>
  ): Promise<InterventionResult>
  /** Layer sweep at one position: one analysis row per layer. */
  sweep(req: SweepEngineRequest, hooks?: AnalyzeHooks): Promise<AnalysisResult>
  dispose(): Promise<void>
}
