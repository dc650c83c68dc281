/**
 * Loading a group: its models opened as sessions through the reload cache (host memory, then the
 * optimized graphs on disk, then the bundle's own files), and, when the group is disposed, its
 * parts handed back to the host cache so that a reload skips what it can. No analysis here.
 */
import { promises as fs, statSync } from 'node:fs'
import path from 'node:path'
import { AppError } from '@shared/ipc/errors'
import { BaseModel, type AllRolesOpener } from './baseModel'
import { validateBundle, type ValidatedBundle } from './bundle/open'
import type { GroupCache } from './cache'
import type { CachedGroup } from './cache/hostCache'
import { fingerprintFolder } from './cache/fingerprint'
import { OPTIMIZED_STORE_MAX_GROUP_BYTES } from './cache/optimizedStore'
import { analysisRolesModel } from './graph/roleSubset'
import { ortWords, Session, type SessionBuild } from './ort'
import { TextTokenizer } from './tokenizer'
import type { LoadCacheResult, SessionTarget } from './types'
import { collectGarbage, collectsAfterParsing } from '../platform/heap'
import { createLogger } from '../platform/logger'

const log = createLogger('engine')

export interface LoadHooks {
  onStage?: (stage: string, fraction: number) => void
  /**
   * Reuse and feed the reload cache (engine/cache): a group unloaded earlier comes back from host
   * memory, and models open from their saved optimized graphs. Results are identical either way.
   */
  cache?: GroupCache
  /** How this load used the cache. */
  onCacheResult?: (result: LoadCacheResult) => void
  /**
   * Open base models with the analysis roles only, and the whole graph on the first generate or
   * patch run (graph/roleSubset.ts): about half the session creation for a load whose jobs are
   * analyses (a replica for a burst of them), one more creation for a group that then generates.
   * Results are identical either way.
   */
  analysisRolesFirst?: boolean
}

/** Which of a base graph's roles a session serves (graph/roleSubset.ts); lens models are 'all'. */
type Roles = 'all' | 'analysis'

/**
 * A model's name in the host cache and the optimized-graph store: its file, and which roles. The
 * analysis graph's suffix names its rewrite: '#analysis2' also leaves out the decode's step loop
 * for rows not in runs (graph/roleSubset.ts), so a graph stored by the earlier rewrite is not
 * taken for it.
 */
function rolesKey(file: string, roles: Roles): string {
  return roles === 'all' ? file : `${file}#analysis2`
}

/**
 * Graphs whose protobuf is larger than this (weights inside it rather than in external data) are
 * not rewritten for the analysis roles: the rewrite would hold a second copy while it encodes.
 */
const ROLE_SUBSET_MAX_GRAPH_BYTES = 64 * 1024 ** 2

/**
 * `file`'s graph with only the analysis roles, or null when that is not possible. The bytes it
 * decoded in JavaScript are added to `ctx.parsedBytes`.
 */
async function analysisRolesGraph(file: string, ctx: OpenContext): Promise<Uint8Array | null> {
  try {
    const size = (await fs.stat(file)).size
    if (size > ROLE_SUBSET_MAX_GRAPH_BYTES) return null
    ctx.parsedBytes += size
    return analysisRolesModel(new Uint8Array(await fs.readFile(file)))
  } catch (err) {
    log.debug(`${file}: opened with every role`, err)
    return null
  }
}

/**
 * The files' sizes together; one that cannot be read counts as large (the safe side). Synchronous
 * stats: a replica's load takes this on every load, and a thread-pool round trip costs ten times
 * the call (platform/readWholeFile.ts).
 */
function fileBytes(files: string[]): number {
  let bytes = 0
  for (const f of files) {
    try {
      bytes += statSync(f).size
    } catch {
      return Number.POSITIVE_INFINITY
    }
  }
  return bytes
}

async function createSession(
  model: string | Uint8Array,
  file: string,
  target: SessionTarget,
  rel: string,
  build: SessionBuild = {}
): Promise<Session> {
  try {
    return await Session.create(model, target, { ...build, file: rel })
  } catch (err) {
    const first = ortWords(err instanceof Error ? err.message : String(err))
    // ONNX Runtime quotes the absolute path it was given; callers see the file inside the bundle.
    const msg = first
      .split(file)
      .join(rel)
      .split(`${path.dirname(file)}${path.sep}`)
      .join('')
    if (target.provider !== 'cpu' && /provider|adapter|library|CUDA|WebGPU/i.test(msg)) {
      throw new AppError('unavailable', `${target.provider} cannot run ${rel}: ${msg}`, {
        file: rel
      })
    }
    throw new AppError('bundle_invalid', `${rel}: ONNX Runtime rejected the model: ${msg}`, {
      file: rel
    })
  }
}

function relTo(bundle: ValidatedBundle, file: string): string {
  return file.startsWith(bundle.dir) ? file.slice(bundle.dir.length + 1) : file
}

