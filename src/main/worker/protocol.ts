/**
 * The device worker protocol: one per device process, the same over Node's child_process IPC and
 * Electron's utilityProcess port. Every message is a tagged union checked with zod on arrival, on
 * both sides. Requests carry a `seq`; each gets exactly one `response` with the same `seq`.
 */
import { z } from 'zod'
import {
  AnalysisMetadataSchema,
  AnalysisProgressSchema,
  AnalysisRowSchema,
  AnalyzeOptionsSchema,
  OptimiserProgressSchema
} from '@shared/domain/analysis'
import {
  InterventionRequestSchema,
  InterventionRowSchema,
  SweepRequestSchema
} from '@shared/domain/research'
import { GenerateOptionsSchema } from '@shared/domain/jobs'
import { ExecutionProviderSchema } from '@shared/domain/system'
import { SerializedErrorSchema } from '@shared/ipc/errors'

const SessionTargetSchema = z.object({
  provider: ExecutionProviderSchema,
  deviceIndex: z.number().int().nonnegative().optional(),
  threads: z.number().int().nonnegative().optional()
})

const MemorySchema = z.object({
  rssBytes: z.number(),
  heapUsedBytes: z.number(),
  externalBytes: z.number()
})
export type WorkerMemory = z.infer<typeof MemorySchema>

/** The worker's reload cache (engine/cache): host-memory budget and the optimized-graph folder. */
const CacheConfigSchema = z.object({
  hostBytes: z.number().int().nonnegative(),
  optimizedDir: z.string().nullable()
})

export const HostCacheStateSchema = z.object({
  budgetBytes: z.number(),
  bytes: z.number(),
  hits: z.number().int(),
  misses: z.number().int(),
  evictions: z.number().int(),
  groups: z.array(
    z.object({
      groupId: z.string(),
      contentHash: z.string(),
      bytes: z.number(),
      models: z.number().int(),
      cachedAt: z.number()
    })
  )
})
export type HostCacheState = z.infer<typeof HostCacheStateSchema>

const BundleSummaryLiteSchema = z.object({
  groupId: z.string(),
  contentHash: z.string(),
  estimatedBytes: z.number(),
  weightBytes: z.number()
})

/** Each operation: its request fields and the shape of its successful answer. */
export const workerOps = {
  /** First message after start: which device this process serves. */
  init: {
    request: z.object({
      op: z.literal('init'),
      deviceId: z.string(),
      target: SessionTargetSchema,
      /** Absent: no reload cache. */
      cache: CacheConfigSchema.optional()
    }),
    response: z.object({ pid: z.number().int(), memory: MemorySchema, engineVersion: z.string() })
  },
  /** Open the group's sessions on this device. */
  load: {
    request: z.object({
      op: z.literal('load'),
      groupId: z.string(),
      dir: z.string(),
      /** For analyses only: base models open with the analysis roles first (engine/loading.ts). */
      analysisRolesFirst: z.boolean().optional()
    }),
    response: z.object({
      summary: BundleSummaryLiteSchema,
      loadMs: z.number(),
      rssBeforeBytes: z.number(),
      rssAfterBytes: z.number(),
      /** How the load used the reload cache (absent without one). */
      cache: z
        .object({
          hostHit: z.boolean(),
          preOptimizedSessions: z.number().int(),
          savedOptimized: z.number().int()
        })
        .optional(),
      /** Host cache bytes before and after: a hit moves its bytes from the cache to the group. */
      cacheBytesBefore: z.number().optional(),
      cacheBytesAfter: z.number().optional()
    })
  },
  unload: {
    request: z.object({ op: z.literal('unload'), groupId: z.string() }),
    response: z.object({
      rssBeforeBytes: z.number(),
      rssAfterBytes: z.number(),
      wasLoaded: z.boolean(),
      /** Host cache bytes before and after: what the unload moved into the cache stays resident. */
      cacheBytesBefore: z.number().optional(),
      cacheBytesAfter: z.number().optional()
    })
  },
  /** The token positions an analysis of `text` covers (what a data-parallel split divides). */
  plan: {
    request: z.object({
      op: z.literal('plan'),
      groupId: z.string(),
      text: z.string(),
      options: AnalyzeOptionsSchema.optional()
    }),
    response: z.object({
      positions: z.array(z.number().int()),
      splittable: z.boolean(),
      /** Positions the engine puts in one batch here: a data-parallel share is never smaller. */
      positionsPerBatch: z.number().int().positive()
    })
  },
  analyze: {
    request: z.object({
      op: z.literal('analyze'),
      taskId: z.string(),
      groupId: z.string(),
      lensId: z.string(),
      text: z.string(),
      options: AnalyzeOptionsSchema.optional(),
      positionList: z.array(z.number().int()).optional()
    }),
    response: z.object({ metadata: AnalysisMetadataSchema, rowCount: z.number().int() })
  },
  generate: {
    request: z.object({
      op: z.literal('generate'),
      taskId: z.string(),
      groupId: z.string(),
      /** The lens whose orig model continues the text; absent: the group's base. */
      lensId: z.string().optional(),
      text: z.string(),
      options: GenerateOptionsSchema.optional()
    }),
    response: z.object({
      /** Full texts: the prompt with its special tokens, then the continuation. */
      completions: z.array(z.string()),
      /** The engine's reply of each: the new text without its closing end-of-turn token. */
      replies: z.array(z.string())
    })
  },
  /** A causal intervention; rows stream as `interventions` events. */
  intervene: {
    request: z.object({
      op: z.literal('intervene'),
      taskId: z.string(),
      groupId: z.string(),
      lensId: z.string(),
      text: z.string(),
      options: AnalyzeOptionsSchema.optional(),
      intervention: InterventionRequestSchema
    }),
    response: z.object({ metadata: AnalysisMetadataSchema, rowCount: z.number().int() })
  },
  /** A layer sweep at one position; rows (one per layer) stream as `rows` events. */
  sweep: {
    request: z.object({
      op: z.literal('sweep'),
      taskId: z.string(),
      groupId: z.string(),
      lensId: z.string(),
      text: z.string(),
      options: AnalyzeOptionsSchema.optional(),
      sweep: SweepRequestSchema
    }),
    response: z.object({ metadata: AnalysisMetadataSchema, rowCount: z.number().int() })
  },
  /** Stop a running task at its next batch boundary. */
  cancel: {
    request: z.object({ op: z.literal('cancel'), taskId: z.string() }),
    response: z.object({ found: z.boolean() })
  },
  /** Liveness and memory; a worker that does not answer within the grace period is restarted. */
  ping: {
    request: z.object({ op: z.literal('ping') }),
    response: z.object({
      memory: MemorySchema,
      groups: z.array(z.string()),
      tasks: z.array(z.string()),
      hostCache: HostCacheStateSchema.optional()
    })
  },
  shutdown: {
    request: z.object({ op: z.literal('shutdown') }),
    response: z.object({})
  }
} as const

