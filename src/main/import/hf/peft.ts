/**
 * PEFT LoRA adapters (a donor model is often a base plus a LoRA fine-tune): `adapter_config.json`
 * and `adapter_model.safetensors`, read and merged into a copy of the base's weights as PEFT merges
 * them (`LoraLayer.get_delta_weight`):
 *
 *   W' = W + scale · (B · A)            (B: out × r, A: r × in)
 *   W' = W + scale · (B · A)ᵀ           when `fan_in_fan_out` (GPT-2's Conv1D stores W as in × out)
 *                                        and for embeddings (`lora_embedding_A/B`)
 *   scale = alpha / r, or alpha / √r with `use_rslora`; per-module r and alpha from
 *   `rank_pattern` / `alpha_pattern`.
 *
 * Whole tensors the adapter saves (`modules_to_save`, trained biases, resized embeddings) replace the
 * base's tensor of the same name before the delta is added, as loading the adapter would. Anything
 * a plain merge would get wrong (DoRA, LoRA biases, PiSSA/OLoRA/CorDA/LoftQ initialisations that
 * changed the base, other PEFT methods) is refused, naming the config field.
 */
import { checkpointFail, throwIfAborted } from '../errors'
import { isPlainObject, readJsonObject } from '../files'
import { locateHfFolder, resolveFile } from './layout'
import { promises as fs } from 'node:fs'
import {
  openSafetensors,
  readSafetensorsTensor,
  type SafetensorsFile,
  type SafetensorsTensorInfo
} from '../safetensors'

export const ADAPTER_CONFIG_FILE = 'adapter_config.json'
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors'
/** Every key PEFT saves for a causal LM starts with this (PeftModel → LoraModel → the model). */
export const ADAPTER_KEY_PREFIX = 'base_model.model.'

export interface PeftLoraConfig {
  peftType: 'LORA'
  /** Default rank (`r`). */
  r: number
  /** Default `lora_alpha`. */
  loraAlpha: number
  useRslora: boolean
  fanInFanOut: boolean
  /** As written: a list of module names, one regular expression, or null. */
  targetModules: string[] | string | null
  baseModelNameOrPath: string | null
  rankPattern: Record<string, number>
  alphaPattern: Record<string, number>
  modulesToSave: string[]
  bias: 'none' | 'all' | 'lora_only'
  taskType: string | null
}

/** One adapted module: its two low-rank factors and how they combine. */
export interface LoraModule {
  /** Module path inside the model, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string
  kind: 'linear' | 'embedding'
  /** `lora_A.weight` (r × in) or `lora_embedding_A` (r × num_embeddings). */
  a: SafetensorsTensorInfo
  /** `lora_B.weight` (out × r) or `lora_embedding_B` (embedding_dim × r). */
  b: SafetensorsTensorInfo
  rank: number
  alpha: number
  scale: number
  /** The delta is (B·A)ᵀ: with `fan_in_fan_out`, and always for embeddings. */
  transposed: boolean
}

export interface PeftAdapter {
  dir: string
  files: { config: string; weights: string }
  config: PeftLoraConfig
  weights: SafetensorsFile
  /** By module path. */
  loras: ReadonlyMap<string, LoraModule>
  /** Whole tensors the adapter replaces, by their path in the model (e.g. `lm_head.weight`). */
  replacements: ReadonlyMap<string, SafetensorsTensorInfo>
}

/** What merging does to one tensor of the base. */
export interface PeftMergeEntry {
  /** The base checkpoint's tensor name. */
  tensor: string
  shape: number[]
  /** Replaces the base tensor first (read from the adapter file). */
  replacement?: SafetensorsTensorInfo
  /** Then adds its delta. */
  lora?: LoraModule
}

/** Tensor name → what to do with it; tensors absent from the plan are copied unchanged. */
export type PeftMergePlan = ReadonlyMap<string, PeftMergeEntry>

const MAX_CONFIG_BYTES = 4 * 1024 * 1024

