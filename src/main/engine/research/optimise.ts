/**
 * The iterative explanation optimiser (the predecessor's `optimize_explanation_for_mse`,
 * seed-system.md §1.6.1), batched over the targets of an analysis batch:
 *
 * 1. Start from the best of `samplesPerIteration` (N) rollouts: rollouts 0..N−1 of the position's
 *    sample stream, so the start is exactly best-of-K with K = N (its MSE is `mseBefore`).
 * 2. For each explanation token j: where its salience is below the threshold, regenerate the tail
 *    from j with the first j tokens kept (N rollouts); if none beats the current MSE, retry up to
 *    `maxTempIncreases` times at `tempIncreaseFactor` times the temperature. A token whose salience
 *    is still negative then becomes the null token (which lowers the MSE, by salience's definition).
 * 3. Replace the most harmful token (salience below −0.005) by the null token while there is one.
 * 4. Drop the null tokens, keep the rest in order, and regenerate the freed tail once (N rollouts);
 *    kept when better.
 *
 * Every candidate is scored by the encoder exactly as best-of-K scores its rollouts, so an
 * optimised row's MSE is never above its best-of-N start.
 */
import type { OptimiseOptions } from '@shared/domain/analysis'
import type { ExplainContext, Explained, SampleRow } from '../explain'
import { ablatedMse, projectTargets, reconstruct, repeatRows, sampleExplanations } from '../explain'
import { argminRange, salience } from '../metrics'

/** Step 3 replaces a token while its salience is below this (the predecessor's −0.005). */
export const HARMFUL_SALIENCE = -0.005

/** Sample streams of the tail regenerations start here (0..N−1 is the starting candidate's). */
const REGENERATION_STREAMS = 1 << 20

interface State {
  ids: Int32Array
  recon: Float32Array
  mse: Float32Array
  abl: Float32Array
  rollouts: Int32Array
  /** Next unused sample stream per target. */
  nextStream: Int32Array
}

