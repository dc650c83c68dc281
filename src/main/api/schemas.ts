/**
 * The /api/v2 request and response schemas. Requests use the seed's snake_case names and are built
 * from the contract's own field schemas (`snakeObject`); responses are the contract's schemas
 * (renamed to snake_case on the wire by `toWire`). The OpenAPI document is generated from these.
 */
import { z } from 'zod'
import { AnalyzeOptionsSchema, OptimiseOptionsSchema } from '@shared/domain/analysis'
import { PlacementSchema } from '@shared/domain/devices'
import {
  GenerateOptionsSchema,
  JobChatMessageSchema,
  JobIdSchema,
  JobStatusSchema
} from '@shared/domain/jobs'
import { LibraryGroupSchema } from '@shared/domain/models'
import { InterventionRequestSchema, SweepRequestSchema } from '@shared/domain/research'
import { SerializedErrorSchema } from '@shared/ipc/errors'
import { UnloadResultSchema } from '@shared/ipc/channels/models'
import { SystemStateSchema } from '@shared/ipc/channels/system'
import { DeviceRefSchema, snakeObject } from './names'

const MAX_PROMPT_CHARS = 200_000

const ModelRefSchema = z
  .string()
  .min(1)
  .max(401)
  .describe('A lens: `group/lens`, a lens id unique across groups, or a group id (its first lens)')
const GroupIdSchema = z.string().min(1).max(200).describe('A model group id, e.g. demo-words')
const PromptSchema = z
  .union([z.string().min(1).max(MAX_PROMPT_CHARS), z.array(JobChatMessageSchema).min(1).max(1000)])
  .describe(
    'Text to analyse or continue, or a chat as [{role, content}] rendered with the group chat template (as the seed slim API accepted)'
  )
const WaitSchema = z
  .boolean()
  .default(true)
  .describe('Answer when the job has finished (true) or at once with 202 and the job id (false)')

/**
 * The predecessor's `optimize_explanations_config`: `best_of_k` and `temperature` mean what they
 * meant; `use_batched` must be true (its sequential optimiser is not in the Workbench); the keys
 * only that optimiser read are accepted and have no effect, as in its batched path.
 */
export const OptimizeExplanationsConfigSchema = z
  .strictObject({
    best_of_k: z.number().int().min(1).max(512).optional(),
    temperature: z.number().min(0).max(5).optional(),
    use_batched: z.boolean().optional(),
    n_groups_per_rollout: z.number().int().min(1).max(65536).nullable().optional(),
    rollout_batch_size: z.number().int().min(1).max(65536).optional(),
    num_samples_per_iteration: z.number().int().min(1).optional(),
    num_samples: z.number().int().min(1).optional(),
    salience_pct_threshold: z.number().min(0).max(1).optional(),
    max_temp_increases: z.number().int().min(0).optional(),
    temp_increase_factor: z.number().positive().optional()
  })
  .describe(
    "Seed: the predecessor's best-of-K settings (best_of_k, temperature; use_batched must be true)"
  )

const ChatFlagSchema = z
  .boolean()
  .optional()
  .describe(
    'Seed: a string prompt is a conversation: JSON [{role, content}], or plain text as one user turn'
  )

export const ApiAnalyzeOptionsSchema = z
  .strictObject({
    ...snakeObject(AnalyzeOptionsSchema).shape,
    optimise: snakeObject(OptimiseOptionsSchema)
      .optional()
      .describe(
        'Optimise each explanation iteratively instead of best-of-K (contract OptimiseOptions)'
      ),
    calculate_token_salience: z.boolean().optional().describe('Seed name of `salience`'),
    logit_lens_analysis: z.boolean().optional().describe('Seed name of `logit_lens`'),
    no_kl: z.boolean().optional().describe('Seed name of `kl`, inverted'),
    batch_size: z
      .number()
      .int()
      .min(1)
      .max(65536)
      .optional()
      .describe('Seed: token positions per batch (rows_per_batch = batch_size × best_of_k)'),
    optimize_explanations_config: OptimizeExplanationsConfigSchema.optional(),
    no_eval: z
      .boolean()
      .optional()
      .describe(
        'Seed: skip the costly evaluations (KL and salience); MSE and relative RMSE stay, best-of-K needs them'
      ),
    use_chat_format: ChatFlagSchema,
    is_chat: ChatFlagSchema
  })
  .describe('Analysis options (contract AnalyzeOptions, snake_case, and the seed names)')

export const ApiGenerateOptionsSchema = z
  .strictObject({
    ...snakeObject(GenerateOptionsSchema).shape,
    num_tokens: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .optional()
      .describe('Seed name of `max_new_tokens`'),
    num_completions: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe('Seed name of `completions`'),
    return_full_text: z
      .union([z.boolean(), z.literal('full_and_completion')])
      .optional()
      .describe('Seed: true (default) answers prompt + continuation, false the continuation alone'),
    use_chat_format: ChatFlagSchema,
    is_chat: ChatFlagSchema
  })
  .describe('Continuation options (contract GenerateOptions, snake_case, and the seed names)')

