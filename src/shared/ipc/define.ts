import type { z } from 'zod'

/** An invoke channel: a zod schema for its input and one for its output. */
export interface InvokeDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  readonly input: I
  readonly output: O
}

/** A pushed event channel and its payload schema. */
export interface EventDef<P extends z.ZodType = z.ZodType> {
  readonly payload: P
}

export function defineInvoke<I extends z.ZodType, O extends z.ZodType>(
  input: I,
  output: O
): InvokeDef<I, O> {
  return { input, output }
}

export function defineEvent<P extends z.ZodType>(payload: P): EventDef<P> {
  return { payload }
}
