/**
 * Run-time checks that a stage's output can be trusted. A NaN or an infinity makes every figure
 * after it meaningless (and JSON writes it as null, which reads as "not requested"); a graph whose
 * output has another size than the manifest says passes every static check. Both are errors that
 * name the lens, the stage and the bundle file (422), never a row and never a raw engine error.
 */
import path from 'node:path'
import { AppError } from '@shared/ipc/errors'
import type { LensRuntime } from './lenses'

/** `file` as the bundle names it: relative to the bundle folder, with forward slashes. */
export function bundleRelative(bundleDir: string, file: string): string {
  return path.relative(bundleDir, file).split(path.sep).join('/')
}

/** Throws when `values` holds a NaN or an infinity, naming the lens and `stage`. */
export function requireFinite(
  bundleDir: string,
  lens: LensRuntime,
  stage: string,
  values: Float32Array
): void {
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i]!)) continue
    const lensFile = bundleRelative(bundleDir, path.join(lens.resolved.dir, 'lens.json'))
    throw new AppError(
      'bundle_invalid',
      `lens "${lens.resolved.manifest.id}" (${lensFile}): the ${stage} gave a non-finite value (${values[i]}); the lens's or the model's weights hold NaN or infinity (\`inspect\` says where)`,
      { file: lensFile, field: stage }
    )
  }
}

/** Throws unless the decoder projection gave patchLayers × d values for each of `b` targets. */
export function requirePatchShape(
  bundleDir: string,
  lens: LensRuntime,
  patch: Float32Array,
  b: number,
  d: number
): void {
  const np = lens.resolved.manifest.decoder.patchLayers
  if (patch.length === b * np * d) return
  // A projection graph from another lens (another patchLayers) passes every static check.
  const file = bundleRelative(bundleDir, lens.resolved.projectionFile)
  throw new AppError(
    'bundle_invalid',
    `${file}: the decoder projection gave ${patch.length / b} values per position; lens "${lens.resolved.manifest.id}" needs decoder.patchLayers ${np} × hidden size ${d} = ${np * d}`,
    { file, field: 'decoder.patchLayers' }
  )
}
