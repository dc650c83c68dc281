/**
 * Hugging Face checkpoint tensors → the base graph's canonical weights (engine/arch/weights.ts), as
 * a plan: for every graph initializer, which checkpoint tensor(s) it is made of and how, so an
 * importer can read and write one initializer at a time (never the whole checkpoint in memory).
 *
 * Key layouts read:
 *   GPT-2: `transformer.h.0.…` (save_pretrained of GPT2LMHeadModel) or `h.0.…` (the original
 *     file); Conv1D weights are stored (in, out), which is the graph's layout already, and the
 *     fused c_attn's columns are [q | k | v] like the graph's qkv; `attn.bias` / `attn.masked_bias`
 *     mask buffers are ignored.
 *   Llama, Mistral, Qwen2, Qwen3, Gemma-2, Gemma-3 text: `model.layers.0.…` or `layers.0.…`;
 *     nn.Linear weights are (out, in) and are transposed; q/k/v are joined into one qkv and
 *     gate/up into one gateUp; `rotary_emb.inv_freq` buffers are ignored.
 *   Gemma-3 multimodal: the text model under `language_model.model.…` (lm head
 *     `language_model.lm_head.weight`) or `model.language_model.…` (lm head `lm_head.weight`); the
 *     vision tower and projector are ignored.
 * A tied model's stored `lm_head.weight` duplicate is ignored (HF ties it to the embedding).
 */
import type { ArchSpec } from '../../engine'
import { archWeights, type LayerPart } from '../../engine'
import { CheckpointError, type CheckpointProblem } from '../errors'

/**
 * How a graph initializer is made from its sources:
 * - `copy`: one tensor, same layout.
 * - `transpose`: one (out, in) nn.Linear weight → (in, out).
 * - `gemma-gain`: one Gemma norm weight w → 1 + w, rounded to float32 as HF's `1.0 + w.float()`.
 * - `concat-transposed`: several (out_i, in) weights → (in, Σ out_i), sources side by side.
 * - `concat`: several 1-D tensors end to end (joined biases).
 */
export type WeightTransform = 'copy' | 'transpose' | 'gemma-gain' | 'concat-transposed' | 'concat'

export interface WeightSource {
  /** Tensor name in the checkpoint. */
  tensor: string
  /** Its shape as the config implies; the checkpoint's must match. */
  shape: number[]
}

export interface PlannedWeight {
  /** Graph initializer name. */
  name: string
  /** Graph initializer dims. */
  dims: number[]
  sources: WeightSource[]
  transform: WeightTransform
}

export interface WeightPlan {
  /** One entry per graph initializer, in the graph's storage order. */
  weights: PlannedWeight[]
  /** Checkpoint tensors deliberately not read (mask buffers, vision tower, tied lm_head copy). */
  ignored: string[]
}

/** A checkpoint tensor as the folder reader lists it. */
export interface CheckpointTensor {
  name: string
  shape: readonly number[]
}

/**
 * Which file errors name for a tensor: one name for every tensor, or a lookup (the shard that holds
 * a tensor; the index, or the single weights file, for a tensor that is missing).
 */
export type TensorFileNamer = string | ((tensor: string) => string)

function fileFor(file: TensorFileNamer, tensor: string): string {
  return typeof file === 'string' ? file : file(tensor)
}

/** A checkpoint error (the CLI exits 3) naming the file and the tensor. */
function weightError(
  problem: CheckpointProblem,
  fileNamer: TensorFileNamer,
  tensor: string,
  message: string
): CheckpointError {
  const file = fileFor(fileNamer, tensor)
  return new CheckpointError(problem, `${file}: tensor "${tensor}": ${message}`, { file, tensor })
}

interface Layout {
  /** Prefix of the decoder's own tensors (`transformer.`, `model.`, ``, …). */
  prefix: string
  /** Name of the untied head's weight. */
  lmHead: string
  /** Names or prefixes to ignore. */
  ignore: (name: string) => boolean
}