export type WorkerOps = typeof workerOps
export type WorkerOp = keyof WorkerOps
export type WorkerRequest<O extends WorkerOp = WorkerOp> = z.input<WorkerOps[O]['request']>
export type WorkerResponse<O extends WorkerOp> = z.output<WorkerOps[O]['response']>

const requestSchemas = Object.values(workerOps).map((o) => o.request)
export const WorkerRequestSchema = z.discriminatedUnion(
  'op',
  requestSchemas as unknown as [typeof workerOps.init.request, ...(typeof workerOps.init.request)[]]
)

export const MainToWorkerSchema = z.object({
  type: z.literal('request'),
  seq: z.number().int().nonnegative(),
  request: z.looseObject({ op: z.string() })
})
export type MainToWorker = z.infer<typeof MainToWorkerSchema>

export const WorkerEventSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('rows'),
    taskId: z.string(),
    rows: z.array(AnalysisRowSchema),
    progress: AnalysisProgressSchema
  }),
  z.object({
    kind: z.literal('interventions'),
    taskId: z.string(),
    rows: z.array(InterventionRowSchema),
    progress: AnalysisProgressSchema
  }),
  /** The iterative optimiser's step inside the current batch. */
  z.object({
    kind: z.literal('optimiser'),
    taskId: z.string(),
    progress: OptimiserProgressSchema
  }),
  z.object({
    kind: z.literal('stage'),
    groupId: z.string(),
    stage: z.string(),
    fraction: z.number()
  }),
  z.object({
    kind: z.literal('log'),
    level: z.enum(['debug', 'info', 'warn', 'error']),
    message: z.string()
  })
])
export type WorkerEvent = z.infer<typeof WorkerEventSchema>

const HelloSchema = z.object({ type: z.literal('hello'), pid: z.number().int() })
const ResponseOkSchema = z.object({
  type: z.literal('response'),
  seq: z.number().int(),
  ok: z.literal(true),
  value: z.unknown()
})
const ResponseErrorSchema = z.object({
  type: z.literal('response'),
  seq: z.number().int(),
  ok: z.literal(false),
  error: SerializedErrorSchema
})
const EventMessageSchema = z.object({ type: z.literal('event'), event: WorkerEventSchema })

export const WorkerToMainSchema = z.union([
  HelloSchema,
  ResponseOkSchema,
  ResponseErrorSchema,
  EventMessageSchema
])
export type WorkerToMain = z.infer<typeof WorkerToMainSchema>

/**
 * The branch of `WorkerToMainSchema` that a message's tags (`type`, and a response's `ok`) leave
 * it; the whole union where they fit none. The branches exclude each other by those tags, so the
 * union accepts a message exactly when this branch does, with the same output. Parsing the branch
 * alone spares the union's failed tries of the branches before it (each builds its issues: ~17 µs
 * of a rows event's 23), paid on every message of every job.
 */
export function workerToMainBranch(raw: unknown): z.ZodType<WorkerToMain> {
  if (typeof raw !== 'object' || raw === null) return WorkerToMainSchema
  const { type, ok } = raw as { type?: unknown; ok?: unknown }
  if (type === 'event') return EventMessageSchema
  if (type === 'response')
    return ok === true ? ResponseOkSchema : ok === false ? ResponseErrorSchema : WorkerToMainSchema
  return type === 'hello' ? HelloSchema : WorkerToMainSchema
}

/**
 * A worker's message checked against `WorkerToMainSchema`: its tags' branch first; a message that
 * branch refuses is parsed by the whole union again, so its issues are the union's.
 */
export function parseWorkerToMain(raw: unknown): z.ZodSafeParseResult<WorkerToMain> {
  const branch = workerToMainBranch(raw)
  const parsed = branch.safeParse(raw)
  return parsed.success || branch === WorkerToMainSchema
    ? parsed
    : WorkerToMainSchema.safeParse(raw)
}
