/**
 * Base models opened with the analysis roles first (`analysisRolesFirst`: graph/roleSubset.ts,
 * baseModel.ts) on the real
 * demo and a synthetic group with a donor: analyses are identical to a group opened whole; the
 * first generate or patch run switches to the whole graph, releasing the first session; a failed
 * switch leaves analyses working; dispose releases whatever is open; the host cache and the
 * optimized-graph store keep the roles that were open.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { onnx } from 'onnx-proto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { BaseModel, type AllRolesOpener } from './baseModel'
import { GroupCache, type LoadCacheResult } from './cache'
import { analysisRolesModel, decodeRowsInRuns } from './graph/roleSubset'
import { ensureDemoBundle, generateSyntheticBundle, loadGroup, type LoadedGroup } from './index'
import { openGroupParts } from './loading'
import { Session, type SessionTarget } from './ort'

const TARGET: SessionTarget = { provider: 'cpu', threads: 1 }
const TEXT = 'The cat sat on the red chair. A lion ate cheese.'

let scratch: string
let demo: string
let synthetic: string

function nodeCount(g: onnx.IGraphProto): number {
  let n = 0
  for (const node of g.node ?? []) {
    n++
    for (const a of node.attribute ?? []) if (a.g) n += nodeCount(a.g)
  }
  return n
}

/** The subgraphs of `g`'s nodes, at any depth. */
function subgraphs(g: onnx.IGraphProto): onnx.IGraphProto[] {
  return (g.node ?? []).flatMap((n) =>
    (n.attribute ?? []).flatMap((a) => (a.g ? [a.g, ...subgraphs(a.g)] : []))
  )
}

function named(g: onnx.IGraphProto, name: string): onnx.IGraphProto[] {
  return subgraphs(g).filter((s) => s.name === name)
}

async function analyse(
  group: LoadedGroup,
  text = TEXT,
  options: Record<string, unknown> = { bestOfK: 4 }
): Promise<string> {
  const out: unknown[] = []
  for (const l of group.summary.lenses) {
    const r = await group.analyze({ lensId: l.id, text, options: { ...options, seed: 3 } })
    out.push(r.rows)
  }
  return JSON.stringify(out)
}

async function generate(group: LoadedGroup, lensId: string, text = TEXT): Promise<string> {
  const r = await group.generate({
    lensId,
    text,
    options: { temperature: 0.7, seed: 4, n: 2, maxNewTokens: 6 }
  })
  return JSON.stringify(r.completions)
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'talkative-roles-'))
  demo = await ensureDemoBundle()
  synthetic = path.join(scratch, 'synthetic')
  await generateSyntheticBundle(synthetic, {
    hiddenSize: 32,
    layers: 3,
    heads: 4,
    vocabSize: 48,
    explanationTokens: 4,
    patchLayers: 1,
    maxPositions: 64,
    donor: true,
    externalData: true
  })
})

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

