/**
 * Device worker process: owns every ONNX Runtime session of one device. Started by the device
 * manager with child_process.fork (headless host, tests) or Electron's utilityProcess (the app);
 * speaks the protocol in ./protocol.ts over whichever parent channel exists.
 */
import { AppError } from '@shared/ipc/errors'
import {
  ENGINE_VERSION,
  generateOptionsFromJob,
  GroupCache,
  loadGroup,
  probeProviders,
  type LoadCacheResult,
  type LoadedGroup,
  type SessionTarget
} from '../engine'
import type { WorkerEvent, WorkerMemory, WorkerToMain } from './protocol'
import { createDispatcher, type WorkerHandlers } from './dispatch'
import { planPositions } from './plan'
import { collectGarbage } from '../platform/heap'
import { createLogger } from '../platform/logger'

const log = createLogger('worker')

interface ParentPort {
  postMessage(message: unknown): void
  on(event: 'message', listener: (e: { data: unknown }) => void): void
}

const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort

function post(message: WorkerToMain): void {
  if (parentPort) parentPort.postMessage(message)
  else if (process.send) process.send(message)
}

function emit(event: WorkerEvent): void {
  post({ type: 'event', event })
}

/**
 * The process's memory now; `collected` runs a full collection first. An unload measures with it
 * on both sides, so its figure is what releasing the group gave back, whenever V8 would otherwise
 * have collected the garbage of earlier loads and runs (a small load skips its own collection,
 * engine/loading.ts; docs/devices.md "Placement").
 */
function memory(collected = false): WorkerMemory {
  if (collected) collectGarbage()
  const m = process.memoryUsage()
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external }
}

let deviceId = process.env.TALKATIVE_WORKER_DEVICE ?? 'unknown'
let target: SessionTarget | null = null
let cache: GroupCache | null = null
const groups = new Map<string, LoadedGroup>()
const loading = new Map<string, Promise<LoadedGroup>>()
const tasks = new Map<string, { cancelled: boolean }>()

function group(groupId: string): LoadedGroup {
  const g = groups.get(groupId)
  if (!g)
    throw new AppError('not_found', `group ${groupId} is not loaded on ${deviceId}`, {
      field: 'groupId'
    })
  return g
}

