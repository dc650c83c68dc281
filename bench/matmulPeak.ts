/** The machine's MatMul peak for `npm run bench`: a 1024³ MatMul, best of 12, GFLOP/s. */
import { GraphBuilder, encodeModel } from '../src/main/engine/graph/builder'
import { Session, Tensor, type SessionTarget } from '../src/main/engine/ort'

export async function matmulPeak(target: SessionTarget): Promise<number> {
  const n = 1024
  const g = new GraphBuilder()
  g.input('a', 'float32', [n, n])
  g.input('b', 'float32', [n, n])
  g.opTo('MatMul', ['a', 'b'], ['c'])
  g.output('c', 'float32', [n, n])
  const s = await Session.create(encodeModel(g.toGraph('peak'), 'bench'), target)
  const a = new Tensor(
    'float32',
    Float32Array.from({ length: n * n }, (_, i) => ((i % 7) - 3) / 7),
    [n, n]
  )
  const b = new Tensor(
    'float32',
    Float32Array.from({ length: n * n }, (_, i) => ((i % 5) - 2) / 5),
    [n, n]
  )
  let best = Infinity
  for (let i = 0; i < 12; i++) {
    const t = performance.now()
    await s.run({ a, b })
    best = Math.min(best, performance.now() - t)
  }
  await s.release()
  return (2 * n ** 3) / (best / 1000) / 1e9
}
