import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { AppError, describeZodError } from '@shared/ipc/errors'

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024

/**
 * A config file for a long-running server (e.g. a GPU box): a fixed token that survives restarts,
 * next to the per-launch token printed at start.
 */
export const ApiConfigFileSchema = z.strictObject({
  token: z.string().min(16, 'use at least 16 characters').max(512).optional(),
  max_body_bytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .optional(),
  bad_request_log_interval_s: z.number().min(1).max(86_400).optional(),
  /** `GET /metrics` without the token (for a Prometheus scraper on a trusted network). */
  metrics_public: z.boolean().optional()
})

export interface ApiOptions {
  /** Tokens accepted besides the host's per-launch token. */
  extraTokens?: string[]
  maxBodyBytes?: number
  badRequestLogIntervalMs?: number
  /** `GET /metrics` without the token. */
  metricsPublic?: boolean
  /**
   * Compat mode (`--compat`): the predecessor's tokenless routes for these browser origins
   * (`--allow-origin`); absent: off.
   */
  compatOrigins?: string[]
  log?: (line: string) => void
}

/** Reads `--api-config FILE` (or `TALKATIVE_API_CONFIG`); errors name the file and the field. */
export function loadApiConfig(file: string): ApiOptions {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new AppError('invalid_input', `cannot read the API config: ${(err as Error).message}`, {
      file
    })
  }
  const parsed = ApiConfigFileSchema.safeParse(raw)
  if (!parsed.success) {
    const { message, field } = describeZodError(parsed.error)
    throw new AppError('invalid_input', `API config: ${message}`, { file, field })
  }
  const c = parsed.data
  return {
    extraTokens: c.token ? [c.token] : [],
    maxBodyBytes: c.max_body_bytes,
    badRequestLogIntervalMs:
      c.bad_request_log_interval_s === undefined ? undefined : c.bad_request_log_interval_s * 1000,
    metricsPublic: c.metrics_public
  }
}
