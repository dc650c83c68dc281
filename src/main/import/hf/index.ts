/** Hugging Face checkpoints on disk: model folders (plain or cache) and PEFT LoRA adapters. */
export {
  CONFIG_FILE,
  SINGLE_WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  openHfFolder,
  readHfFolderFile,
  readTensor,
  streamTensors,
  type HfFolder,
  type HfFolderFileKey,
  type HfFolderFiles,
  type HfShard,
  type HfTensorEntry,
  type OpenHfFolderOptions,
  type StreamedTensor
} from './folder'
export { locateHfFolder, type LocatedFolder } from './layout'
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_KEY_PREFIX,
  ADAPTER_WEIGHTS_FILE,
  addScaledLowRankProduct,
  applyLoraDelta,
  loraScaleFor,
  mergePeftTensor,
  parsePeftConfig,
  planPeftMerge,
  readPeftAdapter,
  type LoraModule,
  type PeftAdapter,
  type PeftLoraConfig,
  type PeftMergeEntry,
  type PeftMergePlan,
  type PlanPeftMergeOptions
} from './peft'
export {
  BASE_MODEL_FILE,
  checkImportTarget,
  displayNameOf,
  groupIdFrom,
  importHfBase,
  type ImportBaseOptions,
  type ImportBaseResult
} from './importBase'
export { prepareTokenizer, type PreparedTokenizer } from './tokenizerFiles'
