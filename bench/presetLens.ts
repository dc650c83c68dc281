/**
 * A group at a real model's shapes for `npm run bench -- --preset`: the preset's random-weight
 * checkpoint (bench/hfPresets.ts) imported as a base, plus a random-weight lens written in the
 * predecessor's training format by the fixture writer (bench/write_lens_checkpoint.py) and read
 * through the real lens importer. Built once, cached under the cache folder's `bench-groups/`.
 */
import { execFile } from 'node:child_process'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { planBaseModel } from '../src/main/engine'
import { BASE_MODEL_FILE, importHfBase } from '../src/main/import/hf'
import { readHfArchitecture } from '../src/main/import/hf/config'
import { importLens } from '../src/main/import/lens'
import { benchCacheDir, ensureCheckpoint, PRESETS, type PresetName } from './hfPresets'

/** The fields of the fixture writer's family table (scripts/fixtures/make_lens_checkpoints.py). */
export interface LensFamily {
  model_name: string
  orig_model_name: string
  d: number
  layers: number
  model_dtype: 'float32' | 'bfloat16'
  layer_l: number
  t_text: number
  decoder_prompt: string
  /** Decoder prompt rows left and right of `<embed>`, as the model's tokenizer splits the text. */
  n_left: number
  n_right: number
  encoder_prompt: string
  /** Encoder soft-prompt rows (the text before `<text>`, tokenised). */
  n_soft: number
  n_post: number
  patch_all_layers: number | true
  per_layer_projections: boolean
  use_projection_layer: boolean
  special_last_token_vector: boolean
  add_current_token: boolean
  output_layer: number
  models_keys: [string, string]
}

const DECODER_PROMPT =
  'Short explanation of <embed>. Language, topic, sentiment, claims, speaker, style, etc:'
const ENCODER_PROMPT =
  'Summary of the text, encapsulating the main points and message, style and details:<text>'

/**
 * The predecessor's training convention for Gemma and Qwen lenses (its Gemma-3 and Qwen2.5
 * configs): T = 8, per-layer projections on the first 5 blocks, encoder projection, the current
 * token and a special vector added to the encoder's last row, the encoder read at layer L. Those
 * configs train at L = 45 of 62 and 36 of 48 blocks; the presets take the same depth (≈ 3/4).
 * Prompt row counts are the prompts above tokenised with the model's tokenizer (GPT-2 has no
 * seed config: the same convention, with `<|endoftext|>` for `<bos>` and the row counts of a
 * byte-level BPE, Qwen3's, standing in for GPT-2's).
 */
function family(
  name: PresetName,
  bos: string,
  layer: number,
  rows: { left: number; right: number; soft: number }
): LensFamily {
  const preset = PRESETS[name]
  const c = preset.config
  return {
    model_name: preset.hubName,
    orig_model_name: preset.hubName,
    d: Number(c.hidden_size ?? c.n_embd),
    layers: Number(c.num_hidden_layers ?? c.n_layer),
    model_dtype: preset.dtype === 'F32' ? 'float32' : 'bfloat16',
    layer_l: layer,
    t_text: 8,
    decoder_prompt: bos + DECODER_PROMPT,
    n_left: rows.left,
    n_right: rows.right,
    encoder_prompt: bos + ENCODER_PROMPT,
    n_soft: rows.soft,
    n_post: 0,
    patch_all_layers: 5,
    per_layer_projections: true,
    use_projection_layer: true,
    special_last_token_vector: true,
    add_current_token: true,
    output_layer: layer,
    models_keys: ['decoder', 'encoder']
  }
}

export const PRESET_LENS: Record<PresetName, LensFamily> = {
  gpt2: family('gpt2', '<|endoftext|>', 9, { left: 5, right: 15, soft: 18 }),
  // Qwen's tokenizer has no <bos> token: the predecessor's prompt text spells it in 3 tokens.
  // Every block patched: with per-layer projections on fewer blocks the predecessor's Llama-style
  // decoder failed (the importer refuses such a lens), so its Qwen configs cannot be taken as is.
  'qwen3-0.6b': {
    ...family('qwen3-0.6b', '<bos>', 21, { left: 7, right: 15, soft: 20 }),
    patch_all_layers: true
  },
  'gemma3-270m': family('gemma3-270m', '<bos>', 13, { left: 5, right: 15, soft: 18 })
}

export const BENCH_LENS_ID = 'bench-lens'

/**
 * Rewrites a cached group's base graph when this checkout writes a different one. The weights file
 * is laid out from the architecture alone (`planBaseModel`), so a graph change needs no re-import,
 * and a comparison of two checkouts runs each one's own graph on the same weights.
 */
async function refreshBaseGraph(
  name: PresetName,
  dir: string,
  log: (line: string) => void
): Promise<void> {
  const layout = planBaseModel(
    readHfArchitecture(PRESETS[name].config, 'config.json').spec,
    `${BASE_MODEL_FILE}.data`
  )
  const data = path.join(dir, layout.dataFile)
  const size = (await fs.stat(data)).size
  if (size !== layout.dataSize) {
    throw new Error(
      `${data}: ${size} bytes, this checkout lays out ${layout.dataSize}; delete ${dir} to re-import`
    )
  }
  const file = path.join(dir, BASE_MODEL_FILE)
  if (Buffer.from(layout.model).equals(await fs.readFile(file))) return
  // A new file renamed into place: a hard-linked copy of the group keeps its own graph.
  await fs.writeFile(`${file}.tmp`, layout.model)
  await fs.rename(`${file}.tmp`, file)
  log(`  rewrote ${name}'s ${BASE_MODEL_FILE} with this checkout's graph`)
}

/** The preset's group folder (base + one lens), imported first if it is not complete yet. */
export async function ensurePresetGroup(
  name: PresetName,
  log: (line: string) => void
): Promise<string> {
  const dir = path.join(benchCacheDir(), 'bench-groups', name)
  const marker = path.join(dir, '.complete')
  if (await fs.stat(marker).catch(() => null)) {
    await refreshBaseGraph(name, dir, log)
    return dir
  }
  const baseMarker = path.join(dir, '.base-complete')
  let t = Date.now()
  if (!(await fs.stat(baseMarker).catch(() => null))) {
    const source = await ensureCheckpoint(name, log)
    await fs.rm(dir, { recursive: true, force: true })
    await fs.mkdir(path.dirname(dir), { recursive: true })
    await importHfBase({ source, out: dir, name: PRESETS[name].hubName })
    await fs.writeFile(baseMarker, '')
    log(`  imported ${name} base in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  }

  const checkpoint = path.join(benchCacheDir(), 'bench-lens', name, 'checkpoint.pt')
  if (!(await fs.stat(checkpoint).catch(() => null))) {
    t = Date.now()
    // Debian's Python has torch (the pyenv python3 first on PATH does not).
    await promisify(execFile)('/usr/bin/python3', [
      path.join(__dirname, 'write_lens_checkpoint.py'),
      checkpoint,
      JSON.stringify(PRESET_LENS[name])
    ])
    log(`  wrote the lens checkpoint in ${((Date.now() - t) / 1000).toFixed(1)} s (${checkpoint})`)
  }
  t = Date.now()
  await importLens({ checkpoint, group: dir, id: BENCH_LENS_ID })
  log(`  imported the lens in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  await fs.writeFile(marker, '')
  return dir
}
