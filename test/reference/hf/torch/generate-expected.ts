/**
 * Writes expected.json: the PyTorch reference's outputs on TORCH_FIXTURES, so the cross-check runs
 * on machines without python3-torch. Regenerate after changing fixtures.ts or the script:
 *   npx tsx --tsconfig tsconfig.node.json test/reference/hf/torch/generate-expected.ts
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TORCH_FIXTURES, buildFixture, fixtureCases } from './fixtures'
import { runTorchReferenceBatch, torchUnavailableReason } from './torchReference'
import { at } from '../checked'
import type { ExpectedFile } from './expected'

const reason = torchUnavailableReason()
if (reason !== null) throw new Error(`cannot generate expected.json: ${reason}`)

/** 12 significant digits: far below every tolerance, and a readable file. */
const round = (values: number[]): number[] => values.map((x) => Number(x.toPrecision(12)))

const file: ExpectedFile = {
  generatedBy: 'test/reference/hf/torch/hf_torch_reference.py',
  fixtures: {}
}
const runs = TORCH_FIXTURES.map((fixture) => ({
  ...buildFixture(fixture),
  cases: fixtureCases(fixture)
}))
const outputs = runTorchReferenceBatch(runs)
TORCH_FIXTURES.forEach((fixture, f) => {
  file.fixtures[fixture.name] = at(outputs, f, 'torch outputs').map((result) => {
    const last = result.logits.length - 1
    const lastLogits = at(result.logits, last, `${fixture.name} logits`)
    const lastNoSoftcap = at(result.logits_no_softcap, last, `${fixture.name} raw logits`)
    return {
      lastRowBlockOutputs: result.block_outputs.map((layer, l) =>
        round(at(layer, last, `${fixture.name} block ${l}`))
      ),
      lastRowLogits: round(lastLogits),
      // Only where a final softcap makes them differ.
      lastRowLogitsNoSoftcap: lastNoSoftcap.every((x, v) => x === lastLogits[v])
        ? undefined
        : round(lastNoSoftcap),
      greedy: result.greedy
    }
  })
})
writeFileSync(join(__dirname, 'expected.json'), JSON.stringify(file) + '\n')
console.log(`wrote expected.json (${TORCH_FIXTURES.length} fixtures)`)
