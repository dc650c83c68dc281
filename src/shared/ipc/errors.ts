import { z } from 'zod'

/**
 * Error codes that cross a process boundary (IPC, WebSocket, HTTP, worker protocol).
 * Services throw `AppError`; every transport turns any throw into `SerializedError` data.
 */
export const ErrorCodeSchema = z.enum([
  'invalid_input',
  'unknown_channel',
  'not_found',
  'conflict',
  'unavailable',
  'cancelled',
  'bundle_invalid',
  'worker_crashed',
  'forbidden',
  'internal'
])
export type ErrorCode = z.infer<typeof ErrorCodeSchema>

export const SerializedErrorSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  /** Dotted path of the offending field or argument, when there is one. */
  field: z.string().optional(),
  /** File the error is about (bundle files, session files, datasets). */
  file: z.string().optional()
})
export type SerializedError = z.infer<typeof SerializedErrorSchema>

export class AppError extends Error {
  readonly code: ErrorCode
  readonly field?: string
  readonly file?: string
  constructor(code: ErrorCode, message: string, extra: { field?: string; file?: string } = {}) {
    super(message)
    this.name = 'AppError'
    this.code = code
    this.field = extra.field
    this.file = extra.file
  }
}

export function toSerializedError(err: unknown): SerializedError {
  if (err instanceof AppError) {
    const out: SerializedError = { code: err.code, message: err.message }
    if (err.field !== undefined) out.field = err.field
    if (err.file !== undefined) out.file = err.file
    return out
  }
  if (isSerializedError(err)) return err
  const message = err instanceof Error ? err.message : String(err)
  return { code: 'internal', message }
}

export function fromSerializedError(e: SerializedError): AppError {
  return new AppError(e.code, e.message, { field: e.field, file: e.file })
}

export function isSerializedError(v: unknown): v is SerializedError {
  return SerializedErrorSchema.safeParse(v).success
}

/** Result of an invoke, as data: never a thrown error across the boundary. */
export type InvokeResult<T> = { ok: true; value: T } | { ok: false; error: SerializedError }

/** Turns a zod error into one readable message naming each offending field. */
export function describeZodError(
  error: z.ZodError,
  root = ''
): { message: string; field?: string } {
  const first = error.issues[0]
  const parts = error.issues.slice(0, 5).map((i) => {
    const path = [root, ...i.path.map(String)].filter(Boolean).join('.')
    return path ? `${path}: ${i.message}` : i.message
  })
  const field = first ? [root, ...first.path.map(String)].filter(Boolean).join('.') : undefined
  return { message: parts.join('; '), field: field || undefined }
}
