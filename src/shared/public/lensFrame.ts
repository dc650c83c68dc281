/**
 * The public shape of an analysis: what every surface read outside the app writes (the command
 * line's `--json`, `run` output, the app's exports, the API). Row and metadata names are the
 * predecessor's (`LensDataFrame` rows and its web service's result metadata), so a notebook
 * written against its output reads ours unchanged; docs/public-schema.md says where values
 * deliberately differ. docs/public-schema.json is generated from these schemas.
 */
import { z } from 'zod'
import {
  AnalyzeOptionsSchema,
  type AnalysisMetadata,
  type AnalysisRow,
  type AnalyzeOptions
} from '../domain/analysis'
import { camelCase, renameKeysDeep, snakeCase } from './names'

/** One analysed position. Keys in this order in every file; CSV columns too. */
const PublicRowBaseSchema = z.strictObject({
  position: z.number().int().nonnegative().describe('0-based index of the token in the text'),
  token: z
    .string()
    .describe('The token the model received, decoded (`<unk>` for a word it does not know)'),
  token_id: z
    .number()
    .int()
    .nullable()
    .describe('Its id; null only in sessions imported from files that do not record it'),
  explanation: z
    .string()
    .describe('The best-of-K explanation, decoded (plus `[token]` when the lens adds it)'),
  explanation_structured: z
    .array(z.string())
    .describe('The explanation one token per entry (plus `[token]` when the lens adds it)'),
  mse: z.number().describe('Mean squared reconstruction error over the hidden dimension'),
  relative_rmse: z.number().describe('RMS(A − Â) / RMS(A)'),
  kl_divergence: z
    .number()
    .nullable()
    .describe('KL(P‖Q) in nats of the next-token distributions; null when KL was off'),
  token_salience: z
    .array(z.number())
    .describe('One value per explanation token; empty when salience was off'),
  logit_lens_top: z
    .string()
    .nullable()
    .describe('Top tokens of the unembedded activation, space-joined; null when off'),
  source_text: z
    .string()
    .nullable()
    .describe(
      'The text the tokenizer read where it differs from `token` (the word behind an `<unk>`); null otherwise'
    )
})

/**
 * Research fields, present only on the rows that have them (a layer sweep's, an optimised
 * analysis's), after the row's own keys; JSON only, not CSV columns.
 */
const PublicResearchRowFields = {
  layer: z
    .number()
    .int()
    .optional()
    .describe('Layer sweep: the layer whose residual this row explains'),
  lens_id: z.string().optional().describe('Layer sweep: the lens that explained it'),
  lens_layer: z
    .number()
    .int()
    .optional()
    .describe('Layer sweep: the layer that lens was trained at'),
  trained_at_layer: z
    .boolean()
    .optional()
    .describe('Layer sweep: whether the lens was trained at this layer'),
  mse_before: z
    .number()
    .optional()
    .describe('Optimised explanations: the starting candidate’s MSE'),
  rollouts: z
    .number()
    .int()
    .optional()
    .describe('Optimised explanations: decoder rollouts spent on this row')
}

export const PublicRowSchema = PublicRowBaseSchema.extend(PublicResearchRowFields).describe(
  'One analysed position (the predecessor’s LensDataFrame row)'
)
export type PublicRow = z.infer<typeof PublicRowSchema>

/** The row keys every row has, in file order (also the CSV columns of a row). */
export const PUBLIC_ROW_KEYS = Object.keys(PublicRowBaseSchema.shape) as (keyof PublicRow)[]

const RESEARCH_ROW_KEYS = [
  ['layer', 'layer'],
  ['lensId', 'lens_id'],
  ['lensLayer', 'lens_layer'],
  ['trainedAtLayer', 'trained_at_layer'],
  ['mseBefore', 'mse_before'],
  ['rollouts', 'rollouts']
] as const

export const PublicStatusSchema = z
  .enum(['completed', 'cancelled', 'failed', 'running', 'interrupted'])
  .describe(
    '`completed`; `cancelled` (rows so far kept); `failed`; `running` / `interrupted` only in a saved session'
  )

/** The analysis options as requested, defaults applied (the contract's AnalyzeOptions, snake_case). */
export const PublicOptionsSchema = z
  .strictObject({
    best_of_k: z.number().int(),
    temperature: z.number(),
    seed: z.number().int(),
    rows_per_batch: z.number().int().optional(),
    salience: z.boolean(),
    logit_lens: z.boolean(),
    kl: z.boolean(),
    positions: z.strictObject({ start: z.number().int(), end: z.number().int() }).optional(),
    last_n_messages: z.number().int().optional(),
    optimise: z
      .strictObject({
        samples_per_iteration: z.number().int(),
        salience_threshold: z.number(),
        max_temp_increases: z.number().int(),
        temp_increase_factor: z.number()
      })
      .optional()
      .describe('The iterative optimiser’s settings, when it replaced best-of-K')
  })
  .describe('Analysis options (as requested, defaults applied)')