const handlers: WorkerHandlers = {
  async init(req) {
    deviceId = req.deviceId
    target = req.target
    cache = req.cache
      ? new GroupCache({ hostBytes: req.cache.hostBytes, optimizedDir: req.cache.optimizedDir })
      : null
    // Start the provider here, in the process that will use it: a provider that cannot start is
    // this device's error (never a silent fallback), and its one-time setup (thread pools, a CUDA
    // context) stays out of every group's measured memory.
    const [probe] = await probeProviders([target.provider])
    if (!probe?.available) {
      throw new AppError(
        'unavailable',
        `${deviceId}: ${target.provider} cannot start: ${probe?.error ?? 'unknown error'}`
      )
    }
    return { pid: process.pid, memory: memory(), engineVersion: ENGINE_VERSION }
  },

  async load(req) {
    if (!target) throw new AppError('internal', 'worker not initialised')
    const existing = groups.get(req.groupId)
    const before = memory().rssBytes
    const cacheBytesBefore = cache?.host.bytes
    const started = performance.now()
    let cacheResult: LoadCacheResult | undefined
    if (!existing) {
      let pendingLoad = loading.get(req.groupId)
      if (!pendingLoad) {
        pendingLoad = loadGroup(req.dir, target, {
          onStage: (stage, fraction) =>
            emit({ kind: 'stage', groupId: req.groupId, stage, fraction }),
          cache: cache ?? undefined,
          analysisRolesFirst: req.analysisRolesFirst === true,
          onCacheResult: (r) => (cacheResult = r)
        })
        loading.set(req.groupId, pendingLoad)
      }
      try {
        groups.set(req.groupId, await pendingLoad)
      } finally {
        loading.delete(req.groupId)
      }
    }
    const loaded = group(req.groupId)
    const s = loaded.summary
    return {
      summary: {
        groupId: s.groupId,
        contentHash: s.contentHash,
        estimatedBytes: s.estimatedBytes,
        weightBytes: s.weightBytes
      },
      loadMs: performance.now() - started,
      rssBeforeBytes: before,
      rssAfterBytes: memory().rssBytes,
      ...(cacheResult ? { cache: cacheResult } : {}),
      ...(cache ? { cacheBytesBefore, cacheBytesAfter: cache.host.bytes } : {})
    }
  },

  async unload(req) {
    const before = memory(true).rssBytes
    const cacheBytesBefore = cache?.host.bytes
    const g = groups.get(req.groupId)
    if (g) {
      groups.delete(req.groupId)
      await g.dispose()
    }
    return {
      rssBeforeBytes: before,
      rssAfterBytes: memory(true).rssBytes,
      wasLoaded: g !== undefined,
      ...(cache ? { cacheBytesBefore, cacheBytesAfter: cache.host.bytes } : {})
    }
  },

  async plan(req) {
    return planPositions(group(req.groupId), req.text, req.options)
  },

  async analyze(req) {
    const g = group(req.groupId)
    const task = { cancelled: false }
    tasks.set(req.taskId, task)
    try {
      let rowCount = 0
      const result = await g.analyze(
        {
          lensId: req.lensId,
          text: req.text,
          options: req.options,
          positionList: req.positionList
        },
        {
          onBatch: (rows, progress) => {
            rowCount += rows.length
            emit({ kind: 'rows', taskId: req.taskId, rows, progress })
          },
          onOptimiser: (progress) => emit({ kind: 'optimiser', taskId: req.taskId, progress }),
          isCancelled: () => task.cancelled
        }
      )
      return { metadata: result.metadata, rowCount }
    } finally {
      tasks.delete(req.taskId)
    }
  },

  async intervene(req) {
    const g = group(req.groupId)
    const task = { cancelled: false }
    tasks.set(req.taskId, task)
    try {
      const result = await g.intervene(
        {
          lensId: req.lensId,
          text: req.text,
          options: req.options,
          intervention: req.intervention
        },
        {
          onRows: (rows, progress) =>
            emit({ kind: 'interventions', taskId: req.taskId, rows, progress }),
          isCancelled: () => task.cancelled
        }
      )
      return { metadata: result.metadata, rowCount: result.rows.length }
    } finally {
      tasks.delete(req.taskId)
    }
  },

  async sweep(req) {
    const g = group(req.groupId)
    const task = { cancelled: false }
    tasks.set(req.taskId, task)
    try {
      const result = await g.sweep(
        { lensId: req.lensId, text: req.text, options: req.options, sweep: req.sweep },
        {
          onBatch: (rows, progress) => emit({ kind: 'rows', taskId: req.taskId, rows, progress }),
          onOptimiser: (progress) => emit({ kind: 'optimiser', taskId: req.taskId, progress }),
          isCancelled: () => task.cancelled
        }
      )
      return { metadata: result.metadata, rowCount: result.rows.length }
    } finally {
      tasks.delete(req.taskId)
    }
  },

  async generate(req) {
    const g = group(req.groupId)
    const task = { cancelled: false }
    tasks.set(req.taskId, task)
    try {
      // One graph run: not interruptible, so a cancel takes effect when it returns.
      const out = await g.generate({
        lensId: req.lensId,
        text: req.text,
        options: generateOptionsFromJob(req.options ?? {})
      })
      // Full texts (prompt with specials + continuation): what generate-analyze analyses; the
      // replies are what a chat shows, cut by the engine that knows where the prompt ended.
      return {
        completions: out.completions.map((c) => c.fullText),
        replies: out.completions.map((c) => c.reply)
      }
    } finally {
      tasks.delete(req.taskId)
    }
  },

  async cancel(req) {
    const task = tasks.get(req.taskId)
    if (task) task.cancelled = true
    return { found: task !== undefined }
  },

  async ping() {
    const hostCache = cache ? cache.host.stats() : undefined
    return {
      memory: memory(),
      groups: [...groups.keys()],
      tasks: [...tasks.keys()],
      ...(hostCache ? { hostCache } : {})
    }
  },

  async shutdown() {
    // Nothing will be reloaded in this process: unloads must not fill the cache on the way out.
    cache?.host.setBudget(0)
    for (const [id, g] of groups) {
      groups.delete(id)
      await g.dispose().catch(log.failed(`releasing ${id} at shutdown`))
    }
    setImmediate(() => process.exit(0))
    return {}
  }
}

// The worker-message entry point: every message from main goes through this one boundary.
const receive = createDispatcher({ handlers, post, log, deviceId: () => deviceId })

if (parentPort) {
  parentPort.on('message', (e) => void receive(e.data))
} else if (process.send) {
  process.on('message', (m) => void receive(m))
  // The manager went away: nothing will ever ask for these sessions again.
  process.on('disconnect', () => process.exit(0))
} else {
  console.error('talkative worker: start me through the device manager (no parent channel found)')
  process.exit(2)
}

post({ type: 'hello', pid: process.pid })