export async function optimiseExplanations(
  ctx: ExplainContext,
  positions: readonly number[],
  target: Float32Array,
  o: OptimiseOptions
): Promise<Explained> {
  const { parts, lens, opts } = ctx
  const T = lens.resolved.manifest.explanationTokens
  const d = parts.bundle.manifest.base.hiddenSize
  const nullId = parts.bundle.manifest.conventions.nullTokenId
  const N = o.samplesPerIteration
  const b = positions.length
  const steps = T + 3
  let step = 0
  const report = (message: string): void =>
    ctx.onOptimiser?.({ step: Math.min(++step, steps), steps, message })

  let t = performance.now()
  const patch = await projectTargets(lens, target, b, d, ctx.parts.bundle.dir)
  const rows = positions.flatMap((position, i) =>
    Array.from({ length: N }, (_, rollout) => ({ target: i, position, rollout }))
  )
  const first = await sampleExplanations(ctx, patch, b, rows, opts.temperature)
  ctx.time('decodeMs', t)
  t = performance.now()
  const scored = await reconstruct(
    parts,
    lens,
    first,
    positions.flatMap((p) => Array<number>(N).fill(ctx.textIds[p]!)),
    repeatRows(target, b, d, N),
    ctx.rowsBudget
  )
  const s: State = {
    ids: new Int32Array(b * T),
    recon: new Float32Array(b * d),
    mse: new Float32Array(b),
    abl: new Float32Array(b * T),
    rollouts: new Int32Array(b).fill(N),
    nextStream: new Int32Array(b).fill(REGENERATION_STREAMS)
  }
  positions.forEach((_, i) => {
    const row = i * N + argminRange(scored.mse, i * N, N)
    s.ids.set(first.subarray(row * T, (row + 1) * T), i * T)
    s.recon.set(scored.recon.subarray(row * d, (row + 1) * d), i * d)
    s.mse[i] = scored.mse[row]!
  })
  const mseBefore = Float32Array.from(s.mse)
  s.abl = await ablatedMse(ctx, positions, s.ids, target)
  ctx.time('optimiseMs', t)
  report(`best of ${N} for ${b} position${b === 1 ? '' : 's'}`)

  const sal = (i: number, j: number): number => salience(s.abl[i * T + j]!, s.mse[i]!)
  const all = positions.map((_, i) => i)

  /** Regenerates targets' tails after `keep[i]` kept tokens; accepts improvements; returns the improved. */
  const regenerate = async (
    targets: number[],
    keep: (i: number) => Int32Array,
    forcedSteps: number,
    temperature: number
  ): Promise<number[]> => {
    const sampleRows: SampleRow[] = []
    const forced = new Int32Array(targets.length * N * T)
    targets.forEach((i, n) => {
      const kept = keep(i)
      for (let k = 0; k < N; k++) {
        sampleRows.push({ target: i, position: positions[i]!, rollout: s.nextStream[i]! + k })
        forced.set(kept, (n * N + k) * T)
      }
      s.nextStream[i]! += N
      s.rollouts[i]! += N
    })
    let t0 = performance.now()
    const cand = await sampleExplanations(ctx, patch, b, sampleRows, temperature, {
      ids: forced,
      steps: forcedSteps
    })
    ctx.time('decodeMs', t0)
    t0 = performance.now()
    const sub = new Float32Array(targets.length * d)
    targets.forEach((i, n) => sub.set(target.subarray(i * d, (i + 1) * d), n * d))
    const res = await reconstruct(
      parts,
      lens,
      cand,
      targets.flatMap((i) => Array<number>(N).fill(ctx.textIds[positions[i]!]!)),
      repeatRows(sub, targets.length, d, N),
      ctx.rowsBudget
    )
    const improved: number[] = []
    targets.forEach((i, n) => {
      const row = n * N + argminRange(res.mse, n * N, N)
      if (res.mse[row]! < s.mse[i]!) {
        s.ids.set(cand.subarray(row * T, (row + 1) * T), i * T)
        s.recon.set(res.recon.subarray(row * d, (row + 1) * d), i * d)
        s.mse[i] = res.mse[row]!
        improved.push(i)
      }
    })
    ctx.time('optimiseMs', t0)
    return improved
  }

  /**
   * Sets explanation tokens to the null token and rescores them (recon, MSE, salience). A token's
   * negative salience says nulling it lowers the MSE, but that salience came from an encoder batch
   * of another size, so a salience a rounding step below 0 can rescore a hair higher: such a row
   * keeps its previous explanation, and the optimiser never ends above the MSE it started from.
   */
  const nullify = async (changes: [number, number][]): Promise<void> => {
    if (changes.length === 0) return
    const targets = [...new Set(changes.map(([i]) => i))]
    const before = new Map(
      targets.map((i) => [
        i,
        {
          ids: s.ids.slice(i * T, (i + 1) * T),
          recon: s.recon.slice(i * d, (i + 1) * d),
          abl: s.abl.slice(i * T, (i + 1) * T),
          mse: s.mse[i]!
        }
      ])
    )
    for (const [i, j] of changes) s.ids[i * T + j] = nullId
    await rescore(targets)
    for (const [i, prev] of before) {
      if (s.mse[i]! <= prev.mse) continue
      s.ids.set(prev.ids, i * T)
      s.recon.set(prev.recon, i * d)
      s.abl.set(prev.abl, i * T)
      s.mse[i] = prev.mse
    }
  }

  const rescore = async (targets: number[]): Promise<void> => {
    if (targets.length === 0) return
    const t0 = performance.now()
    const sub = new Float32Array(targets.length * d)
    const ids = new Int32Array(targets.length * T)
    targets.forEach((i, n) => {
      sub.set(target.subarray(i * d, (i + 1) * d), n * d)
      ids.set(s.ids.subarray(i * T, (i + 1) * T), n * T)
    })
    const res = await reconstruct(
      parts,
      lens,
      ids,
      targets.map((i) => ctx.textIds[positions[i]!]!),
      sub,
      ctx.rowsBudget
    )
    targets.forEach((i, n) => {
      s.mse[i] = res.mse[n]!
      s.recon.set(res.recon.subarray(n * d, (n + 1) * d), i * d)
    })
    await refreshSalience(targets)
    ctx.time('optimiseMs', t0)
  }

  const refreshSalience = async (targets: number[]): Promise<void> => {
    if (targets.length === 0) return
    const fresh = await ablatedMse(ctx, positions, s.ids, target, targets)
    for (const i of targets) s.abl.set(fresh.subarray(i * T, (i + 1) * T), i * T)
  }

  const cancelled = (): boolean => ctx.isCancelled?.() ?? false

  // 2. Token by token.
  for (let j = 0; j < T && !cancelled(); j++) {
    const weak = all.filter((i) => sal(i, j) < o.salienceThreshold)
    let pending = weak
    for (let retry = 0; retry <= o.maxTempIncreases && pending.length > 0; retry++) {
      const temperature = opts.temperature * o.tempIncreaseFactor ** retry
      const improved = await regenerate(
        pending,
        (i) => s.ids.slice(i * T, i * T + T),
        j,
        temperature
      )
      await refreshSalience(improved)
      pending = pending.filter((i) => !improved.includes(i))
    }
    await nullify(
      weak.filter((i) => sal(i, j) < 0 && s.ids[i * T + j] !== nullId).map((i) => [i, j])
    )
    report(`token ${j + 1} of ${T}: ${weak.length} of ${b} regenerated`)
  }

  // 3. The most harmful token of each explanation, while one is harmful.
  for (let round = 0; round < T && !cancelled(); round++) {
    const changes: [number, number][] = []
    for (const i of all) {
      let worst = -1
      for (let j = 0; j < T; j++) {
        if (s.ids[i * T + j] === nullId) continue
        if (sal(i, j) < HARMFUL_SALIENCE && (worst < 0 || sal(i, j) < sal(i, worst))) worst = j
      }
      if (worst >= 0) changes.push([i, worst])
    }
    if (changes.length === 0) break
    await nullify(changes)
  }
  report('harmful tokens replaced by the null token')

  // 4. Null tokens dropped, the freed tail regenerated once.
  const byKept = new Map<number, { i: number; kept: Int32Array }[]>()
  for (const i of all) {
    const kept = Int32Array.from(
      Array.from(s.ids.subarray(i * T, (i + 1) * T)).filter((id) => id !== nullId)
    )
    if (kept.length === T) continue
    const list = byKept.get(kept.length) ?? []
    list.push({ i, kept })
    byKept.set(kept.length, list)
  }
  for (const [count, list] of byKept) {
    if (cancelled()) break
    const keptOf = new Map(list.map((e) => [e.i, e.kept]))
    const improved = await regenerate(
      list.map((e) => e.i),
      (i) => {
        const padded = new Int32Array(T).fill(nullId)
        padded.set(keptOf.get(i)!)
        return padded
      },
      count,
      opts.temperature
    )
    await refreshSalience(improved)
  }
  report('tail regenerated after dropping null tokens')

  return {
    ids: s.ids,
    recon: s.recon,
    mse: s.mse,
    ablatedMse: s.abl,
    mseBefore,
    rollouts: s.rollouts
  }
}
