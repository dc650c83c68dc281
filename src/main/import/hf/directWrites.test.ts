/**
 * Writes past the page cache (directWrites.ts) with real files: every byte lands where it was asked
 * whatever the alignment of the writes, on each filesystem at hand (the test folder's, and tmpfs
 * under /dev/shm where there is one); the paths where the kernel refuses a direct write (a buffer
 * off its page boundary) or the open refuses O_DIRECT write the same bytes buffered and say why;
 * the weight writer gives bit-identical files and digests on all three paths; an import cancelled
 * while its weights are being written leaves nothing behind.
 */
import { createHash, randomFillSync } from 'node:crypto'
import { constants, existsSync, promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { planBaseModel } from '../../engine'
import { randomHfModel } from '../../../../test/reference/hf/random'
import { writeHfFolder } from '../../../../test/fixtures/hf/writeHfFolder'
import { planHfFolder } from '../../../../test/fixtures/hf/planHfFolder'
import { ProgressMeter } from '../progress'
import { DIRECT_BLOCK, DirectOutputFile, allocateOutputBuffer } from './directWrites'
import { importHfBase } from './importBase'
import { NonFiniteTally, writeCheckpointWeights, type WeightStreamOptions } from './weightStream'

let root: string
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-direct-writes-'))
})
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true })
})

/**
 * What the filesystem holding `dir` does with O_DIRECT, asked of the kernel directly: whether it
 * opens, and whether it refuses a write from an address 16 bytes off a page.
 */
async function directIoIn(dir: string): Promise<{ opens: boolean; refusesMisaligned: boolean }> {
  const flag = constants.O_DIRECT
  if (flag === undefined) return { opens: false, refusesMisaligned: false }
  const file = path.join(dir, `.probe-${process.pid}-${Math.random()}`)
  try {
    const h = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | flag).catch(() => null)
    if (!h) return { opens: false, refusesMisaligned: false }
    try {
      const page = new Uint8Array(allocateOutputBuffer(2 * DIRECT_BLOCK).buffer)
      await h.write(page, 0, DIRECT_BLOCK, 0)
      const refusesMisaligned = await h.write(page, 16, DIRECT_BLOCK, 0).then(
        () => false,
        (err: NodeJS.ErrnoException) => err.code === 'EINVAL'
      )
      return { opens: true, refusesMisaligned }
    } finally {
      await h.close()
    }
  } finally {
    await fs.rm(file, { force: true })
  }
}

/** Writes, in file order, at offsets and lengths that exercise every case of the layout. */
const WRITES: [position: number, length: number][] = [
  [0, 100], // inside the first block: held back whole
  [128, 5000], // its head is the held bytes and a zero gap; crosses a block boundary
  [5248, 12288 - 5248], // starts in the held block, ends on a block boundary: nothing held
  [12288 + 64, 3 * DIRECT_BLOCK], // a zero head, no held bytes before it
  [28672 + 64, 4100], // the held block before it is another block: it goes out on its own
  [32900, 16], // a small write inside the held block
  [32916, 2 * DIRECT_BLOCK + 8] // the last: its tail goes out at `finish`
]
const SIZE = 32916 + 2 * DIRECT_BLOCK + 8 + 1000 // zeros after the last write

/** Writes WRITES with random bytes from two buffers in turn, two writes in flight at once. */
async function writeAll(
  file: string,
  options: { shift?: number; openDirect?: (file: string) => Promise<fs.FileHandle> } = {}
) {
  const expected = new Uint8Array(SIZE)
  const shift = options.shift ?? 0
  const buffers = [0, 1].map(() => {
    const b = allocateOutputBuffer(4 * DIRECT_BLOCK + shift)
    return { base: new Uint8Array(b.buffer, shift), aligned: b.aligned, busy: Promise.resolve() }
  })
  const out = await DirectOutputFile.create(file, {
    buffersAligned: buffers.every((b) => b.aligned),
    openDirect: options.openDirect
  })
  try {
    for (const [i, [position, length]] of WRITES.entries()) {
      const slot = buffers[i % 2]!
      await slot.busy
      const head = DirectOutputFile.headOf(position)
      const data = slot.base.subarray(head, head + length)
      randomFillSync(data)
      expected.set(data, position)
      slot.busy = out.write(slot.base, position, length)
    }
    await Promise.all(buffers.map((b) => b.busy))
    const stat = await out.finish(SIZE)
    expect(stat.size).toBe(BigInt(SIZE))
    return { expected, outcome: out.outcome }
  } finally {
    await out.close()
  }
}

