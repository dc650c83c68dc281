/**
 * Lens checkpoints into a group: the predecessor's training checkpoints converted into bundle
 * lenses (with donors where the lens reads another model's activations). docs/import.md.
 */
export {
  importLens,
  importedLensOf,
  addLensCheckpoint,
  chooseOrig,
  defaultLensId,
  type ImportLensOptions,
  type ImportLensProgress,
  type ImportLensResult,
  type ImportLensStage
} from './importLens'
export {
  convertLens,
  decideDecoder,
  decideEncoder,
  decoderBranch,
  needsSlotPositionRow,
  type ConvertedLens,
  type DecoderDecision,
  type EncoderDecision,
  type SlotVector
} from './convert'
export { canonicalModelName, checkLensBase, sameModelName, type GroupBase } from './base'
export { readGroupFolder, type GroupFolder } from './group'
export { lensProgressReporter } from './jobProgress'
export { openDonorSource, writeDonor, type DonorSource } from './donor'