export type PublicOptions = z.infer<typeof PublicOptionsSchema>

/**
 * Result metadata: the predecessor's names first (its web service's result metadata and
 * LensDataFrame's), then ours. The same keys on every surface.
 */
export const PublicMetadataSchema = z
  .strictObject({
    model_id: z.string().describe('The lens as `group/lens` (what the API takes as model_id)'),
    model_name: z.string().nullable().describe('The base model (decoder and encoder)'),
    orig_model_name: z
      .string()
      .nullable()
      .describe('The model whose activations are explained (the donor, else the base)'),
    encoder_decoder_model: z.string().nullable().describe('The lens’s display name'),
    shared_base_model: z.string().nullable().describe('The group’s base model'),
    donor_model: z
      .string()
      .nullable()
      .describe('The donor model when the lens reads another model than the base; else null'),
    checkpoint_path: z.string().nullable().describe('The model group folder the lens came from'),
    layer: z.number().int().nullable().describe('The layer whose activations are explained'),
    batch_size: z.number().int().nullable().describe('Positions per batch (effective)'),
    best_of_k: z.number().int(),
    temperature: z.number(),
    device: z
      .string()
      .nullable()
      .describe('Where it ran: cpu, cuda:N, or device ids, comma-separated'),
    group_id: z.string(),
    lens_id: z.string(),
    bundle_hash: z.string().nullable().describe('Content hash of the model group'),
    engine_version: z.string().nullable(),
    execution_provider: z.string().nullable(),
    rows_per_batch: z.number().int().nullable().describe('Decoder rows (positions × K) per batch'),
    seed: z.number().int(),
    num_tokens: z.number().int().nullable().describe('Tokens in the analysed text'),
    analysed_positions: z.number().int(),
    status: PublicStatusSchema,
    options: PublicOptionsSchema,
    timings: z.record(z.string(), z.number()).describe('Milliseconds per stage (`total_ms`, …)')
  })
  .describe('Result metadata')
export type PublicMetadata = z.infer<typeof PublicMetadataSchema>

export const PUBLIC_METADATA_KEYS = Object.keys(
  PublicMetadataSchema.shape
) as (keyof PublicMetadata)[]

/** `{metadata, data}`: the predecessor's `LensDataFrame.to_json` shape. */
export const LensFrameSchema = z
  .object({ metadata: PublicMetadataSchema, data: z.array(PublicRowSchema) })
  .describe('An analysis as {metadata, data}')
export type LensFrame = z.infer<typeof LensFrameSchema>

export function toPublicRow(row: AnalysisRow): PublicRow {
  return {
    position: row.position,
    token: row.token,
    token_id: row.tokenId,
    explanation: row.explanation,
    explanation_structured: row.explanationStructured,
    mse: row.mse,
    relative_rmse: row.relativeRmse,
    kl_divergence: row.klDivergence,
    token_salience: row.tokenSalience,
    logit_lens_top: row.logitLensTop,
    source_text: row.sourceText ?? null,
    ...researchFields(row)
  }
}

function researchFields(row: AnalysisRow): Partial<PublicRow> {
  const out: Record<string, unknown> = {}
  for (const [own, wire] of RESEARCH_ROW_KEYS) if (row[own] !== undefined) out[wire] = row[own]
  return out as Partial<PublicRow>
}

export function fromPublicRow(row: PublicRow): AnalysisRow {
  return {
    position: row.position,
    token: row.token,
    tokenId: row.token_id,
    ...(row.source_text === null ? {} : { sourceText: row.source_text }),
    explanation: row.explanation,
    explanationStructured: row.explanation_structured,
    mse: row.mse,
    relativeRmse: row.relative_rmse,
    klDivergence: row.kl_divergence,
    tokenSalience: row.token_salience,
    logitLensTop: row.logit_lens_top,
    ...Object.fromEntries(
      RESEARCH_ROW_KEYS.filter(([, wire]) => row[wire] !== undefined).map(([own, wire]) => [
        own,
        row[wire]
      ])
    )
  }
}

const OPTION_KEYS = Object.keys(AnalyzeOptionsSchema.shape) as (keyof AnalyzeOptions)[]

/** The requested options out of a record that may hold more (the engine adds effective figures). */
export function toPublicOptions(options: Record<string, unknown>): PublicOptions {
  const picked: Record<string, unknown> = {}
  for (const key of OPTION_KEYS) if (options[key] !== undefined) picked[key] = options[key]
  return renameKeysDeep(AnalyzeOptionsSchema.parse(picked), snakeCase) as PublicOptions
}

