/**
 * What `readLensCheckpoint` returns: the predecessor's lens checkpoint, validated, with the
 * tensors the analysis needs as float32. Tensors are exactly as stored (no √d scaling applied);
 * docs/lens-checkpoints.md says which space each one is in for each family.
 */
import type { FloatDtype } from './tensors'

export interface F32Tensor {
  /** Row-major float32 values; float16 / bfloat16 widened exactly. */
  data: Float32Array
  shape: number[]
  /** The dtype the checkpoint stored. */
  sourceDtype: FloatDtype
}

export interface LinearWeights {
  /** `(d, d)`, applied as `a @ weight^T + bias` (torch's `F.linear`). */
  weight: F32Tensor
  /** `(d)`. */
  bias: F32Tensor
}

export interface PerLayerWeights {
  /** `(n, d, d)`: projection i is `a @ weight[i]^T + bias[i]`. */
  weight: F32Tensor
  /** `(n, d)`. */
  bias: F32Tensor
}

/** The training-config fields the predecessor's analyzer read (its §1.2 table), validated. */
export interface LensTrainingConfig {
  /** `layer_l`: activations are the residual after block L. */
  layer: number
  /** `model_name` (the predecessor's default when absent: "gpt2"). */
  modelName: string
  /** `tokenizer_name`, else `model_name`; as written (the predecessor's -pt→-it swap is not applied). */
  tokenizerName: string
  /** `orig_model_name`: the model whose activations the lens was trained on, when recorded. */
  origModelName: string | null
  /** `different_activations_orig`, when a config records one. */
  differentActivationsOrig: string | null
  /** `t_text`: explanation length T. */
  explanationTokens: number
  /** `model_dtype` (the predecessor's default when absent: "float32"). */
  modelDtype: string
  /** `decoder_prompt`; its `<embed>` marks the activation slot. Null when absent or empty. */
  decoderPrompt: string | null
  /** `trainable_components.encoder.soft_prompt_init_text`; `<text>` splits prefix / postfix. */
  encoderPromptText: string | null
  /** `attn_implementation`, when set. */
  attnImplementation: string | null
  /** `gumbel_tau_schedule.end_value` (default 1.0); it does not change hard samples. */
  gumbelTauEnd: number
  decoder: {
    /**
     * `patch_all_layers`: true = before every block; n = before blocks 0..n−1; false or 0 (or
     * "just_input", read as 0) = the activation only enters as the slot's input row. False and 0
     * differ: the predecessor's decoder took different code paths for them.
     */
    patchAllLayers: boolean | number
    /** `per_layer_projections`: one projection per patched block, else one shared. */
    perLayerProjections: boolean
    /** `new_decoder`: projection index = block + 1 (index 0 only fills the slot, then is overwritten). */
    newDecoder: boolean
  }
  encoder: {
    /** `output_layer` as written: the block whose output is read; −1 = the last block, −2 = the input to block 0. */
    outputLayer: number
    /** `use_projection_layer` (default true). */
    useProjectionLayer: boolean
    /** `add_current_token` (default false). */
    addCurrentToken: boolean
    /** `special_last_token_vector` (default false). */
    specialLastTokenVector: boolean
    /** `soft_prompt_length`, used only without an init text (random-initialised soft prompt). */
    softPromptLength: number
  }
}

/** A JSON rendering of the whole training config (objects the reader does not interpret are marked). */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

export interface LensCheckpoint {
  /** The file read. */
  file: string
  /** `step` (null when the checkpoint has none). */
  step: number | null
  config: LensTrainingConfig
  /** The full `config` dict as JSON, for provenance in lens.json. */
  configJson: JsonValue
  /** d: hidden size, the same in every tensor. */
  hiddenSize: number
  /** Number of blocks of the base: from `options.base`, else implied by per-layer projections with `patch_all_layers: true`, else null. */
  layers: number | null
  decoder: {
    /** Per-layer `proj_weight (n,d,d)` / `proj_bias (n,d)`, or the single `proj.weight` / `proj.bias`. */
    projection: ({ perLayer: true } & PerLayerWeights) | ({ perLayer: false } & LinearWeights)
    /** Np: vectors written into the residual at `embedPos`, one before each block l < Np (0 without patching); null when `patch_all_layers` is true and the layer count is unknown. */
    patchLayers: number | null
    /** Vector l uses per-layer projection index `l + projectionOffset` (1 with `new_decoder`). */
    projectionOffset: 0 | 1
    /** `prompt_left_emb (n_left, d)`: the prompt rows before the slot (raw embedding space). */
    promptLeft: F32Tensor | null
    /** `prompt_right_emb (n_right, d)`: the prompt rows after the slot. */
    promptRight: F32Tensor | null
    /** Index of the activation slot in the prefix: n_left. */
    embedPos: number
    /** `prompt_ids` buffer: left ids + [eos] + right ids, when saved (for checking a tokenizer). */
    promptIds: number[] | null
  }
  encoder: {
    /** `soft_prompt_embeddings (n, d)`. */
    softPrompt: F32Tensor | null
    /** `soft_prompt_embeddings_postfix (m, d)`. */
    softPromptPostfix: F32Tensor | null
    /** `proj.weight` / `proj.bias` when `use_projection_layer`. */
    projection: LinearWeights | null
    /** `special_last_token_vector (d)`, added to the last input row. */
    specialLastTokenVector: F32Tensor | null
    /** `output_layer` resolved to a block index when the layer count is known (−2, the input to block 0, stays −2), else as written. */
    outputLayer: number
    addCurrentToken: boolean
  }
  stats: {
    /** Bytes read from the file (pickle and the tensors above; nothing else). */
    bytesRead: number
    /** Records read, relative to the archive prefix (`data.pkl`, `data/3`, …). */
    recordsRead: string[]
    /** Types of the objects kept as unread placeholders (numpy RNG state, optimizer objects…). */
    placeholderTypes: string[]
    /** The archive's `version` record. */
    formatVersion: number | null
  }
}

export interface ReadProgress {
  phase: 'pickle' | 'tensors'
  bytesRead: number
  bytesTotal: number
  /** The key being read, e.g. `models.decoder.proj_weight`. */
  key?: string
}

/** What the reader knows once the pickle is parsed and the shapes agree, before any tensor is read. */
export interface PlannedLensCheckpoint {
  file: string
  step: number | null
  config: LensTrainingConfig
  /** d, from the decoder projection. */
  hiddenSize: number
  /** Implied by per-layer projections with `patch_all_layers: true`, else null. */
  layers: number | null
}

export interface ReadLensCheckpointOptions {
  signal?: AbortSignal
  onProgress?: (progress: ReadProgress) => void
  /**
   * Called before any tensor is read (e.g. to compare the checkpoint's base with a group's and
   * refuse early); whatever it throws is thrown. `base` is applied after it.
   */
  check?: (planned: PlannedLensCheckpoint) => void | Promise<void>
  /** The group's base, to check d and the layer indices against. */
  base?: { hiddenSize: number; layers: number }
}
