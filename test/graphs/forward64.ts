/**
 * A float64 forward pass in Hugging Face terms, for tests of the base graph: it reads checkpoint
 * tensors by their HF names and applies them as the modeling code does (nn.Linear as W·x + b with
 * W (out, in), GPT-2's Conv1D as x·W + b with W (in, out), repeat_kv head order, rotate_half,
 * Gemma's (1 + w) norms, sandwich norms, softcaps), with no caches and no batching: every role of
 * the graph is checked against plain full-sequence recomputation. Hyperparameters come from the
 * ArchSpec (the config reader has its own table tests); rotary frequencies are computed here again
 * from modeling_rope_utils.py's formulas.
 */
import type { ArchSpec, Rope } from '../../src/main/engine/arch/spec'
import type { HfTensor } from './hf-models'

export type Vec = Float64Array

export interface ForwardOptions {
  /** Stop after this block (default: all). */
  upTo?: number
  /** Before every block l < vectors.length, row `row`'s residual is overwritten with vectors[l]. */
  patch?: { row: number; vectors: ArrayLike<number>[] }
  /** After block `layer`, row `row`'s residual is replaced by `vector` (the KL role's Q). */
  replace?: { layer: number; row: number; vector: ArrayLike<number> }
}

/** erf in float64: its Taylor series below 3 (cancellation costs ~4 of 16 digits), A&S 7.1.26 above. */
function erf(x: number): number {
  const a = Math.abs(x)
  if (a < 3) {
    let sum = 0
    let term = a
    for (let n = 0; n < 80; n++) {
      sum += term / (2 * n + 1)
      term *= (-a * a) / (n + 1)
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum
  }
  const t = 1 / (1 + 0.3275911 * a)
  const poly =
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
  return Math.sign(x) * (1 - poly * Math.exp(-a * a))
}

function act(name: ArchSpec['mlp']['activation'], x: number): number {
  switch (name) {
    case 'gelu_erf':
      return 0.5 * x * (1 + erf(x / Math.SQRT2))
    case 'gelu_tanh':
      return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))
    case 'silu':
      return x / (1 + Math.exp(-x))
    case 'relu':
      return Math.max(0, x)
  }
}

/** HF inverse frequencies (default, linear, llama3) in float64. */
function invFreq(rope: Rope, dim: number): number[] {
  const out: number[] = []
  for (let i = 0; i < dim; i += 2) {
    let inv = 1 / rope.theta ** (i / dim)
    const s = rope.scaling
    if (s?.type === 'linear') inv /= s.factor
    if (s?.type === 'llama3') {
      const wavelen = (2 * Math.PI) / inv
      const lowWave = s.originalMaxPositions / s.lowFreqFactor
      const highWave = s.originalMaxPositions / s.highFreqFactor
      const scaled = wavelen > lowWave ? inv / s.factor : inv
      const smooth =
        (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor)
      const medium = !(wavelen < highWave) && !(wavelen > lowWave)
      inv = medium ? (1 - smooth) * (scaled / s.factor) + smooth * scaled : scaled
    }
    out.push(inv)
  }
  return out
}

export class Forward64 {
  readonly #t: (name: string) => HfTensor
  readonly #gpt: boolean
  readonly #p: string

