/**
 * Writes expected.json: the PyTorch reference's outputs on TORCH_FIXTURES, so the cross-check runs
 * on machines without python3-torch. Regenerate after changing fixtures.ts or the script:
 *   npx tsx --tsconfig tsconfig.node.json test/reference/hf/torch/generate-expected.ts
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TORCH_FIXTURES, buildFixture, fixtureCases } from './fixtures'
import { runTorchReferenceBatch, torchUnavailableReason } from './torchReference'
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
  file.fixtures[fixture.name] = outputs[f].map((result) => {
    const last = result.logits.length - 1
    return {
      lastRowBlockOutputs: result.block_outputs.map((layer) => round(layer[last])),
      lastRowLogits: round(result.logits[last]),
      // Only where a final softcap makes them differ.
      lastRowLogitsNoSoftcap: result.logits_no_softcap[last].every(
        (x, v) => x === result.logits[last][v]
      )
        ? undefined
        : round(result.logits_no_softcap[last]),
      greedy: result.greedy
    }
  })
})
writeFileSync(join(__dirname, 'expected.json'), JSON.stringify(file) + '\n')
console.log(`wrote expected.json (${TORCH_FIXTURES.length} fixtures)`)