/** `init_lora_weights` values whose training started from a modified base: a plain merge is wrong. */
const BASE_CHANGING_INITS = /^(pissa|corda|olora|loftq)/i

// ── reading ─────────────────────────────────────────────────────────────────────────────────────

/** Reads and validates a PEFT LoRA adapter folder (headers only; factors are read when merging). */
export async function readPeftAdapter(
  dirArg: string,
  options: { signal?: AbortSignal } = {}
): Promise<PeftAdapter> {
  const { dir, root } = await locateHfFolder(dirArg)
  throwIfAborted(options.signal, dir)
  const cfgWhere = { file: ADAPTER_CONFIG_FILE }
  const configPath = await resolveFile(dir, root, ADAPTER_CONFIG_FILE, cfgWhere)
  if (!configPath) {
    checkpointFail('missing_file', cfgWhere, `missing in ${dir}: not a PEFT adapter folder`)
  }
  const raw = await readJsonObject(configPath, cfgWhere, MAX_CONFIG_BYTES)
  const config = parsePeftConfig(raw)

  const wWhere = { file: ADAPTER_WEIGHTS_FILE }
  const weightsPath = await resolveFile(dir, root, ADAPTER_WEIGHTS_FILE, wWhere)
  if (!weightsPath) {
    const names = await fs.readdir(dir).catch(() => [] as string[])
    const bin = names.includes('adapter_model.bin')
      ? ' (found adapter_model.bin: safetensors are needed; re-save the adapter with save_pretrained(..., safe_serialization=True))'
      : ''
    checkpointFail('missing_file', wWhere, `missing in ${dir}${bin}`)
  }
  const weights = await openSafetensors(weightsPath, {
    label: ADAPTER_WEIGHTS_FILE,
    signal: options.signal
  })
  const { loras, replacements } = collectAdapterTensors(weights, config)
  return {
    dir,
    files: { config: configPath, weights: weightsPath },
    config,
    weights,
    loras,
    replacements
  }
}

function cfgFail(field: string, message: string): never {
  checkpointFail('adapter_invalid', { file: ADAPTER_CONFIG_FILE, field }, message)
}

function positiveNumber(raw: Record<string, unknown>, field: string): number {
  const v = raw[field]
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    cfgFail(field, `must be a positive number, got ${JSON.stringify(v)}`)
  return v
}

function numberMap(raw: Record<string, unknown>, field: string): Record<string, number> {
  const v = raw[field]
  if (v === undefined || v === null) return {}
  if (!isPlainObject(v)) cfgFail(field, 'must be an object of module name → number')
  const out: Record<string, number> = {}
  for (const [k, n] of Object.entries(v)) {
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
      cfgFail(`${field}.${k}`, `must be a positive number, got ${JSON.stringify(n)}`)
    }
    // PEFT matches these keys as regular expressions; only plain module names are honoured here.
    if (/[*+?()[\]{}|^$\\]/.test(k)) {
      cfgFail(`${field}.${k}`, 'regular-expression keys are not supported; use plain module names')
    }
    out[k] = n
  }
  return out
}

function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false) return false
  if (Array.isArray(v)) return v.length > 0
  if (isPlainObject(v)) return Object.keys(v).length > 0
  return true
}

