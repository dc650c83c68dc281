/** Types shared by the float64 Hugging Face reference (test-only code). */

/**
 * The checkpoint kinds the reference knows: `model_type` of config.json, except `gemma3`, which is
 * the multimodal `Gemma3ForConditionalGeneration` whose text model the reference runs.
 */
export type HfFamily =
  'gpt2' | 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma2' | 'gemma3_text' | 'gemma3'

export const HF_FAMILIES: readonly HfFamily[] = [
  'gpt2',
  'llama',
  'mistral',
  'qwen2',
  'qwen3',
  'gemma2',
  'gemma3_text',
  'gemma3'
]

/** One tensor as safetensors holds it: row-major, PyTorch's shape. */
export interface HfTensor {
  shape: number[]
  data: Float32Array
}

/** Tensors by their Hugging Face name, exactly as `save_pretrained` (or the Hub file) names them. */
export type HfTensors = Map<string, HfTensor>

/** A config.json object (what `JSON.parse` of the file gives). */
export type HfConfigJson = Record<string, unknown>

export type LayerType = 'full_attention' | 'sliding_attention'

/** `rope_scaling` of config.json: the kinds the reference implements. */
export type RopeScalingJson =
  | { rope_type: 'default' }
  | { rope_type: 'linear'; factor: number }
  | {
      rope_type: 'llama3'
      factor: number
      low_freq_factor: number
      high_freq_factor: number
      original_max_position_embeddings: number
    }