describe('the analysis roles graph', () => {
  it('leaves out the generate and patch branches and keeps every other node', async () => {
    const bytes = new Uint8Array(await readFile(path.join(demo, 'demo-base.onnx')))
    const whole = onnx.ModelProto.decode(bytes)
    const cut = onnx.ModelProto.decode(analysisRolesModel(bytes)!)
    // Walk both role dispatches side by side: the three left-out branches became constants,
    // every other branch (and the dispatch itself) kept its node count.
    let wholeIf: onnx.IGraphProto | null | undefined = whole.graph
    let cutIf: onnx.IGraphProto | null | undefined = cut.graph
    let emptied = 0
    let removed = 0
    let withoutGathered = 0
    while (wholeIf && cutIf) {
      const w = wholeIf.node?.find((n) => n.opType === 'If')
      const c = cutIf.node?.find((n) => n.opType === 'If')
      if (!w || !c) break
      const wThen = w.attribute!.find((a) => a.name === 'then_branch')!.g!
      const cThen = c.attribute!.find((a) => a.name === 'then_branch')!.g!
      if (cThen.name === 'role_not_loaded') {
        emptied++
        removed += nodeCount(wThen) - nodeCount(cThen)
        expect(cThen.node!.every((n) => n.opType === 'Constant')).toBe(true)
      } else {
        // The decode role's step loop for rows not in runs is left out (a constant for each of
        // its outputs); every other node of a kept role is there.
        const gathered = named(wThen, 'decode_steps_gathered')
        const stub = named(cThen, 'decode_steps_gathered_not_loaded')
        expect(named(cThen, 'decode_steps_gathered')).toEqual([])
        expect(stub.length).toBe(gathered.length)
        if (gathered.length > 0) {
          withoutGathered++
          expect(stub[0]!.node!.map((n) => n.opType)).toEqual(['Constant', 'Constant'])
          expect(stub[0]!.output).toEqual(gathered[0]!.output)
          const cut = nodeCount(gathered[0]!) - nodeCount(stub[0]!)
          removed += cut
          expect(nodeCount(cThen)).toBe(nodeCount(wThen) - cut)
          expect(named(cThen, 'decode_steps_by_position').map(nodeCount)).toEqual(
            named(wThen, 'decode_steps_by_position').map(nodeCount)
          )
        } else {
          expect(nodeCount(cThen)).toBe(nodeCount(wThen))
        }
      }
      wholeIf = w.attribute!.find((a) => a.name === 'else_branch')!.g
      cutIf = c.attribute!.find((a) => a.name === 'else_branch')!.g
    }
    expect(emptied).toBe(3)
    expect(withoutGathered).toBe(1)
    expect(subgraphs(cut.graph!).some((g) => g.name === 'decode_steps_gathered')).toBe(false)
    expect(nodeCount(cut.graph!)).toBe(nodeCount(whole.graph!) - removed)
    // What the cut saves at creation: the demo's generate and patch roles are about a third of it
    // (a little less since the encode role holds a prefix block and a rows block per layer and the
    // decode draws its last token after its step loop: 1,446 of 4,397 nodes at graph 10).
    expect(removed).toBeGreaterThan(0.3 * nodeCount(whole.graph!))
    expect(cut.graph!.initializer!.length).toBe(whole.graph!.initializer!.length)
    expect(cut.graph!.input).toEqual(whole.graph!.input)
  })

  it('is null for a graph without the role dispatch (a lens model, garbage)', async () => {
    const lensDir = path.join(demo, 'lenses', (await readdir(path.join(demo, 'lenses')))[0]!)
    const lensFile = (await readdir(lensDir)).find((f) => f.endsWith('.onnx'))!
    expect(analysisRolesModel(new Uint8Array(await readFile(path.join(lensDir, lensFile))))).toBe(
      null
    )
    expect(analysisRolesModel(Uint8Array.from([1, 2, 3, 250, 251]))).toBe(null)
  })
})

/** Row layouts of a decode over 3 positions, and whether their rows come in runs per position. */
const LAYOUTS: { name: string; patchRows: number; index: number[]; inRuns: boolean }[] = [
  { name: 'runs of 4', patchRows: 3, index: [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], inRuns: true },
  { name: 'one row each', patchRows: 3, index: [0, 1, 2], inRuns: true },
  { name: 'interleaved', patchRows: 3, index: [0, 1, 2, 0, 1, 2], inRuns: false },
  { name: 'runs reversed', patchRows: 3, index: [2, 2, 1, 1, 0, 0], inRuns: false },
  // The optimiser regenerating some targets: rows of targets 0 and 2 against all 3 positions.
  { name: 'some positions', patchRows: 3, index: [0, 0, 2, 2], inRuns: false },
  { name: 'runs of unequal length', patchRows: 3, index: [0, 0, 1, 2, 2, 2], inRuns: false },
  { name: 'fewer rows than positions', patchRows: 3, index: [0, 1], inRuns: false }
]

function decodeArgs(d: number, patchRows: number, index: number[], steps = 4) {
  const rows = index.length
  return {
    prefix: new Float32Array(3 * d).map((_, i) => Math.sin(i * 0.37)),
    prefixRows: 3,
    patch: new Float32Array(patchRows * d).map((_, i) => Math.cos(i * 0.73) * 2),
    patchRows,
    patchIndex: index,
    rows,
    patchLayers: 1,
    embedPos: 2,
    uniforms: new Float32Array(rows * steps).map((_, i) => ((i * 0.6180339) % 1) * 0.998 + 1e-3),
    steps,
    temperature: 1
  }
}

