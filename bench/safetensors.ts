/**
 * Safetensors read benchmark: writes a ~1 GB BF16 checkpoint (8 tensors) to a temporary folder,
 * then reads every tensor back as float32 through the importer's reader (positioned chunked reads +
 * BF16 → F32), tensor by tensor as an import does. Reported next to a plain read of the same bytes
 * with the same chunking (no conversion) in the same run, so the ratio says what conversion costs.
 * The file was just written, so it is in the OS page cache for every variant: the figures are the
 * reader's own speed, not the disk's. Peak RSS is compared with the float32 size of the largest
 * tensor. The folder is removed at the end. `--json` prints one line.
 *
 *   npm run bench:safetensors [-- --json] [--size-mb 1024] [--repeat 3] [--dtype BF16|F16|F32]
 */
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  READ_CHUNK_BYTES,
  openSafetensors,
  readSafetensorsTensor,
  writeSafetensors,
  type ReadableDtype,
  type WritableTensor
} from '../src/main/import/safetensors'

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1]! : fallback
}

const json = process.argv.includes('--json')
const sizeMb = Number(arg('size-mb', '1024'))
const repeat = Number(arg('repeat', '3'))
const dtype = arg('dtype', 'BF16') as ReadableDtype
const log = (line: string): void => {
  if (!json) console.log(line)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const mb = (bytes: number): number => bytes / 1e6

async function plainRead(file: string, bytes: number, offset: number): Promise<void> {
  const handle = await fs.open(file, 'r')
  try {
    const buf = new Uint8Array(READ_CHUNK_BYTES)
    for (let done = 0; done < bytes;) {
      const n = Math.min(READ_CHUNK_BYTES, bytes - done)
      const { bytesRead } = await handle.read(buf, 0, n, offset + done)
      if (bytesRead === 0) throw new Error('short read')
      done += bytesRead
    }
  } finally {
    await handle.close()
  }
}

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tw-bench-safetensors-'))
  try {
    const tensorsCount = 8
    const bpe = dtype === 'F32' ? 4 : 2
    const rows = 4096
    const cols = Math.max(1, Math.round((sizeMb * 1e6) / tensorsCount / bpe / rows))
    const tensors = new Map<string, WritableTensor>()
    for (let t = 0; t < tensorsCount; t++) {
      tensors.set(`model.layers.${t}.mlp.up_proj.weight`, {
        dtype,
        shape: [rows, cols],
        // Cheap, varied values (a hash of the index): the data must not be all zeros.
        data: (start, out) => {
          for (let i = 0; i < out.length; i++) {
            const h = Math.imul((start + i) ^ (t * 0x9e3779b9), 0x85ebca6b) >>> 8
            out[i] = (h / 0x1000000 - 0.5) * 0.1
          }
        }
      })
    }
    const file = path.join(dir, 'model.safetensors')
    log(`writing ${tensorsCount} × [${rows}, ${cols}] ${dtype} tensors to ${file} …`)
    const t0 = performance.now()
    const size = await writeSafetensors(file, tensors, { format: 'pt' })
    log(`  ${mb(size).toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

    const st = await openSafetensors(file)
    const infos = [...st.tensors.values()]
    const dataBytes = infos.reduce((a, t) => a + t.byteLength, 0)
    const largestF32 = Math.max(...infos.map((t) => t.numel * 4))
    const rssBefore = process.memoryUsage().rss

    const fresh: number[] = []
    const reused: number[] = []
    const plain: number[] = []
    // CPU time (user + system, all threads) per variant: steadier than wall time on a shared machine.
    const cpu = { fresh: [] as number[], reused: [] as number[], plain: [] as number[] }
    let c0 = process.cpuUsage()
    const cpuLap = (): number => {
      const d = process.cpuUsage(c0)
      c0 = process.cpuUsage()
      return (d.user + d.system) / 1000
    }
    const scratch = new Float32Array(Math.max(...infos.map((t) => t.numel)))
    for (let r = 0; r < repeat; r++) {
      cpuLap()
      let t = performance.now()
      for (const info of infos) await plainRead(file, info.byteLength, info.offset)
      plain.push(performance.now() - t)
      cpu.plain.push(cpuLap())
      // As readTensor() is usually called: a new float32 array per tensor (fresh pages each time).
      t = performance.now()
      let checksum = 0
      for (const info of infos) {
        const values = await readSafetensorsTensor(st, info.name)
        checksum += values[values.length - 1]!
      }
      fresh.push(performance.now() - t)
      cpu.fresh.push(cpuLap())
      // As a streaming importer can call it: one scratch array, reused for every tensor.
      t = performance.now()
      for (const info of infos) {
        const into = scratch.subarray(0, info.numel)
        const values = await readSafetensorsTensor(st, info.name, { into })
        checksum += values[values.length - 1]!
      }
      reused.push(performance.now() - t)
      cpu.reused.push(cpuLap())
      if (!Number.isFinite(checksum)) throw new Error('non-finite values read back')
    }
    const peakRss = process.resourceUsage().maxRSS * 1024
    const rate = (ms: number[]): number => Math.round(mb(dataBytes) / (median(ms) / 1000))
    const result = {
      dtype,
      file_mb: Math.round(mb(size)),
      tensors: tensorsCount,
      read_convert_mb_s: rate(fresh),
      read_convert_reused_mb_s: rate(reused),
      plain_read_mb_s: rate(plain),
      cpu_mb_per_s: { fresh: rate(cpu.fresh), reused: rate(cpu.reused), plain: rate(cpu.plain) },
      fresh_over_plain_time: Number((median(fresh) / median(plain)).toFixed(2)),
      reused_over_plain_time: Number((median(reused) / median(plain)).toFixed(2)),
      largest_tensor_f32_mb: Math.round(mb(largestF32)),
      rss_before_reads_mb: Math.round(mb(rssBefore)),
      peak_rss_mb: Math.round(mb(peakRss)),
      peak_rss_over_largest_f32: Number((peakRss / largestF32).toFixed(2)),
      repeat,
      page_cache: 'warm (file just written)',
      loadavg: os.loadavg().map((x) => Number(x.toFixed(2)))
    }
    if (json) console.log(JSON.stringify(result))
    else {
      log(`read + convert, new array per tensor: ${result.read_convert_mb_s} MB/s of checkpoint`)
      log(`read + convert into one reused array: ${result.read_convert_reused_mb_s} MB/s`)
      log(`plain chunked read of the same bytes: ${result.plain_read_mb_s} MB/s`)
      const c = result.cpu_mb_per_s
      log(
        `per CPU-second (user+sys): new array ${c.fresh}, reused ${c.reused}, plain ${c.plain} MB/s`
      )
      log(
        `time over the plain read: new array ${result.fresh_over_plain_time}×, reused ${result.reused_over_plain_time}×`
      )
      log(
        `peak RSS ${result.peak_rss_mb} MB = ${result.peak_rss_over_largest_f32} × the largest tensor in float32 (${result.largest_tensor_f32_mb} MB)`
      )
      log(`median of ${repeat}; ${result.page_cache}; load average ${result.loadavg.join(' ')}`)
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