const FOLDERS: [string, () => string | null][] = [
  ['the test folder', () => root],
  ['tmpfs (/dev/shm)', () => (existsSync('/dev/shm') ? '/dev/shm' : null)]
]

describe('DirectOutputFile', () => {
  it.each(FOLDERS)('%s: every byte where it was asked, gaps and the end zero', async (_, dirOf) => {
    const dir = dirOf()
    if (!dir) {
      console.log('skipped: no /dev/shm on this system')
      return
    }
    const file = path.join(dir, `tw-direct-${process.pid}.bin`)
    try {
      const { expected, outcome } = await writeAll(file)
      expect(Buffer.compare(await fs.readFile(file), expected)).toBe(0)
      const io = await directIoIn(dir)
      if (!io.opens) console.log(`${dir}: O_DIRECT refused here, so the buffered path was checked`)
      expect(outcome).toEqual(
        io.opens
          ? { direct: true, note: null }
          : { direct: false, note: expect.stringMatching(/refused O_DIRECT at open/) as string }
      )
    } finally {
      await fs.rm(file, { force: true })
    }
  })

  it('a buffer off its page boundary: the refused direct write goes out buffered, same bytes', async () => {
    const file = path.join(root, 'misaligned.bin')
    const { expected, outcome } = await writeAll(file, { shift: 16 })
    expect(Buffer.compare(await fs.readFile(file), expected)).toBe(0)
    const io = await directIoIn(root)
    if (!io.refusesMisaligned) {
      console.log(`${root}: this filesystem takes misaligned direct writes; only the bytes checked`)
    } else {
      expect(outcome).toEqual({
        direct: false,
        note: 'the filesystem refused an O_DIRECT write (EINVAL)'
      })
    }
  })

  it('an open that refuses O_DIRECT: everything buffered, same bytes, the reason noted', async () => {
    const file = path.join(root, 'refused.bin')
    const { expected, outcome } = await writeAll(file, {
      openDirect: () =>
        Promise.reject(Object.assign(new Error('EINVAL: invalid argument'), { code: 'EINVAL' }))
    })
    expect(Buffer.compare(await fs.readFile(file), expected)).toBe(0)
    expect(outcome).toEqual({
      direct: false,
      note: 'the filesystem refused O_DIRECT at open (EINVAL)'
    })
  })

  it('refuses a write behind the end already written', async () => {
    const file = path.join(root, 'order.bin')
    const base = new Uint8Array(allocateOutputBuffer(2 * DIRECT_BLOCK).buffer)
    const out = await DirectOutputFile.create(file, { buffersAligned: true })
    try {
      await out.write(base, 0, 200)
      expect(() => out.write(base, 100, 8)).toThrow(/write at 100 behind the end written \(200\)/)
    } finally {
      await out.close()
    }
  })
})

/** A written BF16 llama checkpoint, opened and planned. */
async function llamaFolder(dir: string) {
  const model = randomHfModel(
    'llama',
    { hiddenSize: 24, layers: 2, heads: 4, kvHeads: 2, headDim: 6, vocabSize: 53 },
    { seed: 5, tieWordEmbeddings: false }
  )
  await writeHfFolder(dir, model, { dtype: 'BF16' })
  const { folder, arch, plan } = await planHfFolder(dir)
  return { dir, folder, plan, layout: planBaseModel(arch.spec, 'base.onnx.data') }
}

