/**
 * Where a group load's time goes, stage by stage, on the demo group and a larger synthetic bundle:
 * validation + hashing, tokenizer, reading model bytes, ONNX Runtime session creation from the
 * file, from bytes in memory, and from a saved optimized model with graph optimisation off.
 *
 *   npx tsx --tsconfig tsconfig.node.json bench/load-stages.ts [--repeat 3] [--threads 1]
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as ort from 'onnxruntime-node'
import { ensureDemoBundle, generateSyntheticBundle } from '../src/main/engine'
import { validateBundle } from '../src/main/engine/bundle/open'
import { isBundleDir } from '../src/main/engine/synthetic'
import { TextTokenizer } from '../src/main/engine/tokenizer'
import { sessionOptions } from '../src/main/engine/ort'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

/** The d=512, 8-layer, 8192-word synthetic bundle `npm run bench` uses, generated once. */
export async function syntheticBenchBundle(): Promise<string> {
  const dir = path.resolve('.cache', 'bench', 'synthetic-d512-l8-v8192-p4')
  if (!(await isBundleDir(dir))) {
    await mkdir(path.dirname(dir), { recursive: true })
    await generateSyntheticBundle(dir, {
      hiddenSize: 512,
      layers: 8,
      heads: 8,
      vocabSize: 8192,
      explanationTokens: 16,
      patchLayers: 2,
      decoderPromptRows: 4,
      encoderPromptRows: 4,
      maxPositions: 256,
      lensLayers: [3],
      seed: 3
    })
  }
  return dir
}

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now()
  const v = await fn()
  return [v, performance.now() - t]
}

async function profile(name: string, dir: string, repeat: number, threads: number): Promise<void> {
  const target = { provider: 'cpu' as const, threads }
  const best: Record<string, number> = {}
  const keep = (k: string, ms: number): void => {
    best[k] = Math.min(best[k] ?? Infinity, ms)
  }
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'load-stages-'))
  try {
    for (let r = 0; r < repeat; r++) {
      const [bundle, vms] = await time(() => validateBundle(dir))
      keep('validate+hash', vms)
      const [, tms] = await time(() =>
        TextTokenizer.load(
          bundle.tokenizerFile,
          bundle.tokenizerConfigFile,
          bundle.manifest.conventions.bosTokenId
        )
      )
      keep('tokenizer', tms)
      const files = [
        bundle.base.file,
        ...bundle.lenses.flatMap((l) => [l.projectionFile, l.headFile])
      ]
      let fileMs = 0
      let optMs = 0
      let offMs = 0
      let noPrepackMs = 0
      for (const [i, f] of files.entries()) {
        const [s1, ms1] = await time(() => ort.InferenceSession.create(f, sessionOptions(target)))
        await s1.release()
        fileMs += ms1
        const saved = path.join(scratch, `m${i}-${r}.ort`)
        const [s2, ms2] = await time(() =>
          ort.InferenceSession.create(f, {
            ...sessionOptions(target),
            optimizedModelFilePath: saved
          })
        )
        await s2.release()
        void ms2
        const [s3, ms3] = await time(() =>
          ort.InferenceSession.create(saved, {
            ...sessionOptions(target),
            graphOptimizationLevel: 'disabled'
          })
        )
        await s3.release()
        offMs += ms3
        const [s4, ms4] = await time(() =>
          ort.InferenceSession.create(f, {
            ...sessionOptions(target),
            graphOptimizationLevel: 'disabled'
          })
        )
        await s4.release()
        optMs += ms4
        const [s5, ms5] = await time(() =>
          ort.InferenceSession.create(f, {
            ...sessionOptions(target),
            extra: { session: { disable_prepacking: '1' } }
          })
        )
        await s5.release()
        noPrepackMs += ms5
      }
      keep('sessions from files (opt all)', fileMs)
      keep('sessions from files (opt off)', optMs)
      keep('sessions from files (no prepack)', noPrepackMs)
      keep('sessions from saved optimized .ort (opt off)', offMs)
      // The inline-only part can be fed as bytes; external data cannot (a path is needed).
      const [bytes, rms] = await time(() => Promise.all(files.map((f) => readFile(f))))
      keep('read model files', rms)
      if (!bundle.manifest.base.file.endsWith('.onnx') || bytes[0]!.byteLength > 1e6) {
        let bms = 0
        for (const b of bytes) {
          const [s, ms] = await time(() => ort.InferenceSession.create(b, sessionOptions(target)))
          await s.release()
          bms += ms
        }
        keep('sessions from bytes (opt all)', bms)
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  console.log(`${name} (${dir}), best of ${repeat}, ${threads} thread(s):`)
  for (const [k, v] of Object.entries(best)) console.log(`  ${k.padEnd(48)} ${v.toFixed(1)} ms`)
}

async function main(): Promise<void> {
  const repeat = arg('repeat', 3)
  const threads = arg('threads', 1)
  await profile('demo', await ensureDemoBundle(), repeat, threads)
  await profile('synthetic d512 L8 V8192', await syntheticBenchBundle(), repeat, threads)
  console.log(`load average ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} cores`)
}

if (process.argv[1]?.endsWith('load-stages.ts')) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : String(err))
    process.exit(1)
  })
}
