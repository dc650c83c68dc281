/**
 * Lens checkpoints in: the predecessor's `torch.save` training checkpoints, read in TypeScript
 * without executing anything (docs/lens-checkpoints.md).
 */
export { readLensCheckpoint, findCheckpoint, type FoundCheckpoint } from './lensCheckpoint'
export { CheckpointError, type CheckpointProblem } from '../errors'
export type {
  F32Tensor,
  JsonValue,
  LensCheckpoint,
  LensTrainingConfig,
  LinearWeights,
  PerLayerWeights,
  PlannedLensCheckpoint,
  ReadLensCheckpointOptions,
  ReadProgress
} from './types'