describe('writeCheckpointWeights on each write path', () => {
  it('direct, refused at the first write, refused at open: bit-identical files and digests', async () => {
    const { dir, folder, plan, layout } = await llamaFolder(path.join(root, 'llama'))
    const run = async (name: string, directWrites: WeightStreamOptions['directWrites']) => {
      const dataPath = path.join(dir, name)
      const written = await writeCheckpointWeights(dataPath, layout, {
        folder,
        plan,
        meter: new ProgressMeter({ tensorsTotal: 0, bytesTotal: 0, report: () => undefined }),
        tally: new NonFiniteTally(),
        // Blocks of odd sizes: writes start and end everywhere in their blocks.
        blocks: { copyElements: 7, readBytes: 50 },
        directWrites
      })
      const bytes = await fs.readFile(dataPath)
      expect(written.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
      return { written, bytes }
    }
    const io = await directIoIn(root)
    const direct = await run('direct.data', undefined)
    expect(direct.written.writes.direct).toBe(io.opens)
    const misaligned = await run('misaligned.data', { misalignBuffers: true })
    if (io.refusesMisaligned) expect(misaligned.written.writes.direct).toBe(false)
    const refused = await run('refused.data', {
      openDirect: () =>
        Promise.reject(Object.assign(new Error('EINVAL: invalid argument'), { code: 'EINVAL' }))
    })
    expect(refused.written.writes).toEqual({
      direct: false,
      note: 'the filesystem refused O_DIRECT at open (EINVAL)'
    })
    expect(direct.bytes.byteLength).toBe(layout.dataSize)
    expect(Buffer.compare(misaligned.bytes, direct.bytes)).toBe(0)
    expect(Buffer.compare(refused.bytes, direct.bytes)).toBe(0)
    expect(misaligned.written.sha256).toBe(direct.written.sha256)
    expect(refused.written.sha256).toBe(direct.written.sha256)
  })

  it('cancelled with writes in flight: rejects, and no descriptor of the file stays open', async () => {
    const { dir, folder, plan, layout } = await llamaFolder(path.join(root, 'llama-cancel'))
    const dataPath = path.join(dir, 'base.onnx.data')
    const abort = new AbortController()
    let tensorsAtCancel = 0
    const meter = new ProgressMeter({
      tensorsTotal: 0,
      bytesTotal: 0,
      intervalMs: 0,
      report: (p) => {
        if (p.tensorsDone >= 3 && !abort.signal.aborted) {
          tensorsAtCancel = p.tensorsDone
          abort.abort()
        }
      }
    })
    const run = writeCheckpointWeights(dataPath, layout, {
      folder,
      plan,
      meter,
      tally: new NonFiniteTally(),
      blocks: { copyElements: 7, readBytes: 50 },
      signal: abort.signal
    })
    await expect(run).rejects.toThrow(/reading cancelled/)
    expect(tensorsAtCancel).toBeGreaterThanOrEqual(3)
    expect(tensorsAtCancel).toBeLessThan(plan.weights.length)
    if (existsSync('/proc/self/fd')) {
      const open = await Promise.all(
        (await fs.readdir('/proc/self/fd')).map((fd) =>
          fs.readlink(`/proc/self/fd/${fd}`).catch(() => '')
        )
      )
      expect(open.filter((f) => f === dataPath)).toEqual([])
    }
  })

  it('an import cancelled as its weights start leaves nothing behind', async () => {
    const { dir } = await llamaFolder(path.join(root, 'llama-import'))
    const parent = path.join(root, 'groups')
    await fs.mkdir(parent)
    const abort = new AbortController()
    const run = importHfBase({
      source: dir,
      out: path.join(parent, 'cancelled'),
      signal: abort.signal,
      // The stage is reported just before the data file is opened; the first weight sees the abort.
      onProgress: (p) => {
        if (p.stage === 'writing weights') abort.abort()
      }
    })
    await expect(run).rejects.toThrow(/cancelled/)
    expect(abort.signal.aborted).toBe(true)
    expect(await fs.readdir(parent)).toEqual([])
  })
})
