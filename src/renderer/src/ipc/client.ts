import type { WorkbenchApi } from '@shared/ipc/api'
import type { InvokeChannel, InvokeInput, InvokeOutput } from '@shared/ipc/contract'
import { AppError, fromSerializedError } from '@shared/ipc/errors'

let current: WorkbenchApi | null = null

export function setApi(api: WorkbenchApi): void {
  current = api
}

/** Invokes a channel for a user action; an application error comes back as a thrown AppError. */
export async function call<C extends InvokeChannel>(
  channel: C,
  input?: InvokeInput<C>
): Promise<InvokeOutput<C>> {
  if (!current) throw new AppError('unavailable', 'not connected to the Workbench host')
  const result = await current.invoke(channel, input)
  if (!result.ok) throw fromSerializedError(result.error)
  return result.value
}

/** An action's error as data; `field` names the offending field when main named one. */
export function errorOf(err: unknown): { code: string; message: string; field?: string } {
  if (err instanceof AppError) {
    return err.field === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, field: err.field }
  }
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) }
}
