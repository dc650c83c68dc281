/**
 * Chat templates come from the bundle, and a template is a program: `{% for i in range(10**8) %}`
 * ran for a minute and a half in the host and then ended it with an exhausted heap. Every render
 * here runs under a budget: interpreter steps, wall time, characters produced and the length of
 * any `range()`. A template that passes one stops with a TemplateLimitError, between two steps,
 * before the next allocation that could hurt; real chat templates stay far below every limit.
 *
 * The interpreter has no hook for this, so its one dispatch method, `evaluate`, is wrapped once at
 * module load; the wrapper does nothing unless a guarded render is running (rendering is
 * synchronous, so "the render under way" is a module variable).
 */
import { Interpreter, type Template } from '@huggingface/jinja'

export interface RenderLimits {
  /** Expressions and statements evaluated in one render. */
  maxSteps: number
  /** Wall time of one render. */
  maxMs: number
  /** Characters of all the text values one render produces (a loop's output counts as it grows). */
  maxOutputChars: number
  /** Items one `range()` call may produce (it builds the whole list at once). */
  maxRangeItems: number
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = {
  maxSteps: 2_000_000,
  maxMs: 1_000,
  maxOutputChars: 64 * 1024 * 1024,
  maxRangeItems: 100_000
}

/** A render stopped by its budget; `reason` completes "the chat template …". */
export class TemplateLimitError extends Error {
  constructor(readonly reason: string) {
    super(`the chat template ${reason}`)
    this.name = 'TemplateLimitError'
  }
}

interface Budget {
  limits: RenderLimits
  steps: number
  chars: number
  deadline: number
  /** The interpreter whose `range` is already limited. */
  ranged?: unknown
}

let active: Budget | undefined

/** The interpreter's view of a Jinja function value: a callback over runtime values. */
interface RuntimeFunction {
  value: (args: Array<{ value?: unknown }>, scope: unknown) => unknown
}
interface InterpreterInternals {
  global?: { variables?: Map<string, unknown> }
}

/**
 * Wraps the render's own `range` (each render builds fresh globals) so that it refuses a list
 * longer than `maxItems` before building it.
 */
function limitRange(interpreter: InterpreterInternals, maxItems: number): void {
  const fn = interpreter.global?.variables?.get('range') as RuntimeFunction | undefined
  if (!fn || typeof fn.value !== 'function') return
  const build = fn.value
  fn.value = (args, scope) => {
    const [a, b, c] = args.map((x) => x.value)
    const [start, stop] = b === undefined ? [0, a] : [a, b]
    const step = c === undefined ? 1 : c
    if (typeof start === 'number' && typeof stop === 'number' && typeof step === 'number') {
      const count = step === 0 ? 0 : Math.max(0, Math.ceil((stop - start) / step))
      if (!Number.isFinite(count) || count > maxItems)
        throw new TemplateLimitError(`asked range() for ${count} items, more than ${maxItems}`)
    }
    return build(args, scope)
  }
}

type Evaluate = (statement: unknown, environment: unknown) => { value?: unknown }
const prototype = Interpreter.prototype as unknown as { evaluate: Evaluate }
const evaluate = prototype.evaluate

prototype.evaluate = function guardedEvaluate(this: InterpreterInternals, statement, environment) {
  const budget = active
  if (budget) {
    if (budget.ranged !== this) {
      limitRange(this, budget.limits.maxRangeItems)
      budget.ranged = this
    }
    budget.steps++
    if (budget.steps > budget.limits.maxSteps)
      throw new TemplateLimitError(
        `took more than ${budget.limits.maxSteps} steps (a runaway loop?)`
      )
    if ((budget.steps & 1023) === 0 && performance.now() > budget.deadline)
      throw new TemplateLimitError(`ran longer than ${budget.limits.maxMs} ms`)
  }
  const result = evaluate.call(this, statement, environment)
  if (budget && typeof result.value === 'string') {
    budget.chars += result.value.length
    if (budget.chars > budget.limits.maxOutputChars) {
      const mib = Math.round(budget.limits.maxOutputChars / 1024 / 1024)
      throw new TemplateLimitError(`produced more than ${mib} MiB of text`)
    }
  }
  return result
}

/** `template.render(context)` under `limits`; throws TemplateLimitError past any of them. */
export function renderWithLimits(
  template: Template,
  context: Record<string, unknown>,
  limits: RenderLimits = DEFAULT_RENDER_LIMITS
): string {
  const previous = active
  active = { limits, steps: 0, chars: 0, deadline: performance.now() + limits.maxMs }
  try {
    return template.render(context)
  } finally {
    active = previous
  }
}
