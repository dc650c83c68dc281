/**
 * The machine's MatMul peak for `npm run bench`: a chain of 1024³ MatMuls in one run, best of 12,
 * GFLOP/s. The chain's intermediates stay in ONNX Runtime's arena and its output is one number,
 * so a run times the products: a single MatMul handing its 4 MB product to JavaScript spent more
 * time in new pages (on this VM, ≈ 15 µs per 4 KiB page first touched) than in the product, and
 * measured a third of the machine's peak whenever the allocator gave the output fresh memory
 * (the device workers' 128 KiB mmap threshold does so every run).
 */
import { GraphBuilder, encodeModel } from '../src/main/engine/graph/builder'
import { Session, Tensor, type SessionTarget } from '../src/main/engine/ort'

const N = 1024
const CHAIN = 8

export async function matmulPeak(target: SessionTarget): Promise<number> {
  const g = new GraphBuilder()
  g.input('a', 'float32', [N, N])
  g.input('b', 'float32', [N, N])
  let x = 'a'
  for (let i = 0; i < CHAIN; i++) x = g.op('MatMul', [x, 'b'])
  g.opTo('ReduceSum', [x], ['c'], { keepdims: 0 })
  g.output('c', 'float32', [])
  const s = await Session.create(encodeModel(g.toGraph('peak'), 'bench'), target)
  // Entries of b keep the chain's values normal (no overflow, no subnormals) over 8 products.
  const a = new Tensor(
    'float32',
    Float32Array.from({ length: N * N }, (_, i) => ((i % 7) - 3) / 7),
    [N, N]
  )
  const b = new Tensor(
    'float32',
    Float32Array.from({ length: N * N }, (_, i) => ((i % 5) - 2) / 50),
    [N, N]
  )
  let best = Infinity
  for (let i = 0; i < 12; i++) {
    const t = performance.now()
    await s.run({ a, b })
    best = Math.min(best, performance.now() - t)
  }
  await s.release()
  return (CHAIN * 2 * N ** 3) / (best / 1000) / 1e9
}
