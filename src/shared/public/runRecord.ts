/** One record of `talkative run` output (a JSONL line, a JSON array entry): the public shape. */
import { z } from 'zod'
import { SerializedErrorSchema } from '../ipc/errors'
import { PublicMetadataSchema, PublicRowSchema } from './lensFrame'

export const PublicRunRecordSchema = z
  .strictObject({
    id: z.union([z.string(), z.number()]).describe('The input record’s id'),
    status: z.enum(['completed', 'failed']),
    text: z.string().optional().describe('The text analysed (after chat formatting or generation)'),
    generation: z
      .strictObject({
        prompt: z.string().describe('The prompt as rendered (chat template applied)'),
        completion: z.string().describe('The new text alone'),
        full_text: z
          .string()
          .describe('Prompt + completion with special tokens: what was analysed'),
        finish_reason: z.enum(['length', 'end_of_turn'])
      })
      .optional()
      .describe('With --generate'),
    metadata: PublicMetadataSchema.optional(),
    data: z.array(PublicRowSchema).optional(),
    error: SerializedErrorSchema.optional()
  })
  .describe('One dataset record’s result: {id, status, …, metadata, data} or {id, status, error}')
export type PublicRunRecord = z.infer<typeof PublicRunRecordSchema>
