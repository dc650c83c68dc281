/** GPT-2's learned position rows, read from a group's base graph (the `pos_emb` initializer). */
import path from 'node:path'
import { readWeightRows, type ModelRef } from '../../engine'

/** Row `position` of the model's learned position table (1 × d). */
export async function readLearnedPositionRow(
  groupDir: string,
  model: ModelRef,
  position: number
): Promise<Float32Array> {
  return readWeightRows(path.join(groupDir, model.file), 'pos_emb', position, 1)
}
