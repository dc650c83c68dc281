/**
 * Typed calls into a base (or donor) model session: one method per role of the graph contract
 * in docs/bundle-format.md. Inputs a role does not read get tiny placeholders.
 *
 * A group loaded for analyses may open its base models with the analysis roles only
 * (graph/roleSubset.ts): the first run of another role then releases that session, opens the whole
 * graph and keeps it from then on, as does the first decode whose rows are not in runs of K per
 * position (the analysis graph has no step loop for them). The session is released before the
 * whole graph is opened, so a model's weights are never held by two sessions at once.
 */
import { Session, Tensor, type Feeds } from './ort'
import { ANALYSIS_ROLES, decodeRowsInRuns } from './graph/roleSubset'
import { ROLE, baseInputPlaceholders } from './graph/transformer'

function i64(values: ArrayLike<number>, dims: number[]): Tensor {
  // A loop, not a per-call closure (engine/explain.ts, "Hot loops").
  const out = new BigInt64Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]!)
  return new Tensor('int64', out, dims)
}

function f32(values: Float32Array, dims: number[]): Tensor {
  return new Tensor('float32', values, dims)
}

/**
 * Most rows per KL graph run (see `kl`). Each run repeats the unmodified pass over the whole text,
 * so a batch's rows (16 positions at the CPU default of 256 rows and K = 16, 64 on a GPU) go
 * through in one run; more are split into runs of this many.
 */
export const KL_CHUNK_ROWS = 64

function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i)
}

/** How a model opened with the analysis roles only gets the whole graph (loading.ts). */
export interface AllRolesOpener {
  /** Opens the session with every role. */
  open(): Promise<Session>
  /** Opens the analysis roles' session again, after `open` failed. */
  reopen(): Promise<Session>
  /** Called once `old` is released and `next` serves instead (the group's session list). */
  replaced(old: Session, next: Session): void
}

export class BaseModel {
  readonly #placeholders: Feeds
  #session: Session
  /** Null once the session serves every role. */
  #opener: AllRolesOpener | null
  #switching: Promise<void> | null = null
  #inFlight = 0
  #drained: (() => void) | null = null

  /** `opener`: the session serves only the analysis roles (graph/roleSubset.ts). */
  constructor(
    session: Session,
    readonly hiddenSize: number,
    opener: AllRolesOpener | null = null
  ) {
    this.#session = session
    this.#opener = opener
    this.#placeholders = {}
    for (const p of Object.values(baseInputPlaceholders(hiddenSize))) {
      this.#placeholders[p.name] =
        p.type === 'int64'
          ? new Tensor('int64', p.data as BigInt64Array, p.dims)
          : new Tensor('float32', p.data as Float32Array, p.dims)
    }
  }

  /** The session now serving (another one after the first run of a role it lacked). */
  get session(): Session {
    return this.#session
  }

  /** Whether the session serves every role, not only the analysis ones. */
  get allRoles(): boolean {
    return this.#opener === null
  }