/** Validates `adapter_config.json`, refusing what a merge cannot reproduce (naming the field). */
export function parsePeftConfig(raw: Record<string, unknown>): PeftLoraConfig {
  const peftType = raw.peft_type
  if (peftType !== 'LORA') {
    cfgFail(
      'peft_type',
      `${JSON.stringify(peftType)} adapters are not supported; only LORA adapters can be merged`
    )
  }
  const r = positiveNumber(raw, 'r')
  if (!Number.isInteger(r)) cfgFail('r', `must be an integer, got ${r}`)
  const loraAlpha = positiveNumber(raw, 'lora_alpha')
  if (raw.use_dora === true)
    cfgFail('use_dora', 'DoRA adapters are not supported (their merge rescales every column)')
  if (raw.lora_bias === true) cfgFail('lora_bias', 'adapters with a LoRA bias are not supported')
  if (isSet(raw.alora_invocation_tokens)) {
    cfgFail(
      'alora_invocation_tokens',
      'activated LoRA applies only after its invocation tokens and cannot be merged'
    )
  }
  if (raw.use_qalora === true)
    cfgFail('use_qalora', 'QALoRA adapters belong to quantised models and are not supported')
  if (isSet(raw.trainable_token_indices)) {
    cfgFail(
      'trainable_token_indices',
      'adapters that train single token embeddings are not supported'
    )
  }
  if (isSet(raw.layer_replication))
    cfgFail('layer_replication', 'adapters that replicate layers are not supported')
  if (isSet(raw.target_parameters))
    cfgFail('target_parameters', 'adapters on raw parameters are not supported')
  if (isSet(raw.megatron_config))
    cfgFail('megatron_config', 'Megatron-parallel adapters are not supported')
  const init = raw.init_lora_weights
  if (typeof init === 'string' && BASE_CHANGING_INITS.test(init)) {
    cfgFail(
      'init_lora_weights',
      `"${init}" initialisation changed the base weights during training; merging into the original base would be wrong (convert the adapter with PEFT's path_initial_model_for_weight_conversion first)`
    )
  }
  const taskType = raw.task_type ?? null
  if (taskType !== null && taskType !== 'CAUSAL_LM') {
    cfgFail(
      'task_type',
      `${JSON.stringify(taskType)}: only causal language model (CAUSAL_LM) adapters can be donors`
    )
  }
  const bias = raw.bias ?? 'none'
  if (bias !== 'none' && bias !== 'all' && bias !== 'lora_only')
    cfgFail('bias', `unknown value ${JSON.stringify(bias)}`)
  const tm = raw.target_modules ?? null
  if (
    tm !== null &&
    typeof tm !== 'string' &&
    !(Array.isArray(tm) && tm.every((m) => typeof m === 'string'))
  ) {
    cfgFail('target_modules', 'must be a list of module names or a string')
  }
  const mts = raw.modules_to_save ?? []
  if (!Array.isArray(mts) || !mts.every((m) => typeof m === 'string'))
    cfgFail('modules_to_save', 'must be a list of module names')
  const base = raw.base_model_name_or_path ?? null
  if (base !== null && typeof base !== 'string')
    cfgFail('base_model_name_or_path', 'must be a string')
  const fanInFanOut = raw.fan_in_fan_out ?? false
  const useRslora = raw.use_rslora ?? false
  if (typeof fanInFanOut !== 'boolean') cfgFail('fan_in_fan_out', 'must be true or false')
  if (typeof useRslora !== 'boolean') cfgFail('use_rslora', 'must be true or false')
  return {
    peftType: 'LORA',
    r,
    loraAlpha,
    useRslora,
    fanInFanOut,
    targetModules: tm as string[] | string | null,
    baseModelNameOrPath: base,
    rankPattern: numberMap(raw, 'rank_pattern'),
    alphaPattern: numberMap(raw, 'alpha_pattern'),
    modulesToSave: mts as string[],
    bias,
    taskType: taskType as string | null
  }
}

/** The first pattern key naming `module` (the module itself, or its last dotted components). */
function patternValue(pattern: Record<string, number>, module: string): number | undefined {
  for (const [key, value] of Object.entries(pattern)) {
    if (module === key || module.endsWith(`.${key}`)) return value
  }
  return undefined
}

/** The scale and rank PEFT uses for one module. */
export function loraScaleFor(
  config: PeftLoraConfig,
  module: string
): { rank: number; alpha: number; scale: number } {
  const rank = patternValue(config.rankPattern, module) ?? config.r
  const alpha = patternValue(config.alphaPattern, module) ?? config.loraAlpha
  return { rank, alpha, scale: config.useRslora ? alpha / Math.sqrt(rank) : alpha / rank }
}

const LORA_SUFFIXES = {
  '.lora_A.weight': { kind: 'linear', factor: 'a' },
  '.lora_B.weight': { kind: 'linear', factor: 'b' },
  '.lora_embedding_A': { kind: 'embedding', factor: 'a' },
  '.lora_embedding_B': { kind: 'embedding', factor: 'b' }
} as const