const IGNORE_NOTHING = (): boolean => false

function detectLayout(
  spec: ArchSpec,
  multimodal: boolean,
  has: (name: string) => boolean,
  file: TensorFileNamer
): Layout {
  if (spec.family === 'gpt2') {
    const candidates = ['transformer.', '']
    const prefix = candidates.find((p) => has(`${p}wte.weight`))
    if (prefix === undefined) {
      throw weightError(
        'missing_tensor',
        file,
        'wte.weight',
        'missing: no token embedding (looked for transformer.wte.weight and wte.weight)'
      )
    }
    const maskBuffer = new RegExp(
      `^${prefix.replace('.', '\\.')}h\\.\\d+\\.attn\\.(bias|masked_bias)$`
    )
    return { prefix, lmHead: 'lm_head.weight', ignore: (n) => maskBuffer.test(n) }
  }
  const rotaryBuffer = /\.rotary_emb\.inv_freq$/
  if (multimodal) {
    const layouts: Layout[] = [
      { prefix: 'model.language_model.', lmHead: 'lm_head.weight', ignore: IGNORE_NOTHING },
      {
        prefix: 'language_model.model.',
        lmHead: 'language_model.lm_head.weight',
        ignore: IGNORE_NOTHING
      }
    ]
    const found = layouts.find((l) => has(`${l.prefix}embed_tokens.weight`))
    if (!found) {
      throw weightError(
        'missing_tensor',
        file,
        'embed_tokens.weight',
        'missing: no text-model token embedding (looked for model.language_model.embed_tokens.weight and language_model.model.embed_tokens.weight)'
      )
    }
    const visual = /^(model\.)?(vision_tower|multi_modal_projector)\./
    return { ...found, ignore: (n) => visual.test(n) || rotaryBuffer.test(n) }
  }
  const prefix = ['model.', ''].find((p) => has(`${p}embed_tokens.weight`))
  if (prefix === undefined) {
    throw weightError(
      'missing_tensor',
      file,
      'embed_tokens.weight',
      'missing: no token embedding (looked for model.embed_tokens.weight and embed_tokens.weight)'
    )
  }
  return { prefix, lmHead: 'lm_head.weight', ignore: (n) => rotaryBuffer.test(n) }
}

