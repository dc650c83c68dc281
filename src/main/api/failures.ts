/**
 * How an error becomes an /api/v2 answer, in one place: the HTTP status of each error code, and a
 * contract error's field renamed to the caller's spelling. The HTTP routes, the endpoints and the
 * WebSocket all translate through here.
 */
import { toSerializedError, type ErrorCode, type SerializedError } from '@shared/ipc/errors'
import { toWireField } from './names'

/** HTTP status for each error code that crosses the boundary. */
export const STATUS_FOR_CODE: Record<ErrorCode, number> = {
  invalid_input: 400,
  unknown_channel: 404,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  cancelled: 409,
  bundle_invalid: 422,
  worker_crashed: 503,
  forbidden: 403,
  internal: 500
}

/** An answer other than success: an HTTP status and the error as data (fields already snake_case). */
export class ApiFailure extends Error {
  readonly status: number
  readonly error: SerializedError
  readonly extra: Record<string, unknown>
  constructor(status: number, error: SerializedError, extra: Record<string, unknown> = {}) {
    super(error.message)
    this.status = status
    this.error = error
    this.extra = extra
  }
}

/** Refuses a request with an error the caller named (the field as the API spells it). */
export function fail(code: ErrorCode, message: string, field?: string): never {
  throw new ApiFailure(STATUS_FOR_CODE[code], field ? { code, message, field } : { code, message })
}

/**
 * A contract error as the API answers it: the status of its code, its field renamed to the API's
 * spelling (`overrides` renames whole paths for one endpoint), its file kept.
 */
export function apiFailureOf(
  e: SerializedError,
  overrides?: Record<string, string>,
  extra: Record<string, unknown> = {}
): ApiFailure {
  const wire: SerializedError = { code: e.code, message: e.message }
  const field = toWireField(e.field, overrides)
  if (field) wire.field = field
  if (e.file) wire.file = e.file
  return new ApiFailure(STATUS_FOR_CODE[e.code] ?? 500, wire, extra)
}

/** Any thrown value as an ApiFailure (an ApiFailure stays as it is). */
export function toApiFailure(err: unknown): ApiFailure {
  return err instanceof ApiFailure ? err : apiFailureOf(toSerializedError(err))
}