function collectAdapterTensors(
  weights: SafetensorsFile,
  config: PeftLoraConfig
): Pick<PeftAdapter, 'loras' | 'replacements'> {
  const file = ADAPTER_WEIGHTS_FILE
  const halves = new Map<
    string,
    { kind: 'linear' | 'embedding'; a?: SafetensorsTensorInfo; b?: SafetensorsTensorInfo }
  >()
  const replacements = new Map<string, SafetensorsTensorInfo>()
  for (const info of weights.tensors.values()) {
    const key = info.name
    const at = { file, tensor: key }
    if (!key.startsWith(ADAPTER_KEY_PREFIX)) {
      checkpointFail(
        'adapter_invalid',
        at,
        `adapter keys start with "${ADAPTER_KEY_PREFIX}" (a causal LM adapter saved by PEFT)`
      )
    }
    const inner = key.slice(ADAPTER_KEY_PREFIX.length)
    if (inner.includes('lora_magnitude_vector')) {
      checkpointFail(
        'adapter_invalid',
        { ...at, field: 'use_dora' },
        'DoRA magnitude vectors cannot be merged as plain LoRA'
      )
    }
    if (inner.endsWith('.lora_B.bias')) {
      checkpointFail(
        'adapter_invalid',
        { ...at, field: 'lora_bias' },
        'LoRA biases are not supported'
      )
    }
    if (inner.includes('trainable_tokens_')) {
      checkpointFail(
        'adapter_invalid',
        { ...at, field: 'trainable_token_indices' },
        'trainable-token deltas are not supported'
      )
    }
    const suffix = (Object.keys(LORA_SUFFIXES) as (keyof typeof LORA_SUFFIXES)[]).find((s) =>
      inner.endsWith(s)
    )
    if (suffix) {
      const module = inner.slice(0, -suffix.length)
      const { kind, factor } = LORA_SUFFIXES[suffix]
      const h = halves.get(module) ?? { kind }
      if (h.kind !== kind)
        checkpointFail(
          'adapter_invalid',
          at,
          `mixes linear and embedding LoRA factors for ${module}`
        )
      h[factor] = info
      halves.set(module, h)
      continue
    }
    if (/(^|\.)lora_/.test(inner)) {
      checkpointFail(
        'adapter_invalid',
        at,
        'unrecognised LoRA tensor (expected lora_A.weight, lora_B.weight, lora_embedding_A or lora_embedding_B)'
      )
    }
    // A whole tensor: modules_to_save, a trained bias, or a saved (resized) embedding.
    const target = inner.replace('.modules_to_save.', '.').replace('.base_layer.', '.')
    if (replacements.has(target)) {
      checkpointFail('adapter_invalid', at, `saves ${target} twice`)
    }
    replacements.set(target, info)
  }

  const loras = new Map<string, LoraModule>()
  for (const [module, h] of halves) {
    const missing = !h.a ? 'A' : !h.b ? 'B' : undefined
    if (missing) {
      checkpointFail(
        'adapter_invalid',
        { file, tensor: `${ADAPTER_KEY_PREFIX}${module}` },
        `has no LoRA ${missing} factor`
      )
    }
    const a = h.a!
    const b = h.b!
    const at = { file, tensor: a.name }
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== b.shape[1]) {
      checkpointFail(
        'adapter_invalid',
        at,
        `factors have shapes A ${JSON.stringify(a.shape)} and B ${JSON.stringify(b.shape)}; expected A (r × in) and B (out × r)`
      )
    }
    const { rank, alpha, scale } = loraScaleFor(config, module)
    if (a.shape[0] !== rank) {
      checkpointFail(
        'adapter_invalid',
        {
          ...at,
          field: patternValue(config.rankPattern, module) !== undefined ? 'rank_pattern' : 'r'
        },
        `has rank ${a.shape[0]} but the config gives ${rank} for ${module}; the scale would be wrong`
      )
    }
    loras.set(module, {
      module,
      kind: h.kind,
      a,
      b,
      rank,
      alpha,
      scale,
      transposed: h.kind === 'embedding' || config.fanInFanOut
    })
  }
  if (config.modulesToSave.length > 0) {
    for (const m of config.modulesToSave) {
      const saved = [...replacements.keys()].some(
        (t) => t === `${m}.weight` || t.endsWith(`.${m}.weight`) || t.startsWith(`${m}.`)
      )
      if (!saved) {
        checkpointFail(
          'adapter_invalid',
          { file: ADAPTER_CONFIG_FILE, field: 'modules_to_save' },
          `names "${m}" but ${file} holds no weights for it`
        )
      }
    }
  }
  if (loras.size === 0 && replacements.size === 0) {
    checkpointFail('adapter_invalid', { file }, 'holds no LoRA factors')
  }
  return { loras, replacements }
}

