/** Safetensors: streaming reader (F32/F16/BF16 → float32), non-finite scan, and writer. */
export {
  SAFETENSORS_DTYPE_BITS,
  READABLE_DTYPES,
  isReadableDtype,
  isSafetensorsDtype,
  type ReadableDtype,
  type SafetensorsDtype
} from './dtypes'
export { MAX_HEADER_BYTES, type SafetensorsTensorInfo } from './header'
export {
  READ_CHUNK_BYTES,
  openSafetensors,
  readSafetensorsRaw,
  readSafetensorsTensor,
  tensorInfo,
  unsupportedDtype,
  type OpenSafetensorsOptions,
  type RawTensorBytes,
  type ReadTensorOptions,
  type SafetensorsFile
} from './read'
export { countNonFinite16, transposeWidenHalf, widenHalf, type HalfDtype } from './convert'
export {
  bf16TransposerFor,
  bf16WidenerFor,
  type Bf16Transposer,
  type Bf16Widener
} from './simdWiden'
export {
  countNonFinite,
  describeNonFinite,
  nonFiniteError,
  scanSafetensorsNonFinite,
  scanTensorValues,
  type NonFiniteCount,
  type NonFiniteReport
} from './finite'
export {
  encodeTensorValues,
  writeSafetensors,
  type TensorFill,
  type TensorValues,
  type WritableTensor
} from './write'