export function fromPublicOptions(options: PublicOptions): AnalyzeOptions {
  return AnalyzeOptionsSchema.parse(renameKeysDeep(options, camelCase))
}

function intOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null
}

/** What a result's metadata says when the analysis produced none (a run that failed early). */
export interface MetadataFallback {
  groupId: string
  lensId: string
  options: AnalyzeOptions
  bundleHash: string | null
  status: z.infer<typeof PublicStatusSchema>
  analysedPositions: number
}

/** An analysis's metadata as every public surface writes it. */
export function toPublicMetadata(
  m: AnalysisMetadata | null,
  fallback?: MetadataFallback
): PublicMetadata {
  if (!m) {
    if (!fallback) throw new Error('toPublicMetadata: no metadata and no fallback')
    const options = toPublicOptions(fallback.options)
    return {
      model_id: `${fallback.groupId}/${fallback.lensId}`,
      model_name: null,
      orig_model_name: null,
      encoder_decoder_model: null,
      shared_base_model: null,
      donor_model: null,
      checkpoint_path: null,
      layer: null,
      batch_size: null,
      best_of_k: options.best_of_k,
      temperature: options.temperature,
      device: null,
      group_id: fallback.groupId,
      lens_id: fallback.lensId,
      bundle_hash: fallback.bundleHash,
      engine_version: null,
      execution_provider: null,
      rows_per_batch: null,
      seed: options.seed,
      num_tokens: null,
      analysed_positions: fallback.analysedPositions,
      status: fallback.status,
      options,
      timings: {}
    }
  }
  const options = toPublicOptions(m.options)
  return {
    model_id: `${m.groupId}/${m.lensId}`,
    model_name: m.baseModel ?? null,
    orig_model_name: m.origModel ?? null,
    encoder_decoder_model: m.lensName ?? null,
    shared_base_model: m.baseModel ?? null,
    donor_model: m.donorModel ?? null,
    checkpoint_path: m.checkpointPath ?? null,
    layer: m.layer,
    batch_size: intOrNull(m.options.positionsPerBatch),
    best_of_k: options.best_of_k,
    temperature: options.temperature,
    device: m.device ?? null,
    group_id: m.groupId,
    lens_id: m.lensId,
    bundle_hash: m.bundleHash,
    engine_version: m.engineVersion,
    execution_provider: m.executionProvider,
    rows_per_batch: intOrNull(m.options.rowsPerBatch),
    seed: m.seed,
    num_tokens: m.numTokens,
    analysed_positions: m.analysedPositions,
    status: m.status,
    options,
    timings: renameKeysDeep(m.timings, snakeCase) as Record<string, number>
  }
}

/**
 * The contract's metadata back from a public one written by this app (`engine_version` set);
 * null for one that records no analysis.
 */
export function fromPublicMetadata(m: PublicMetadata): AnalysisMetadata | null {
  if (m.engine_version === null || m.layer === null) return null
  const options: Record<string, unknown> = { ...fromPublicOptions(m.options) }
  if (m.rows_per_batch !== null) options.rowsPerBatch = m.rows_per_batch
  if (m.batch_size !== null) options.positionsPerBatch = m.batch_size
  const status = m.status === 'cancelled' || m.status === 'failed' ? m.status : 'completed'
  return {
    groupId: m.group_id,
    lensId: m.lens_id,
    layer: m.layer,
    bundleHash: m.bundle_hash ?? '',
    engineVersion: m.engine_version,
    executionProvider: m.execution_provider ?? '',
    options,
    seed: m.seed,
    numTokens: m.num_tokens ?? 0,
    analysedPositions: m.analysed_positions,
    timings: renameKeysDeep(m.timings, camelCase) as Record<string, number>,
    status,
    ...(m.encoder_decoder_model === null ? {} : { lensName: m.encoder_decoder_model }),
    ...(m.model_name === null ? {} : { baseModel: m.model_name }),
    ...(m.orig_model_name === null ? {} : { origModel: m.orig_model_name }),
    donorModel: m.donor_model,
    ...(m.checkpoint_path === null ? {} : { checkpointPath: m.checkpoint_path }),
    ...(m.device === null ? {} : { device: m.device })
  }
}

/** An analysis result as `{metadata, data}`. */
export function toLensFrame(result: {
  metadata: AnalysisMetadata
  rows: readonly AnalysisRow[]
}): LensFrame {
  return { metadata: toPublicMetadata(result.metadata), data: result.rows.map(toPublicRow) }
}