// ── planning ────────────────────────────────────────────────────────────────────────────────────

export interface PlanPeftMergeOptions {
  /**
   * Maps a Hugging Face tensor name to a layout-independent one (e.g. dropping `model.` or
   * `transformer.` prefixes). Used when names differ only in such prefixes between the adapter and
   * the base checkpoint; without it, dotted-suffix matching is tried.
   */
  canonicalName?: (hfName: string) => string | undefined
}

/**
 * Matches every adapted module and replaced tensor to a tensor of the base checkpoint and checks
 * the shapes agree. Refuses (naming the adapter key) any that does not match exactly one tensor.
 */
export function planPeftMerge(
  adapter: PeftAdapter,
  baseTensors: ReadonlyMap<string, { shape: readonly number[] }>,
  options: PlanPeftMergeOptions = {}
): PeftMergePlan {
  const names = [...baseTensors.keys()]
  const byCanonical = new Map<string, string[]>()
  if (options.canonicalName) {
    for (const n of names) {
      const c = options.canonicalName(n)
      if (c !== undefined) byCanonical.set(c, [...(byCanonical.get(c) ?? []), n])
    }
  }
  const find = (wanted: string, adapterKey: string): string => {
    if (baseTensors.has(wanted)) return wanted
    let candidates: string[] = []
    const c = options.canonicalName?.(wanted)
    if (c !== undefined) candidates = byCanonical.get(c) ?? []
    if (candidates.length === 0) {
      candidates = names.filter((n) => wanted.endsWith(`.${n}`) || n.endsWith(`.${wanted}`))
    }
    if (candidates.length !== 1) {
      const why =
        candidates.length === 0
          ? 'no tensor'
          : `${candidates.length} tensors (${candidates.slice(0, 3).join(', ')})`
      checkpointFail(
        'adapter_invalid',
        { file: ADAPTER_WEIGHTS_FILE, tensor: adapterKey },
        `targets ${wanted}, but the base model has ${why} of that name; is this adapter for this base?`
      )
    }
    return candidates[0]!
  }

  const plan = new Map<string, PeftMergeEntry>()
  const entry = (tensor: string): PeftMergeEntry => {
    let e = plan.get(tensor)
    if (!e) {
      e = { tensor, shape: [...baseTensors.get(tensor)!.shape] }
      plan.set(tensor, e)
    }
    return e
  }
  for (const [target, info] of adapter.replacements) {
    const tensor = find(target, info.name)
    const e = entry(tensor)
    if (JSON.stringify(e.shape) !== JSON.stringify(info.shape)) {
      checkpointFail(
        'adapter_invalid',
        { file: ADAPTER_WEIGHTS_FILE, tensor: info.name, field: 'modules_to_save' },
        `has shape ${JSON.stringify(info.shape)} but the base's ${tensor} is ${JSON.stringify(e.shape)} (a resized vocabulary cannot be merged into this base)`
      )
    }
    e.replacement = info
  }
  for (const lora of adapter.loras.values()) {
    const tensor = find(`${lora.module}.weight`, lora.a.name)
    const e = entry(tensor)
    const inDim = lora.a.shape[1]!
    const outDim = lora.b.shape[0]!
    const expected = lora.transposed ? [inDim, outDim] : [outDim, inDim]
    if (e.shape.length !== 2 || e.shape[0] !== expected[0] || e.shape[1] !== expected[1]) {
      const hint =
        lora.kind === 'linear' && e.shape[0] === expected[1] && e.shape[1] === expected[0]
          ? ` (the transpose: is fan_in_fan_out ${adapter.config.fanInFanOut ? 'wrongly set' : 'missing'}?)`
          : ''
      checkpointFail(
        'adapter_invalid',
        { file: ADAPTER_WEIGHTS_FILE, tensor: lora.a.name, field: 'fan_in_fan_out' },
        `the factors give a ${expected.join(' × ')} delta but the base's ${tensor} is ${JSON.stringify(e.shape)}${hint}`
      )
    }
    e.lora = lora
  }
  return plan
}