describe('decodeRowsInRuns', () => {
  it.each(LAYOUTS)('$name: $inRuns', ({ patchRows, index, inRuns }) => {
    expect(decodeRowsInRuns(index, patchRows, index.length, 4)).toBe(inRuns)
    // One step never reaches the step loop: any layout runs on the analysis graph.
    expect(decodeRowsInRuns(index, patchRows, index.length, 1)).toBe(true)
  })

  it("is the graph's test: the analysis graph decodes exactly the layouts it passes", async () => {
    const bytes = new Uint8Array(await readFile(path.join(demo, 'demo-base.onnx')))
    const whole = await Session.create(bytes, TARGET)
    const cut = await Session.create(analysisRolesModel(bytes)!, TARGET)
    try {
      const manifest = JSON.parse(await readFile(path.join(demo, 'manifest.json'), 'utf8')) as {
        base: { hiddenSize: number }
      }
      const d = manifest.base.hiddenSize
      // Without an opener the model runs every role on the session it was given.
      const onWhole = new BaseModel(whole, d)
      const onCut = new BaseModel(cut, d)
      for (const { patchRows, index, inRuns } of LAYOUTS) {
        const args = decodeArgs(d, patchRows, index)
        const want = Array.from(await onWhole.decode(args))
        expect(want.length).toBe(index.length * 4)
        const got = await onCut.decode(args).then(
          (ids) => Array.from(ids),
          () => null
        )
        // In runs: the same ids. Otherwise the left-out loop's empty outputs fail the run (ORT
        // logs a MatMul dimension mismatch) or give no ids, never the ids of the whole graph.
        if (inRuns) expect(got).toEqual(want)
        else expect(got).not.toEqual(want)
      }
    } finally {
      await Promise.all([whole.release(), cut.release()])
    }
  })
})

describe('the gathered step loop is left out only from the If transformer.ts writes', () => {
  it.each([
    ['its rows-in-runs branch renamed', (n: onnx.INodeProto) => (thenOf(n).name = 'another_loop')],
    [
      'its condition not an And',
      (n: onnx.INodeProto, g: onnx.IGraphProto[]) => {
        const producer = g.flatMap((s) => s.node ?? []).find((p) => p.output?.[0] === n.input![0])!
        producer.opType = 'Or'
      }
    ],
    [
      'an output more in one branch',
      (n: onnx.INodeProto) => thenOf(n).output!.push(thenOf(n).output![0]!)
    ]
  ] as const)('%s: the decode role is kept whole', async (_, change) => {
    const bytes = new Uint8Array(await readFile(path.join(demo, 'demo-base.onnx')))
    const model = onnx.ModelProto.decode(bytes)
    const all = [model.graph!, ...subgraphs(model.graph!)]
    const steps = all
      .flatMap((g) => g.node ?? [])
      .find((n) => n.opType === 'If' && thenOf(n).name === 'decode_steps_by_position')!
    change(steps, all)
    const cut = onnx.ModelProto.decode(analysisRolesModel(onnx.ModelProto.encode(model).finish())!)
    expect(named(cut.graph!, 'decode_steps_gathered').length).toBe(1)
    expect(named(cut.graph!, 'role_not_loaded').length).toBe(3)
  })
})

function thenOf(n: onnx.INodeProto): onnx.IGraphProto {
  return n.attribute!.find((a) => a.name === 'then_branch')!.g!
}

