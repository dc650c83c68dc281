/**
 * NaN / infinity detection in weights. A checkpoint with non-finite weights produces untrustworthy
 * activations everywhere downstream, so the importer reports it by tensor; whether that is a warning
 * or a refusal is the caller's decision.
 */
import { CheckpointError } from '../errors'
import type { NonFiniteCount } from './convert'
import { isReadableDtype } from './dtypes'
import { readSafetensorsTensor, type SafetensorsFile } from './read'

export type { NonFiniteCount }

export interface NonFiniteReport extends NonFiniteCount {
  file: string
  tensor: string
  /** Number of values scanned. */
  total: number
}

/** Counts NaN and ±Inf values; null when every value is finite. One pass, no allocation. */
export function countNonFinite(values: Float32Array): NonFiniteCount | null {
  let first = -1
  const n = values.length
  for (let i = 0; i < n; i++) {
    const v = values[i]!
    // v - v is 0 for every finite v and NaN for NaN and ±Inf: one comparison per value.
    if (v - v !== 0) {
      first = i
      break
    }
  }
  if (first < 0) return null
  let nan = 0
  let posInf = 0
  let negInf = 0
  for (let i = first; i < n; i++) {
    const v = values[i]!
    if (v - v !== 0) {
      if (v !== v) nan++
      else if (v > 0) posInf++
      else negInf++
    }
  }
  return { nan, posInf, negInf, firstIndex: first }
}

/** One line naming the file, the tensor and how many values are NaN / infinite. */
export function describeNonFinite(r: NonFiniteReport): string {
  const parts: string[] = []
  if (r.nan) parts.push(`${r.nan} NaN`)
  if (r.posInf) parts.push(`${r.posInf} +Inf`)
  if (r.negInf) parts.push(`${r.negInf} -Inf`)
  return (
    `${r.file}: tensor "${r.tensor}": ${parts.join(', ')} of ${r.total} values ` +
    `(first at flat index ${r.firstIndex})`
  )
}

/** The refusal for callers that treat non-finite weights as fatal. */
export function nonFiniteError(r: NonFiniteReport): CheckpointError {
  return new CheckpointError('non_finite', describeNonFinite(r), { file: r.file, tensor: r.tensor })
}

/** Scans a read tensor; null when it is all finite. */
export function scanTensorValues(
  file: string,
  tensor: string,
  values: Float32Array
): NonFiniteReport | null {
  const c = countNonFinite(values)
  return c ? { ...c, file, tensor, total: values.length } : null
}

/**
 * Reads every readable tensor of a file (or the named ones) and reports those holding NaN or
 * infinite values. Tensors of other dtypes are skipped (they are never imported as weights).
 */
export async function scanSafetensorsNonFinite(
  file: SafetensorsFile,
  options: {
    names?: Iterable<string>
    signal?: AbortSignal
    onBytes?: (bytes: number) => void
  } = {}
): Promise<NonFiniteReport[]> {
  const reports: NonFiniteReport[] = []
  const names = options.names ? [...options.names] : [...file.tensors.keys()]
  for (const name of names) {
    const info = file.tensors.get(name)
    if (info && !isReadableDtype(info.dtype)) continue
    const values = await readSafetensorsTensor(file, name, options)
    const r = scanTensorValues(file.label, name, values)
    if (r) reports.push(r)
  }
  return reports
}
