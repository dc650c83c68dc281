import { describe, expect, it } from 'vitest'
import { ortWords } from './ort'

describe('ortWords', () => {
  it.each([
    [
      "Load model from /b/donor.onnx failed:/onnxruntime_src/onnxruntime/core/graph/graph.cc:1409 onnxruntime::Graph::Graph(const onnxruntime::Model&, onnx::GraphProto*, const std::unordered_map<std::__cxx11::basic_string<char>, int>&, onnxruntime::Version, onnxruntime::IOnnxRuntimeOpSchemaCollectionPtr, onnxruntime::Graph*, const onnxruntime::Node*, const onnxruntime::logging::Logger&, bool) This is an invalid model. Tensor 'c__1391' does not have valid data type.",
      "Load model from /b/donor.onnx failed: This is an invalid model. Tensor 'c__1391' does not have valid data type."
    ],
    [
      '[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: ids for the following indices\n index: 1 Got: 3 Expected: 4',
      'Got invalid dimensions for input: ids for the following indices'
    ],
    [
      '/onnxruntime_src/onnxruntime/core/providers/cpu/tensor/gather.cc:54 onnxruntime::Status onnxruntime::GatherCommon::ValidateInputs(...) const indices element out of data bounds, idx=300 must be within the inclusive range [-210,209]',
      'indices element out of data bounds, idx=300 must be within the inclusive range [-210,209]'
    ],
    ['plain words stay as they are', 'plain words stay as they are']
  ])('%s', (raw, words) => {
    expect(ortWords(raw)).toBe(words)
  })
})