  constructor(
    readonly spec: ArchSpec,
    tensors: Map<string, HfTensor>,
    layout: { prefix: string; lmHead: string }
  ) {
    this.#gpt = spec.family === 'gpt2'
    this.#p = layout.prefix
    this.#lmHead = layout.lmHead
    this.#t = (name) => {
      const t = tensors.get(name)
      if (!t) throw new Error(`reference: no tensor ${name}`)
      return t
    }
  }

  readonly #lmHead: string

  #w(rel: string): HfTensor {
    return this.#t(`${this.#p}${rel}`)
  }

  #has(rel: string): boolean {
    try {
      this.#w(rel)
      return true
    } catch {
      return false
    }
  }

  /** nn.Linear: W (out, in) · x + b. */
  #linear(x: Vec, w: HfTensor, b?: HfTensor): Vec {
    const [out, inn] = w.shape as [number, number]
    const y = new Float64Array(out)
    for (let o = 0; o < out; o++) {
      let s = b ? b.data[o]! : 0
      const row = o * inn
      for (let i = 0; i < inn; i++) s += w.data[row + i]! * x[i]!
      y[o] = s
    }
    return y
  }

  /** GPT-2 Conv1D: x · W (in, out) + b. */
  #conv(x: Vec, w: HfTensor, b: HfTensor): Vec {
    const [inn, out] = w.shape as [number, number]
    const y = Float64Array.from(b.data)
    for (let i = 0; i < inn; i++) {
      const xi = x[i]!
      for (let o = 0; o < out; o++) y[o]! += xi * w.data[i * out + o]!
    }
    return y
  }

  #norm(x: Vec, w: HfTensor, b?: HfTensor): Vec {
    const n = x.length
    const eps = this.spec.norm.eps
    const y = new Float64Array(n)
    if (this.spec.norm.kind === 'layernorm') {
      let mu = 0
      for (const v of x) mu += v
      mu /= n
      let var_ = 0
      for (const v of x) var_ += (v - mu) ** 2
      const inv = 1 / Math.sqrt(var_ / n + eps)
      for (let i = 0; i < n; i++) y[i] = (x[i]! - mu) * inv * w.data[i]! + b!.data[i]!
      return y
    }
    let ms = 0
    for (const v of x) ms += v * v
    const inv = 1 / Math.sqrt(ms / n + eps)
    const gemma = this.spec.norm.kind === 'gemma-rmsnorm'
    for (let i = 0; i < n; i++) y[i] = x[i]! * inv * (gemma ? 1 + w.data[i]! : w.data[i]!)
    return y
  }

  /** Token embedding rows × the model's scale (residual-input space). */
  embed(ids: number[]): Vec[] {
    const emb = this.#w(this.#gpt ? 'wte.weight' : 'embed_tokens.weight')
    const d = this.spec.hiddenSize
    return ids.map((id) => {
      const r = new Float64Array(d)
      for (let i = 0; i < d; i++) r[i] = emb.data[id * d + i]! * this.spec.embeddingScale
      return r
    })
  }

  /** Residual stream after each block, for input rows at positions 0..n−1. */
  forward(rowsIn: Vec[], opts: ForwardOptions = {}): Vec[][] {
    const { spec } = this
    const n = rowsIn.length
    const d = spec.hiddenSize
    let x: Vec[] = rowsIn.map((r) => Float64Array.from(r))
    if (this.#gpt) {
      const wpe = this.#w('wpe.weight')
      x = x.map((r, t) => r.map((v, i) => v + wpe.data[t * d + i]!))
    }
    const upTo = opts.upTo ?? spec.layers - 1
    const out: Vec[][] = []
    for (let l = 0; l <= upTo; l++) {
      if (opts.patch && l < opts.patch.vectors.length) {
        x[opts.patch.row] = Float64Array.from(opts.patch.vectors[l]!)
      }
      x = this.#gpt ? this.#gptBlock(l, x) : this.#block(l, x)
      if (opts.replace?.layer === l) x[opts.replace.row] = Float64Array.from(opts.replace.vector)
      out.push(x.map((r) => Float64Array.from(r)))
    }
    void n
    return out
  }

  #attend(l: number, q: Vec[][], k: Vec[][], v: Vec[][]): Vec[] {
    // q[t][h], k[t][j], v[t][j]: per position, per head.
    const { spec } = this
    const layer = spec.attention.perLayer[l]!
    const G = spec.heads / spec.kvHeads
    const dh = spec.headDim
    const cap = spec.attention.logitSoftcap
    return q.map((qt, t) => {
      const o = new Float64Array(spec.heads * dh)
      for (let h = 0; h < spec.heads; h++) {
        const j = Math.floor(h / G)
        const scores: number[] = []
        const keys: number[] = []
        for (let s = 0; s <= t; s++) {
          if (layer.window !== null && !(s > t - layer.window)) continue
          let dot = 0
          for (let i = 0; i < dh; i++) dot += qt[h]![i]! * k[s]![j]![i]!
          let sc = dot * layer.scale
          if (cap !== null) sc = Math.tanh(sc / cap) * cap
          scores.push(sc)
          keys.push(s)
        }
        const m = Math.max(...scores)
        const e = scores.map((sc) => Math.exp(sc - m))
        const z = e.reduce((a, b) => a + b, 0)
        keys.forEach((s, idx) => {
          const p = e[idx]! / z
          for (let i = 0; i < dh; i++) o[h * dh + i]! += p * v[s]![j]![i]!
        })
      }
      return o
    })
  }

  #gptBlock(l: number, x: Vec[]): Vec[] {
    const { spec } = this
    const d = spec.hiddenSize
    const dh = spec.headDim
    const H = spec.heads
    const w = (n: string): HfTensor => this.#w(`h.${l}.${n}`)
    const qkv = x.map((r) =>
      this.#conv(
        this.#norm(r, w('ln_1.weight'), w('ln_1.bias')),
        w('attn.c_attn.weight'),
        w('attn.c_attn.bias')
      )
    )
    const heads = (r: Vec, off: number): Vec[] =>
      Array.from({ length: H }, (_, h) => r.slice(off + h * dh, off + (h + 1) * dh))
    const att = this.#attend(
      l,
      qkv.map((r) => heads(r, 0)),
      qkv.map((r) => heads(r, d)),
      qkv.map((r) => heads(r, 2 * d))
    )
    return x.map((r, t) => {
      const a = this.#conv(att[t]!, w('attn.c_proj.weight'), w('attn.c_proj.bias'))
      const y = r.map((v, i) => v + a[i]!)
      const u = this.#conv(
        this.#norm(y, w('ln_2.weight'), w('ln_2.bias')),
        w('mlp.c_fc.weight'),
        w('mlp.c_fc.bias')
      )
      const m = this.#conv(
        u.map((v) => act(spec.mlp.activation, v)),
        w('mlp.c_proj.weight'),
        w('mlp.c_proj.bias')
      )
      return y.map((v, i) => v + m[i]!)
    })
  }

  #rope(l: number, vecs: Vec[], t: number): Vec[] {
    const { spec } = this
    if (spec.positions.kind !== 'rotary') return vecs
    const local = spec.attention.perLayer[l]!.rope === 'local'
    const rope = local ? spec.positions.local! : spec.positions.global
    const dh = spec.headDim
    const inv = invFreq(rope, dh)
    return vecs.map((x) => {
      const y = new Float64Array(dh)
      for (let i = 0; i < dh / 2; i++) {
        const c = Math.cos(t * inv[i]!)
        const s = Math.sin(t * inv[i]!)
        // x·cos + rotate_half(x)·sin, rotate_half(x) = [−x2, x1].
        y[i] = x[i]! * c - x[i + dh / 2]! * s
        y[i + dh / 2] = x[i + dh / 2]! * c + x[i]! * s
      }
      return y
    })
  }

  #block(l: number, x: Vec[]): Vec[] {
    const { spec } = this
    const dh = spec.headDim
    const gemma = spec.sandwichNorms
    const w = (n: string): HfTensor => this.#w(`layers.${l}.${n}`)
    const opt = (n: string): HfTensor | undefined =>
      this.#has(`layers.${l}.${n}`) ? w(n) : undefined
    const split = (r: Vec, count: number): Vec[] =>
      Array.from({ length: count }, (_, h) => r.slice(h * dh, (h + 1) * dh))
    const q: Vec[][] = []
    const k: Vec[][] = []
    const v: Vec[][] = []
    x.forEach((r, t) => {
      const h = this.#norm(r, w('input_layernorm.weight'))
      let qh = split(
        this.#linear(h, w('self_attn.q_proj.weight'), opt('self_attn.q_proj.bias')),
        spec.heads
      )
      let kh = split(
        this.#linear(h, w('self_attn.k_proj.weight'), opt('self_attn.k_proj.bias')),
        spec.kvHeads
      )
      const vh = split(
        this.#linear(h, w('self_attn.v_proj.weight'), opt('self_attn.v_proj.bias')),
        spec.kvHeads
      )
      if (spec.attention.qkNorm) {
        qh = qh.map((e) => this.#norm(e, w('self_attn.q_norm.weight')))
        kh = kh.map((e) => this.#norm(e, w('self_attn.k_norm.weight')))
      }
      q.push(this.#rope(l, qh, t))
      k.push(this.#rope(l, kh, t))
      v.push(vh)
    })
    const att = this.#attend(l, q, k, v)
    return x.map((r, t) => {
      let a = this.#linear(att[t]!, w('self_attn.o_proj.weight'), opt('self_attn.o_proj.bias'))
      if (gemma) a = this.#norm(a, w('post_attention_layernorm.weight'))
      const y = r.map((val, i) => val + a[i]!)
      const hn = this.#norm(
        y,
        w(gemma ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight')
      )
      const gate = this.#linear(hn, w('mlp.gate_proj.weight'), opt('mlp.gate_proj.bias'))
      const up = this.#linear(hn, w('mlp.up_proj.weight'), opt('mlp.up_proj.bias'))
      let m = this.#linear(
        gate.map((g, i) => act(spec.mlp.activation, g) * up[i]!),
        w('mlp.down_proj.weight'),
        opt('mlp.down_proj.bias')
      )
      if (gemma) m = this.#norm(m, w('post_feedforward_layernorm.weight'))
      return y.map((val, i) => val + m[i]!)
    })
  }

  /** Final norm and lm_head (the token table when tied); `softcap`: the model's final softcap. */
  logits(h: Vec, softcap: boolean): Vec {
    const { spec } = this
    const hn = this.#gpt
      ? this.#norm(h, this.#w('ln_f.weight'), this.#w('ln_f.bias'))
      : this.#norm(h, this.#w('norm.weight'))
    const head = spec.tiedEmbeddings
      ? this.#w(this.#gpt ? 'wte.weight' : 'embed_tokens.weight')
      : this.#t(this.#lmHead)
    const z = this.#linear(hn, head)
    const cap = spec.finalLogitSoftcap
    return softcap && cap !== null ? z.map((v) => Math.tanh(v / cap) * cap) : z
  }
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i
  return best
}

export function logSoftmax(z: Vec): Vec {
  let m = -Infinity
  for (const v of z) m = Math.max(m, v)
  const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0))
  return z.map((v) => v - lse)
}

/** ‖a − b‖∞ / ‖b‖∞. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0
  let den = 0
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!))
    den = Math.max(den, Math.abs(b[i]!))
  }
  return num / Math.max(den, 1e-30)
}