/** What opening a group's models may reuse (engine/cache) and what it did. */
export interface OpenContext {
  cache: GroupCache | null
  cached: CachedGroup | null
  fingerprint: string
  result: LoadCacheResult
  /**
   * JSON and protobuf this load decoded in JavaScript (the tokenizer, a validation, a graph cut
   * down): its garbage decides the collection at the load's end (platform/heap.ts).
   */
  parsedBytes: number
}

/**
 * Opens one model: from its optimized graph when the host cache or the disk store has it (no graph
 * optimisation), else from the bundle file, saving the optimized graph for the next load. With
 * `roles` 'analysis', the graph with the analysis roles only, or null when the file's graph cannot
 * be cut down that way.
 */
async function openModel(
  bundle: ValidatedBundle,
  target: SessionTarget,
  ctx: OpenContext,
  file: string,
  roles: Roles
): Promise<Session | null> {
  const rel = relTo(bundle, file)
  const inMemory = ctx.cached?.models.get(rolesKey(file, roles))
  if (inMemory) {
    try {
      const s = await Session.create(inMemory, target, { preOptimized: true, file: rel })
      ctx.result.preOptimizedSessions++
      return s
    } catch {
      // Fall through to the disk store and the file: the cached graph is only a shortcut.
    }
  }
  const store =
    bundle.summary.weightBytes <= OPTIMIZED_STORE_MAX_GROUP_BYTES ? ctx.cache?.optimized : undefined
  const stored = store
    ? await store
        .open(bundle.summary.contentHash, rolesKey(rel, roles), target)
        .catch((err: unknown) => {
          log.debug(`the optimized-graph store could not open ${rel}`, err)
          return null
        })
    : null
  if (stored?.kind === 'hit') {
    try {
      const s = await Session.create(stored.bytes, target, { preOptimized: true, file: rel })
      ctx.result.preOptimizedSessions++
      return s
    } catch {
      await store!.discard(stored.file)
    }
  }
  // The bundle's own graph, or that graph rewritten for the analysis roles (read from memory, its
  // external data from the bundle's folder).
  const graph = roles === 'all' ? file : await analysisRolesGraph(file, ctx)
  if (!graph) {
    if (stored?.kind === 'miss') await stored.abandon()
    return null
  }
  const build: SessionBuild = { externalDataFolder: path.dirname(file) }
  if (stored?.kind === 'miss') {
    let s: Session
    try {
      s = await createSession(graph, file, target, rel, {
        ...build,
        saveOptimizedTo: stored.saveTo
      })
    } catch {
      // Some providers cannot save their optimized graph; the load itself must not fail for it.
      await stored.abandon()
      return createSession(graph, file, target, rel, build)
    }
    await stored.commit().then(
      () => void ctx.result.savedOptimized++,
      () => stored.abandon()
    )
    return s
  }
  return createSession(graph, file, target, rel, build)
}

/** Everything a loaded group is made of, before any lens is used. */
export interface GroupParts {
  bundle: ValidatedBundle
  target: SessionTarget
  tokenizer: TextTokenizer
  /** `base` and every donor by id. */
  models: Map<string, BaseModel>
  /** Every session created so far (lens sessions are added as lenses load). */
  sessions: Session[]
  /** Opens one more of the group's models the same way (for lens parts). */
  openModel(file: string): Promise<Session>
  /** Lens tensors read so far (kept for the host cache); starts with the cached ones. */
  tensors: Map<string, Float32Array>
  /**
   * For the host cache at dispose: the cache, the folder fingerprint, the file of each session and
   * which of its roles it serves.
   */
  open: { ctx: OpenContext; modelFiles: Map<Session, { file: string; roles: Roles }> }
}

