/**
 * The lens engine's public face: everything outside src/main/engine imports the engine from here
 * (lint-enforced), never from its modules. Bundle validation, loading, analysis planning,
 * generation jobs, chat templates, datasets, the demo and synthetic bundles, the reload cache and
 * the ONNX Runtime probes.
 */
import type { BigIntStats } from 'node:fs'
import { validateBundle, type ValidateOptions } from './bundle/open'
import { sharedDigestCache } from './bundle/digests'
import type { BundleSummary } from './types'

export type * from './types'

export { loadGroup } from './group'
export type { LoadHooks } from './loading'
export {
  DEFAULT_ROWS_PER_BATCH,
  autoRowsPerBatch,
  planAnalysis,
  planPositions,
  positionsPerBatch,
  type AnalysisPlan,
  type PositionRequest
} from './positions'
export { ensureDemoBundle, defaultCacheDir, DEMO_GROUP_ID } from './demo/demo'
export { generateSyntheticBundle, syntheticText, type SyntheticSpec } from './synthetic'
export { ENGINE_VERSION } from './version'
export { GroupCache, DEFAULT_HOST_CACHE_SHARE } from './cache'
export type { GroupCacheStats } from './cache'
export { probeProviders, ortVersion } from './ort'
export {
  ChatTemplate,
  loadTokenizerConfig,
  parseChatMessages,
  type ChatMessage,
  type RenderedChat
} from './chat'
export {
  conversationText,
  generateOptionsFromJob,
  generateThenAnalyze,
  type GenerateThenAnalyzeRequest,
  type GenerateThenAnalyzeResult
} from './generation/jobs'
export type {
  Completion,
  GenerateOptionsInput,
  GenerateRequest,
  GenerationResult
} from './generation/options'
export * from './dataset'
export { parseCsv, type CsvRow } from './dataset/csv'

/**
 * Validates a group folder without creating any session; throws AppError('bundle_invalid').
 * `writtenJson`: files the caller has just written, already parsed (see ValidateOptions).
 */
export async function openBundle(
  dir: string,
  options: Pick<ValidateOptions, 'writtenJson'> = {}
): Promise<BundleSummary> {
  return (await validateBundle(dir, options)).summary
}

/**
 * The SHA-256 of a bundle file computed by the process that has just written it (as it streamed
 * the bytes out), for the file exactly as `written` (its fstat after the last write) describes:
 * the validation that follows, and later loads, take it instead of reading the file back while
 * the file keeps that identity (bundle/digests.ts).
 */
export function rememberWrittenDigest(file: string, sha256: string, written: BigIntStats): void {
  sharedDigestCache().remember(file, sha256, written)
}

/**
 * `openBundle` that also reads every weight of the base and donor models (inline and ONNX external
 * data, streamed) for NaN/Inf: what `inspect` runs. Loading a group does not pay for this read.
 */
export async function inspectBundle(dir: string): Promise<BundleSummary> {
  return (await validateBundle(dir, { scanModelWeights: true })).summary
}

/**
 * A validated bundle folder was renamed (an importer's temporary folder moved into place): the
 * file digests computed while validating it carry over, so the library does not hash it again.
 */
export async function noteBundleMoved(from: string, to: string): Promise<void> {
  await sharedDigestCache().moved(from, to)
}

// Writing bundles tensor by tensor (importers): the graph laid out without weights, the external
// data filled one weight at a time, the manifest's model reference.
export { planBaseModel, type BaseModelLayout, type LaidOutWeight } from './graph/transformer'
export {
  addLensToGroup,
  modelRefFor,
  writeExternalData,
  writeLensFolder,
  writeStreamedModel,
  type LensSpec
} from './bundle/write'
export {
  SCHEMA_VERSION,
  ManifestSchema,
  LensManifestSchema,
  LensProvenanceSchema,
  type CheckpointSource,
  type Manifest,
  type ManifestFile,
  type LensManifest,
  type LensProvenance,
  type ModelRef
} from './bundle/manifest'

// The architecture a base graph is built for (the importers map Hugging Face configs onto it).
export * from './arch/spec'
export {
  archWeights,
  elementCount,
  layerParts,
  layerWeightName,
  parameterCount,
  type GlobalPart,
  type LayerPart,
  type WeightInfo
} from './arch/weights'

// Weight rows read back from a group folder (lens importers check a base against a checkpoint).
export { readWeightRows } from './bundle/weights'