/** The checkpoint tensors (relative to the layer prefix) one graph layer part is made of. */
function hfLayerSources(
  spec: ArchSpec,
  part: LayerPart,
  dims: number[]
): { names: string[]; shapes: number[][]; transform: WeightTransform } {
  const d = spec.hiddenSize
  const f = spec.ffnSize
  const dh = spec.headDim
  const qOut = spec.heads * dh
  const kvOut = spec.kvHeads * dh
  const one = (name: string, transform: WeightTransform, shape = dims) => ({
    names: [name],
    shapes: [shape],
    transform
  })
  if (spec.family === 'gpt2') {
    const gpt: Partial<Record<LayerPart, string>> = {
      ln1Gain: 'ln_1.weight',
      ln1Bias: 'ln_1.bias',
      qkv: 'attn.c_attn.weight',
      qkvBias: 'attn.c_attn.bias',
      out: 'attn.c_proj.weight',
      outBias: 'attn.c_proj.bias',
      ln2Gain: 'ln_2.weight',
      ln2Bias: 'ln_2.bias',
      up: 'mlp.c_fc.weight',
      upBias: 'mlp.c_fc.bias',
      down: 'mlp.c_proj.weight',
      downBias: 'mlp.c_proj.bias'
    }
    return one(gpt[part]!, 'copy')
  }
  const gemma = spec.norm.kind === 'gemma-rmsnorm'
  const normT: WeightTransform = gemma ? 'gemma-gain' : 'copy'
  switch (part) {
    case 'ln1Gain':
      return one('input_layernorm.weight', normT)
    case 'postAttnNorm':
      return one('post_attention_layernorm.weight', normT)
    case 'ln2Gain':
      // Pre-norm families call their pre-MLP norm post_attention_layernorm; Gemma has four.
      return one(
        spec.sandwichNorms ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight',
        normT
      )
    case 'postFfnNorm':
      return one('post_feedforward_layernorm.weight', normT)
    case 'qNorm':
      return one('self_attn.q_norm.weight', normT)
    case 'kNorm':
      return one('self_attn.k_norm.weight', normT)
    case 'qkv':
      return {
        names: ['self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight'],
        shapes: [
          [qOut, d],
          [kvOut, d],
          [kvOut, d]
        ],
        transform: 'concat-transposed'
      }
    case 'qkvBias':
      return {
        names: ['self_attn.q_proj.bias', 'self_attn.k_proj.bias', 'self_attn.v_proj.bias'],
        shapes: [[qOut], [kvOut], [kvOut]],
        transform: 'concat'
      }
    case 'out':
      return one('self_attn.o_proj.weight', 'transpose', [d, qOut])
    case 'outBias':
      return one('self_attn.o_proj.bias', 'copy')
    case 'gateUp':
      return {
        names: ['mlp.gate_proj.weight', 'mlp.up_proj.weight'],
        shapes: [
          [f, d],
          [f, d]
        ],
        transform: 'concat-transposed'
      }
    case 'gateUpBias':
      return {
        names: ['mlp.gate_proj.bias', 'mlp.up_proj.bias'],
        shapes: [[f], [f]],
        transform: 'concat'
      }
    case 'down':
      return one('mlp.down_proj.weight', 'transpose', [d, f])
    case 'downBias':
      return one('mlp.down_proj.bias', 'copy')
    default:
      throw new Error(`no Hugging Face tensor for ${part} in ${spec.family}`)
  }
}

/**
 * The plan for a checkpoint with these tensors: every graph weight's sources, checked to exist
 * with the shape the config implies; every other tensor must be one the layout ignores.
 * `multimodal`: a Gemma-3 image-text checkpoint (readHfArchitecture says which).
 */
export function planHfWeights(
  spec: ArchSpec,
  multimodal: boolean,
  tensors: Iterable<CheckpointTensor>,
  file: TensorFileNamer
): WeightPlan {
  const shapes = new Map<string, readonly number[]>()
  for (const t of tensors) shapes.set(t.name, t.shape)
  const layout = detectLayout(spec, multimodal, (n) => shapes.has(n), file)
  const p = layout.prefix
  const layerPrefix = spec.family === 'gpt2' ? `${p}h.` : `${p}layers.`
  const gemma = spec.norm.kind === 'gemma-rmsnorm'
  const weights: PlannedWeight[] = []
  for (const info of archWeights(spec)) {
    let sources: WeightSource[]
    let transform: WeightTransform
    if (info.layer !== undefined) {
      const s = hfLayerSources(spec, info.part as LayerPart, info.dims)
      sources = s.names.map((n, i) => ({
        tensor: `${layerPrefix}${info.layer}.${n}`,
        shape: s.shapes[i]!
      }))
      transform = s.transform
    } else {
      const gpt = spec.family === 'gpt2'
      switch (info.part) {
        case 'tok_emb':
          sources = [{ tensor: `${p}${gpt ? 'wte' : 'embed_tokens'}.weight`, shape: info.dims }]
          transform = 'copy'
          break
        case 'pos_emb':
          sources = [{ tensor: `${p}wpe.weight`, shape: info.dims }]
          transform = 'copy'
          break
        case 'lnf.gain':
          sources = [{ tensor: `${p}${gpt ? 'ln_f' : 'norm'}.weight`, shape: info.dims }]
          transform = gemma ? 'gemma-gain' : 'copy'
          break
        case 'lnf.bias':
          sources = [{ tensor: `${p}ln_f.bias`, shape: info.dims }]
          transform = 'copy'
          break
        case 'unembed':
          sources = [{ tensor: layout.lmHead, shape: [spec.vocabSize, spec.hiddenSize] }]
          transform = 'transpose'
          break
        default:
          throw new Error(`unplanned weight ${info.name}`)
      }
    }
    for (const src of sources) {
      const found = shapes.get(src.tensor)
      if (!found) {
        const why =
          info.part === 'unembed'
            ? ' (the config says the lm head is not tied to the embedding, so it must be stored)'
            : ''
        throw weightError('missing_tensor', file, src.tensor, `missing${why}`)
      }
      if (found.length !== src.shape.length || found.some((v, i) => v !== src.shape[i])) {
        throw weightError(
          'shape_mismatch',
          file,
          src.tensor,
          `shape [${found.join(', ')}] disagrees with config.json, which implies [${src.shape.join(', ')}]`
        )
      }
    }
    weights.push({ name: info.name, dims: info.dims, sources, transform })
  }
  const used = new Set(weights.flatMap((w) => w.sources.map((s) => s.tensor)))
  const ignored: string[] = []
  for (const name of shapes.keys()) {
    if (used.has(name)) continue
    if (layout.ignore(name) || (spec.tiedEmbeddings && name === layout.lmHead)) {
      ignored.push(name)
      continue
    }
    throw weightError(
      'unexpected_tensor',
      file,
      name,
      `unexpected: not part of a ${spec.family} checkpoint with this config.json (${spec.layers} layers)`
    )
  }
  return { weights, ignored }
}