// ── merging ─────────────────────────────────────────────────────────────────────────────────────

/**
 * W[row, col] += scale · Σ_k L[row, k] · R[k, col], for a row-major W (rows × cols), L (rows × rank)
 * and R (rank × cols). Each row is accumulated in float64 and rounded to float32 once.
 */
export function addScaledLowRankProduct(
  weight: Float32Array,
  rows: number,
  cols: number,
  left: Float32Array,
  right: Float32Array,
  rank: number,
  scale: number
): void {
  if (
    weight.length !== rows * cols ||
    left.length !== rows * rank ||
    right.length !== rank * cols
  ) {
    throw new Error('addScaledLowRankProduct: sizes disagree')
  }
  const acc = new Float64Array(cols)
  for (let row = 0; row < rows; row++) {
    acc.fill(0)
    for (let k = 0; k < rank; k++) {
      const c = left[row * rank + k]!
      if (c === 0) continue
      const base = k * cols
      for (let col = 0; col < cols; col++) acc[col]! += c * right[base + col]!
    }
    const w = row * cols
    for (let col = 0; col < cols; col++) weight[w + col] = weight[w + col]! + scale * acc[col]!
  }
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c]!
  return t
}

/**
 * Adds one module's delta to its weight in place: `scale·(B·A)` or, when `transposed`, `scale·(B·A)ᵀ`.
 * `a` is r × in, `b` is out × r (flat, row-major).
 */
export function applyLoraDelta(
  weight: Float32Array,
  lora: LoraModule,
  a: Float32Array,
  b: Float32Array
): void {
  const [rank, inDim] = lora.a.shape as [number, number]
  const outDim = lora.b.shape[0]!
  if (lora.transposed) {
    // Wᵀ-shaped (in × out): W[i, o] += s · Σ_k Aᵀ[i, k] · Bᵀ[k, o].
    addScaledLowRankProduct(
      weight,
      inDim,
      outDim,
      transpose(a, rank, inDim),
      transpose(b, outDim, rank),
      rank,
      lora.scale
    )
  } else {
    addScaledLowRankProduct(weight, outDim, inDim, b, a, rank, lora.scale)
  }
}

/**
 * The merged value of one planned tensor: the replacement (if any) or `base`, plus the LoRA delta
 * (if any). `base` is modified in place and returned unless a replacement is read instead.
 */
export async function mergePeftTensor(
  adapter: PeftAdapter,
  entry: PeftMergeEntry,
  base: Float32Array,
  options: { signal?: AbortSignal } = {}
): Promise<Float32Array> {
  let weight = base
  if (entry.replacement) {
    weight = await readSafetensorsTensor(adapter.weights, entry.replacement.name, {
      ...options,
      into: base
    })
  }
  if (entry.lora) {
    const a = await readSafetensorsTensor(adapter.weights, entry.lora.a.name, options)
    const b = await readSafetensorsTensor(adapter.weights, entry.lora.b.name, options)
    throwIfAborted(options.signal, ADAPTER_WEIGHTS_FILE)
    applyLoraDelta(weight, entry.lora, a, b)
  }
  return weight
}