describe('a decode whose rows are not in runs, on a group opened with the analysis roles first', () => {
  it('switches to the whole graph first and draws the ids of a group opened whole', async () => {
    const before = Session.liveCount
    const whole = await openGroupParts(demo, TARGET)
    const first = await openGroupParts(demo, TARGET, { analysisRolesFirst: true })
    try {
      const w = whole.models.get('base')!
      const f = first.models.get('base')!
      const d = f.hiddenSize
      const runs = decodeArgs(d, 3, LAYOUTS[0]!.index)
      expect(Array.from(await f.decode(runs))).toEqual(Array.from(await w.decode(runs)))
      expect(f.allRoles).toBe(false)
      const analysisSession = f.session
      for (const layout of LAYOUTS.filter((l) => !l.inRuns)) {
        const args = decodeArgs(d, layout.patchRows, layout.index)
        expect(Array.from(await f.decode(args))).toEqual(Array.from(await w.decode(args)))
        expect(f.allRoles).toBe(true)
      }
      expect(analysisSession.released).toBe(true)
      expect(Array.from(await f.decode(runs))).toEqual(Array.from(await w.decode(runs)))
    } finally {
      await Promise.all([...whole.sessions, ...first.sessions].map((s) => s.release()))
    }
    expect(Session.liveCount).toBe(before)
  })

  it("the optimiser's analyses (regenerating some targets) are those of a group opened whole", async () => {
    const options = { kl: false, optimise: { samplesPerIteration: 4 } }
    const want = await (async () => {
      const whole = await loadGroup(demo, TARGET)
      try {
        return await analyse(whole, TEXT, options)
      } finally {
        await whole.dispose()
      }
    })()
    // Which layouts the analysis asked for: at least one not in runs, or this shows nothing.
    const inRuns: boolean[] = []
    const decode = BaseModel.prototype.decode
    const spy = vi.spyOn(BaseModel.prototype, 'decode').mockImplementation(function (
      this: BaseModel,
      args
    ) {
      inRuns.push(decodeRowsInRuns(args.patchIndex, args.patchRows, args.rows, args.steps))
      return decode.call(this, args)
    })
    const first = await loadGroup(demo, TARGET, { analysisRolesFirst: true })
    try {
      expect(await analyse(first, TEXT, options)).toBe(want)
    } finally {
      spy.mockRestore()
      await first.dispose()
    }
    expect(inRuns[0]).toBe(true)
    expect(inRuns).toContain(false)
  })
})

describe.each([
  ['demo', () => demo],
  ['synthetic with a donor, external data', () => synthetic]
])('a group opened with the analysis roles first (%s)', (_, dirOf) => {
  it('analyses and generates exactly as a group opened whole, switching on the first generate', async () => {
    const before = Session.liveCount
    const whole = await loadGroup(dirOf(), TARGET)
    const first = await loadGroup(dirOf(), TARGET, { analysisRolesFirst: true })
    try {
      const lensIds = first.summary.lenses.map((l) => l.id)
      expect(await analyse(first)).toBe(await analyse(whole))
      for (const lensId of lensIds) {
        expect(await generate(first, lensId)).toBe(await generate(whole, lensId))
      }
      // Analyses after the switch, on the whole graph, are the same again.
      expect(await analyse(first, 'A lion ate cheese in the dark castle.')).toBe(
        await analyse(whole, 'A lion ate cheese in the dark castle.')
      )
      const lensId = lensIds[0]!
      const intervention = { positions: [2], strings: ['cat'] }
      const a = await first.intervene({ lensId, text: TEXT, options: { seed: 1 }, intervention })
      const b = await whole.intervene({ lensId, text: TEXT, options: { seed: 1 }, intervention })
      expect(JSON.stringify(a.rows)).toBe(JSON.stringify(b.rows))
    } finally {
      await first.dispose()
      await whole.dispose()
    }
    expect(Session.liveCount).toBe(before)
  })

  it('holds one session per base model before and after the switch, and dispose frees it', async () => {
    const before = Session.liveCount
    const parts = await openGroupParts(dirOf(), TARGET, { analysisRolesFirst: true })
    try {
      const models = [...parts.models.values()]
      expect(models.every((m) => !m.allRoles)).toBe(true)
      expect(Session.liveCount - before).toBe(models.length)
      const firstSessions = models.map((m) => m.session)
      // An analysis role and a whole-graph role asked at once: the analysis run finishes on the
      // first session before it is released, the generate run waits for the whole graph.
      const ids = [1, 2, 3]
      await Promise.all(
        models.flatMap((m) => [
          m.activations(ids, 0),
          m.patchedLogProbs(ids, 0, 1, new Float32Array(m.hiddenSize), 1)
        ])
      )
      expect(models.every((m) => m.allRoles)).toBe(true)
      expect(firstSessions.every((s) => s.released)).toBe(true)
      expect(Session.liveCount - before).toBe(models.length)
      expect(parts.sessions).toEqual(models.map((m) => m.session))
    } finally {
      await Promise.all(parts.sessions.map((s) => s.release()))
    }
    expect(Session.liveCount).toBe(before)
  })
})