/** Opens a group's bundle and its base (and donor) models, through the cache when given one. */
export async function openGroupParts(
  dir: string,
  target: SessionTarget,
  hooks: LoadHooks = {}
): Promise<GroupParts> {
  const cache = hooks.cache ?? null
  const cached = cache ? await cache.host.take(path.resolve(dir), target) : null
  const ctx: OpenContext = {
    cache,
    cached,
    fingerprint: cached?.fingerprint ?? '',
    result: { hostHit: cached !== null, preOptimizedSessions: 0, savedOptimized: 0 },
    parsedBytes: 0
  }
  let bundle: ValidatedBundle
  let tokenizer: TextTokenizer
  if (cached) {
    hooks.onStage?.('reusing cached bundle', 0)
    bundle = cached.bundle
    tokenizer = cached.tokenizer
  } else {
    // Taken before validation: a file changed meanwhile makes the cache entry stale, never wrong.
    if (cache)
      ctx.fingerprint = await fingerprintFolder(dir).catch((err: unknown) => {
        // Without a fingerprint the group is simply not kept for a reload.
        log.debug(`no fingerprint of ${dir}`, err)
        return ''
      })
    const folder = path.resolve(dir)
    const known = ctx.fingerprint ? cache?.validated.get(folder, ctx.fingerprint) : null
    if (known) {
      hooks.onStage?.('reusing validated bundle', 0)
      bundle = known
    } else {
      hooks.onStage?.('validating bundle', 0)
      bundle = await validateBundle(dir)
      // Validation decodes the manifest, the tokenizer and every graph.
      ctx.parsedBytes += fileBytes([bundle.base.file, ...bundle.donors.map((d) => d.file)])
      if (cache && ctx.fingerprint) cache.validated.put(folder, ctx.fingerprint, bundle)
    }
    tokenizer = await TextTokenizer.load(
      bundle.tokenizerFile,
      bundle.tokenizerConfigFile,
      bundle.manifest.conventions.bosTokenId,
      bundle.manifest.base.vocabSize
    )
    ctx.parsedBytes += fileBytes([bundle.tokenizerFile])
  }
  const sessions: Session[] = []
  const modelFiles = new Map<Session, { file: string; roles: Roles }>()
  const open = async (file: string, roles: Roles): Promise<Session | null> => {
    const s = await openModel(bundle, target, ctx, file, roles)
    if (s) modelFiles.set(s, { file, roles })
    return s
  }
  const openWhole = async (file: string): Promise<Session> => (await open(file, 'all'))!
  const baseModel = async (file: string, hiddenSize: number): Promise<BaseModel> => {
    // Even with the whole graph in host memory: the analysis graph is cut down and saved once per
    // bundle, and opens in about half the time from then on (docs/benchmarks.md, "Devices").
    const analysis = hooks.analysisRolesFirst ? await open(file, 'analysis') : null
    if (!analysis) {
      const s = await openWhole(file)
      sessions.push(s)
      return new BaseModel(s, hiddenSize)
    }
    sessions.push(analysis)
    // A whole graph the host cache gave back is not kept alongside (its weights would be a second
    // copy); the switch opens it from the store or the file.
    ctx.cached?.models.delete(file)
    const opener: AllRolesOpener = {
      open: () => openWhole(file),
      reopen: async () => (await open(file, 'analysis')) ?? openWhole(file),
      replaced: (old, next) => {
        sessions.splice(sessions.indexOf(old), 1, next)
        modelFiles.delete(old)
        // The analysis graph's bytes go with its session (never a second copy of the weights).
        ctx.cached?.models.delete(rolesKey(file, 'analysis'))
      }
    }
    return new BaseModel(analysis, hiddenSize, opener)
  }
  try {
    hooks.onStage?.('loading base model', 0.2)
    const models = new Map<string, BaseModel>([
      ['base', await baseModel(bundle.base.file, bundle.manifest.base.hiddenSize)]
    ])
    for (const [i, donor] of bundle.donors.entries()) {
      hooks.onStage?.(
        `loading donor ${donor.ref.id}`,
        0.2 + (0.6 * (i + 1)) / (bundle.donors.length + 1)
      )
      models.set(donor.ref.id, await baseModel(donor.file, donor.ref.hiddenSize))
    }
    // The parsed tokenizer.json is garbage now, and the analysis that follows allocates too little
    // on the JavaScript heap for V8 to collect it before the first batch's peak (platform/heap.ts).
    // Little garbage is not worth the blocking collection (a replica's load waits for it).
    if (collectsAfterParsing(ctx.parsedBytes)) collectGarbage()
    hooks.onStage?.('ready', 1)
    hooks.onCacheResult?.({ ...ctx.result })
    return {
      bundle,
      target,
      tokenizer,
      models,
      sessions,
      openModel: openWhole,
      tensors: new Map(ctx.cached?.tensors ?? []),
      open: { ctx, modelFiles }
    }
  } catch (err) {
    await Promise.all(sessions.map((s) => s.release()))
    throw err
  }
}

/** Hands a disposed group's parts to the host cache, so that a reload skips what it can. */
export async function keepForReload(parts: GroupParts): Promise<void> {
  const { bundle, target } = parts
  const { ctx, modelFiles } = parts.open
  const host = ctx.cache?.host
  if (!host || host.budgetBytes === 0 || !ctx.fingerprint) return
  const models = new Map<string, Uint8Array>()
  for (const [session, { file, roles }] of modelFiles) {
    let bytes = session.optimizedBytes
    if (!bytes && ctx.cache?.optimized) {
      const stored = await ctx.cache.optimized.open(
        bundle.summary.contentHash,
        rolesKey(relTo(bundle, file), roles),
        target
      )
      if (stored.kind === 'hit') bytes = stored.bytes
      else await stored.abandon()
    }
    if (bytes) models.set(rolesKey(file, roles), bytes)
  }
  const tokenizerBytes = await fs
    .stat(bundle.tokenizerFile)
    .then((st) => st.size)
    .catch(() => 0)
  host.put({
    dir: bundle.dir,
    target,
    fingerprint: ctx.fingerprint,
    bundle,
    tokenizer: parts.tokenizer,
    models,
    tensors: parts.tensors,
    tokenizerBytes
  })
}