const NumPredictionsSchema = z
  .number()
  .int()
  .min(1)
  .max(512)
  .describe('Best-of-K: rollouts per position, the lowest-MSE explanation is kept')

export const LoadModelRequestSchema = z.strictObject({
  model_id: ModelRefSchema,
  device_id: DeviceRefSchema.optional(),
  wait: WaitSchema
})

export const LoadGroupRequestSchema = z.strictObject({
  group_id: GroupIdSchema,
  device_id: DeviceRefSchema.optional(),
  wait: WaitSchema
})

export const UnloadGroupRequestSchema = z.strictObject({
  group_id: GroupIdSchema,
  device_id: DeviceRefSchema.optional().describe('Default: every device holding the group'),
  force: z
    .boolean()
    .default(false)
    .describe('Unload even if pinned or in use (running jobs on it are cancelled)')
})

export const PinGroupRequestSchema = z.strictObject({
  group_id: GroupIdSchema,
  device_id: DeviceRefSchema.optional().describe('Default: the one device holding the group'),
  pinned: z.boolean().default(true)
})

export const ProcessRequestSchema = z.strictObject({
  model_id: ModelRefSchema,
  prompt: PromptSchema,
  num_predictions: NumPredictionsSchema.optional(),
  device_id: DeviceRefSchema.optional(),
  options: ApiAnalyzeOptionsSchema.optional(),
  wait: WaitSchema
})

export const GenerateRequestSchema = z.strictObject({
  model_id: ModelRefSchema,
  prompt: PromptSchema,
  num_completions: z
    .number()
    .int()
    .min(1)
    .max(64)
    .optional()
    .describe('Seed name of options.completions'),
  device_id: DeviceRefSchema.optional(),
  options: ApiGenerateOptionsSchema.optional(),
  wait: WaitSchema
})

export const GenerateAnalyzeRequestSchema = z.strictObject({
  model_id: ModelRefSchema,
  prompt: PromptSchema,
  num_predictions: NumPredictionsSchema.optional(),
  device_id: DeviceRefSchema.optional(),
  options: ApiAnalyzeOptionsSchema.optional(),
  generation: ApiGenerateOptionsSchema.optional(),
  wait: WaitSchema
})

/**
 * A causal intervention: the contract's InterventionRequest fields at the top level (positions,
 * strings, next_position, top_k, max_new_tokens); options say how each position's own
 * explanation is found.
 */
export const InterveneRequestSchema = z.strictObject({
  model_id: ModelRefSchema,
  prompt: PromptSchema,
  positions: InterventionRequestSchema.shape.positions,
  strings: InterventionRequestSchema.shape.strings,
  next_position: InterventionRequestSchema.shape.nextPosition,
  top_k: InterventionRequestSchema.shape.topK,
  max_new_tokens: InterventionRequestSchema.shape.maxNewTokens,
  num_predictions: NumPredictionsSchema.optional(),
  device_id: DeviceRefSchema.optional(),
  options: ApiAnalyzeOptionsSchema.optional(),
  wait: WaitSchema
})

/** A layer sweep at one position: the contract's SweepRequest fields (position, layers, lenses). */
export const SweepApiRequestSchema = z.strictObject({
  model_id: ModelRefSchema,
  prompt: PromptSchema,
  position: SweepRequestSchema.shape.position,
  layers: SweepRequestSchema.shape.layers,
  lenses: SweepRequestSchema.shape.lenses,
  num_predictions: NumPredictionsSchema.optional(),
  device_id: DeviceRefSchema.optional(),
  options: ApiAnalyzeOptionsSchema.optional(),
  wait: WaitSchema
})

// Responses: contract schemas in camelCase; `toWire` and the OpenAPI generator rename them.

export const ApiSystemStateSchema = SystemStateSchema.extend({
  numDevices: z.number().int().describe('Devices the manager runs (GPUs, CPU, virtual cpu:N)'),
  groups: z.array(LibraryGroupSchema).describe('The library groups with their lenses')
})

export const LoadResponseSchema = z.object({
  status: z.literal('loaded'),
  jobId: z.string(),
  modelId: z.string().nullable(),
  groupId: z.string(),
  deviceId: z.string(),
  /** The predecessor's name of the device (its `device_id` was a GPU index). */
  device: z.string(),
  placement: PlacementSchema.nullable(),
  message: z.string()
})

export const UnloadResponseSchema = UnloadResultSchema.extend({
  groupId: z.string(),
  message: z.string()
})

export const PinResponseSchema = z.object({
  groupId: z.string(),
  deviceId: z.string(),
  placement: PlacementSchema
})

export const JobQueuedSchema = z.object({
  jobId: JobIdSchema,
  status: JobStatusSchema,
  queuePosition: z.number().int().nullable()
})

export const ApiErrorSchema = z.object({ error: SerializedErrorSchema })

export { JobStateSchema } from '@shared/domain/jobs'
/** A job's result with its analysis in the public names (docs/public-schema.md). */
export { PublicJobResultSchema as JobResultSchema } from '@shared/public/jobResult'