/**
 * Writes src (rows, cols) transposed into dst, a row-major matrix `dstCols` wide, at columns
 * dstCol..dstCol+rows−1 (dst[c][dstCol + r] = src[r][c]), in cache-friendly tiles.
 */
export function transposeInto(
  src: Float32Array,
  rows: number,
  cols: number,
  dst: Float32Array,
  dstCols: number,
  dstCol: number
): void {
  const T = 32
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T)
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T)
      for (let c = c0; c < c1; c++) {
        const at = c * dstCols + dstCol
        for (let r = r0; r < r1; r++) dst[at + r] = src[r * cols + c]!
      }
    }
  }
}

/** (rows, cols) row-major → (cols, rows). */
export function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols)
  transposeInto(src, rows, cols, out, rows, 0)
  return out
}

/**
 * Builds one graph initializer from its sources, reading them one after another with `read`
 * (float32 values of a checkpoint tensor, any stored dtype converted by the reader).
 */
export async function materializeWeight(
  w: PlannedWeight,
  read: (tensor: string) => Promise<Float32Array> | Float32Array
): Promise<Float32Array> {
  const [first] = w.sources
  switch (w.transform) {
    case 'copy':
      return read(first!.tensor)
    case 'transpose': {
      const [rows, cols] = first!.shape as [number, number]
      return transpose(await read(first!.tensor), rows, cols)
    }
    case 'gemma-gain': {
      const v = await read(first!.tensor)
      const out = new Float32Array(v.length)
      // Float32 addition is correctly rounded, so this equals torch's float32 `1.0 + w`.
      for (let i = 0; i < v.length; i++) out[i] = 1 + v[i]!
      return out
    }
    case 'concat': {
      const out = new Float32Array(w.dims.reduce((a, b) => a * b, 1))
      let at = 0
      for (const s of w.sources) {
        const v = await read(s.tensor)
        out.set(v, at)
        at += v.length
      }
      return out
    }
    case 'concat-transposed': {
      const [inDim, width] = w.dims as [number, number]
      const out = new Float32Array(inDim * width)
      let col = 0
      for (const s of w.sources) {
        const [rows] = s.shape as [number, number]
        transposeInto(await read(s.tensor), rows, inDim, out, width, col)
        col += rows
      }
      return out
    }
  }
}