describe('a failed switch to the whole graph', () => {
  it('fails the run that needed it, keeps analyses working and tries again on the next', async () => {
    const before = Session.liveCount
    const parts = await openGroupParts(demo, TARGET, { analysisRolesFirst: true })
    const base = parts.models.get('base')!
    const file = path.join(demo, 'demo-base.onnx')
    const bytes = new Uint8Array(await readFile(file))
    let failures = 1
    const opened: Session[] = []
    const opener: AllRolesOpener = {
      open: async () => {
        if (failures-- > 0) throw new Error('no memory for the whole graph')
        return keep(await Session.create(bytes, TARGET))
      },
      reopen: async () => keep(await Session.create(analysisRolesModel(bytes)!, TARGET)),
      replaced: () => undefined
    }
    const keep = (s: Session): Session => (opened.push(s), s)
    const model = new BaseModel(
      keep(await Session.create(analysisRolesModel(bytes)!, TARGET)),
      base.hiddenSize,
      opener
    )
    try {
      const ids = [1, 2, 3]
      const acts = await model.activations(ids, 1)
      await expect(model.logitLens(acts.subarray(0, base.hiddenSize), 1, 3)).resolves.toBeTruthy()
      await expect(
        model.patchedLogProbs(ids, 1, 1, acts.subarray(0, base.hiddenSize), 1)
      ).rejects.toThrow('no memory for the whole graph')
      expect(model.allRoles).toBe(false)
      expect(await model.activations(ids, 1)).toEqual(acts)
      const lp = await model.patchedLogProbs(ids, 1, 1, acts.subarray(0, base.hiddenSize), 1)
      expect(lp.every(Number.isFinite)).toBe(true)
      expect(model.allRoles).toBe(true)
      expect(opened.filter((s) => !s.released)).toEqual([model.session])
    } finally {
      await Promise.all([...opened, ...parts.sessions].map((s) => s.release()))
    }
    expect(Session.liveCount).toBe(before)
  })
})

describe('the reload cache keeps the roles that were open', () => {
  it('a reload after analyses opens the analysis graph again; after a generate the whole one is kept', async () => {
    const dir = path.join(scratch, 'cached')
    await generateSyntheticBundle(dir, {
      hiddenSize: 32,
      layers: 2,
      heads: 4,
      vocabSize: 48,
      explanationTokens: 4,
      patchLayers: 1,
      maxPositions: 64,
      externalData: true
    })
    const cache = new GroupCache({ hostBytes: 1 << 30, optimizedDir: path.join(scratch, 'opt') })
    const load = async (): Promise<{ group: LoadedGroup; result: LoadCacheResult }> => {
      let result: LoadCacheResult | null = null
      const group = await loadGroup(dir, TARGET, {
        cache,
        analysisRolesFirst: true,
        onCacheResult: (r) => (result = r)
      })
      return { group, result: result! }
    }
    const plain = await loadGroup(dir, TARGET)
    const rows = await analyse(plain)
    const lensId = plain.summary.lenses[0]!.id
    const completions = await generate(plain, lensId)
    await plain.dispose()

    const cold = await load()
    expect(cold.result.savedOptimized).toBe(1)
    expect(await analyse(cold.group)).toBe(rows)
    await cold.group.dispose()

    const warm = await load()
    expect(warm.result.hostHit).toBe(true)
    expect(await analyse(warm.group)).toBe(rows)
    // The whole graph, never opened before, comes from the bundle file and is saved too.
    expect(await generate(warm.group, lensId)).toBe(completions)
    await warm.group.dispose()
    // The unload kept the whole graph in host memory: a load of its own opens it from there.
    let kept: LoadCacheResult | null = null
    const whole = await openGroupParts(dir, TARGET, { cache, onCacheResult: (r) => (kept = r) })
    try {
      expect(whole.models.get('base')!.allRoles).toBe(true)
      expect(kept).toMatchObject({ hostHit: true, preOptimizedSessions: 1 })
    } finally {
      await Promise.all(whole.sessions.map((s) => s.release()))
    }

    const fresh = new GroupCache({ hostBytes: 0, optimizedDir: path.join(scratch, 'opt') })
    let stored: LoadCacheResult | null = null
    const again = await loadGroup(dir, TARGET, {
      cache: fresh,
      analysisRolesFirst: true,
      onCacheResult: (r) => (stored = r)
    })
    try {
      expect(stored!.preOptimizedSessions).toBe(1)
      expect(await analyse(again)).toBe(rows)
      expect(await generate(again, lensId)).toBe(completions)
    } finally {
      await again.dispose()
    }
  })
})