  /** `wholeGraph`: the run needs the whole graph even if `role` is an analysis role. */
  async #run(role: number, feeds: Feeds, wholeGraph = false): Promise<{ f: Tensor; i: Tensor }> {
    const out = await this.#runOn(role, { ...this.#placeholders, ...feeds }, undefined, wholeGraph)
    return { f: out.out_f!, i: out.out_i! }
  }

  /** One run of `role` with every input given in `feeds` (generation/run.ts builds its own). */
  runRole(
    role: number,
    feeds: Feeds,
    fetches?: readonly string[]
  ): Promise<Record<string, Tensor>> {
    return this.#runOn(role, feeds, fetches, false)
  }

  async #runOn(
    role: number,
    feeds: Feeds,
    fetches: readonly string[] | undefined,
    wholeGraph: boolean
  ): Promise<Record<string, Tensor>> {
    const needsWhole = wholeGraph || !ANALYSIS_ROLES.has(role)
    while (this.#switching || (this.#opener && needsWhole)) {
      const needsAll = this.#opener !== null && needsWhole
      this.#switching ??= this.#openAllRoles().finally(() => (this.#switching = null))
      // A failed switch is the failure of the runs that needed it; an analysis carries on.
      if (needsAll) await this.#switching
      else await this.#switching.catch(() => undefined)
    }
    // Counted before the next await, so a switch starting meanwhile waits for this run.
    const session = this.#session
    this.#inFlight++
    try {
      return await session.run({ ...feeds, role: i64([role], []) }, fetches)
    } finally {
      if (--this.#inFlight === 0) this.#drained?.()
    }
  }

  async #openAllRoles(): Promise<void> {
    const opener = this.#opener
    if (!opener) return
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve))
    this.#drained = null
    const old = this.#session
    await old.release()
    let next: Session
    try {
      next = await opener.open()
      this.#opener = null
    } catch (err) {
      // The model keeps serving analyses; the run that needed the whole graph fails.
      this.#session = await opener.reopen()
      opener.replaced(old, this.#session)
      throw err
    }
    this.#session = next
    opener.replaced(old, next)
  }

  /** Residual after block `layer` for every position: (S, d). */
  async activations(ids: number[], layer: number): Promise<Float32Array> {
    const { f } = await this.#run(ROLE.acts, {
      input_ids: i64(ids, [1, ids.length]),
      layer: i64([layer], [])
    })
    return f.data as Float32Array
  }

  /**
   * Whole-batch generation: (rows, T) sampled ids. `patch` holds `patchRows` positions' vectors
   * (patchRows, patchLayers, d); row r is patched with position `patchIndex[r]`'s.
   */
  async decode(args: {
    prefix: Float32Array
    prefixRows: number
    patch: Float32Array
    patchRows: number
    patchIndex: ArrayLike<number>
    rows: number
    patchLayers: number
    embedPos: number
    uniforms: Float32Array
    steps: number
    temperature: number
    /** Kept explanation prefixes: row r's first `steps` tokens are `ids[r·width…]`, not sampled. */
    forced?: { ids: Int32Array; width: number; steps: number }
  }): Promise<Int32Array> {
    const d = this.hiddenSize
    const forced = args.forced && args.forced.steps > 0 ? args.forced : null
    // The analysis graph's step loop takes rows in runs of K only (graph/roleSubset.ts).
    const inRuns = decodeRowsInRuns(args.patchIndex, args.patchRows, args.rows, args.steps)
    const { i } = await this.#run(
      ROLE.decode,
      {
        ...(forced
          ? {
              forced_ids: i64(forced.ids, [args.rows, forced.width]),
              forced_steps: i64([forced.steps], [])
            }
          : {}),
        prefix_embeds: f32(args.prefix, [args.prefixRows, d]),
        patch_vectors: f32(args.patch, [args.patchRows, args.patchLayers, d]),
        patch_index: i64(args.patchIndex, [args.rows]),
        embed_pos: i64([args.embedPos], []),
        uniforms: f32(args.uniforms, [args.rows, args.steps]),
        temperature: f32(Float32Array.from([args.temperature]), [])
      },
      !inRuns
    )
    return Int32Array.from(i.data as BigInt64Array, Number)
  }

  /** Encoder: residual after block `layer` at the last row of each input: (rows, d). */
  async encode(args: {
    prefix: Float32Array
    prefixRows: number
    ids: Int32Array
    rows: number
    idsPerRow: number
    suffix?: Float32Array
    lastAdd?: Float32Array
    layer: number
  }): Promise<Float32Array> {
    const d = this.hiddenSize
    const suffix = args.suffix ?? new Float32Array(0)
    // The encode role reads the last of the rows after the prefix (docs/bundle-format.md).
    if (args.idsPerRow + suffix.length / d < 1) {
      throw new Error('encode: each row needs at least one id or suffix row after the prefix')
    }
    const { f } = await this.#run(ROLE.encode, {
      prefix_embeds: f32(args.prefix, [args.prefixRows, d]),
      ids: i64(args.ids, [args.rows, args.idsPerRow]),
      suffix_embeds: f32(suffix, [suffix.length / d, d]),
      last_add: f32(args.lastAdd ?? new Float32Array(d), [d]),
      layer: i64([args.layer], [])
    })
    return f.data as Float32Array
  }

  /**
   * KL(P‖Q) per row, in runs of at most KL_CHUNK_ROWS rows, none padded. A row's value must not
   * depend on which rows share its run (batches and devices split positions differently): the
   * unmodified pass covers the whole text in every run and every other step is row by row, so runs
   * of any size agree to float32 rounding. A run of a single row goes through as two copies of it:
   * one row takes another GEMM kernel (a matrix-vector product), which rounds differently.
   */
  async kl(
    ids: number[],
    positions: number[],
    vectors: Float32Array,
    layer: number
  ): Promise<Float32Array> {
    const d = this.hiddenSize
    const out = new Float32Array(positions.length)
    for (let start = 0; start < positions.length; start += KL_CHUNK_ROWS) {
      const end = Math.min(start + KL_CHUNK_ROWS, positions.length)
      // A lone row is sent twice (see above); any other run as it is.
      const rows = end - start === 1 ? [start, start] : range(start, end)
      const vec = new Float32Array(rows.length * d)
      // Loops, not per-call closures (engine/explain.ts, "Hot loops").
      const rowPositions = new Array<number>(rows.length)
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!
        vec.set(vectors.subarray(r * d, (r + 1) * d), i * d)
        rowPositions[i] = positions[r]!
      }
      const { f } = await this.#run(ROLE.kl, {
        input_ids: i64(ids, [1, ids.length]),
        positions: i64(rowPositions, [rows.length]),
        vectors: f32(vec, [rows.length, d]),
        layer: i64([layer], [])
      })
      out.set((f.data as Float32Array).subarray(0, end - start), start)
    }
    return out
  }

  /**
   * Next-token log-probabilities after the last of `ids` from `rows` runs, run r with the residual
   * after block `layer` at row `at` replaced by vectors[r]: (rows, V). `at` ≤ the last row.
   */
  async patchedLogProbs(
    ids: number[],
    layer: number,
    at: number,
    vectors: Float32Array,
    rows: number
  ): Promise<Float32Array> {
    const { f } = await this.#run(ROLE.patch, {
      input_ids: i64(ids, [1, ids.length]),
      layer: i64([layer], []),
      patch_at: i64([at], []),
      vectors: f32(vectors, [rows, this.hiddenSize])
    })
    return f.data as Float32Array
  }

  /**
   * Greedy continuations of the prompt `ids`, continuation r with the residual after block `layer`
   * at prompt row `at` replaced by vectors[r]: (steps, rows) ids, fewer steps when every row drew
   * a stop id. `logitBias` (V) is added to every step's logits (−1e9 suppresses an id).
   */
  async patchedContinuations(args: {
    ids: number[]
    layer: number
    at: number
    vectors: Float32Array
    rows: number
    steps: number
    logitBias: Float32Array
    stopIds?: number[]
  }): Promise<{ ids: Int32Array; steps: number }> {
    const stop = args.stopIds ?? []
    const { i } = await this.#run(ROLE.patchGenerate, {
      input_ids: i64(args.ids, [1, args.ids.length]),
      layer: i64([args.layer], []),
      patch_at: i64([args.at], []),
      vectors: f32(args.vectors, [args.rows, this.hiddenSize]),
      uniforms: f32(new Float32Array(args.rows * args.steps), [args.rows, args.steps]),
      temperature: f32(Float32Array.from([0]), []),
      logit_bias: f32(args.logitBias, [args.logitBias.length]),
      stop_ids: i64(stop, [stop.length])
    })
    return { ids: Int32Array.from(i.data as BigInt64Array, Number), steps: i.dims[0] ?? 0 }
  }

  /** Top-k token ids of the final-normed, unembedded vectors: (rows, k). */
  async logitLens(vectors: Float32Array, rows: number, k: number): Promise<Int32Array> {
    const { i } = await this.#run(ROLE.logitLens, {
      vectors: f32(vectors, [rows, this.hiddenSize]),
      top_k: i64([k], [])
    })
    return Int32Array.from(i.data as BigInt64Array, Number)
  }
}
