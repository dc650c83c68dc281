/**
 * The explanation of each target (activation `target[i]` of token `positions[i]`): best-of-K, or
 * the iterative optimiser when the options ask for it. Every mode that explains goes through here.
 */
import { explainBestOfK, type ExplainContext, type Explained } from './explain'
import { optimiseExplanations } from './research/optimise'

export function explainTargets(
  ctx: ExplainContext,
  positions: readonly number[],
  target: Float32Array
): Promise<Explained> {
  return ctx.opts.optimise
    ? optimiseExplanations(ctx, positions, target, ctx.opts.optimise)
    : explainBestOfK(ctx, positions, target)
}
