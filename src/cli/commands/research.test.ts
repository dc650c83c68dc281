import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cliHarness, type CliHarness } from './spawnCli'

// `talkative intervene`, `talkative sweep` and `analyze --optimise` as a user runs them, on the
// demo group (4 layers; lenses words-l1 and words-l3).
let cli: CliHarness

beforeAll(async () => {
  cli = await cliHarness('talkative-research-cli-')
})

afterAll(() => {
  cli?.cleanup()
})

const TEXT = 'The cat sat on the red chair.'

describe('talkative research commands on the demo group', () => {
  it('intervene --json carries the predecessor’s keys and all three continuations', async () => {
    const r = await cli.run(
      'intervene',
      '--text',
      TEXT,
      '--position',
      '2',
      '--string',
      'dog',
      '--string',
      'cat',
      '--max-new-tokens',
      '3',
      '--best-of-k',
      '2',
      '--json'
    )
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { interventions: Record<string, unknown>[] }
    expect(out.interventions).toHaveLength(2)
    const row = out.interventions[0]!
    for (const key of [
      'original_text',
      'intervention_position',
      'intervened_token',
      'next_token_position',
      'prediction_context_token',
      'intervention_string',
      'explanation_original',
      'kl_divergence',
      'kl_div_orig_decoded',
      'mse',
      'mse_orig_decoded',
      'top_predictions_original',
      'top_predictions_intervention',
      'top_predictions_original_decoded',
      'continuation_original',
      'continuation_intervention',
      'continuation_original_decoded'
    ])
      expect(row, key).toHaveProperty(key)
    expect(row.original_text).toBe(TEXT)
    expect(row.intervened_token).toBe('cat')
    expect((row.top_predictions_original as unknown[]).length).toBe(10)
    expect((row.continuation_intervention as string).split(' ')).toHaveLength(3)
  })

  it('sweep --json is {metadata, data} with the layer fields on each row', async () => {
    const r = await cli.run('sweep', '--text', TEXT, '--position', '2', '--layer', '1', '--json')
    expect(r.code, r.stderr).toBe(0)
    const { data, metadata } = JSON.parse(r.stdout)
    expect(metadata.model_id).toBe('demo-words/words-l1')
    expect(data).toEqual([
      expect.objectContaining({
        position: 2,
        layer: 1,
        lens_id: 'words-l1',
        trained_at_layer: true
      })
    ])
  })

  it('sweep prints one row per layer and says which lens was trained there', async () => {
    const r = await cli.run('sweep', '--text', TEXT, '--position', '2', '--best-of-k', '2')
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['layer 0', 'layer 1', 'layer 2', 'layer 3'])
    expect(lines[1]).toMatch(/words-l1 \(trained here\)/)
    expect(lines[3]).toMatch(/words-l3 \(trained here\)/)
    expect(lines[0]).toMatch(/trained at 1/)
  })

  it('analyze --optimise reports the MSE before and after, never worse', async () => {
    const r = await cli.run(
      'analyze',
      '--text',
      'The cat sat.',
      '--optimise',
      '--samples-per-iteration',
      '3',
      '--json'
    )
    expect(r.code, r.stderr).toBe(0)
    const { data, metadata } = JSON.parse(r.stdout) as {
      data: { mse: number; mse_before: number }[]
      metadata: { options: Record<string, unknown> }
    }
    expect(metadata.options.optimise).toMatchObject({ samples_per_iteration: 3 })
    expect(data.length).toBeGreaterThan(0)
    for (const row of data) expect(row.mse).toBeLessThanOrEqual(row.mse_before)
  })

  it('bad arguments exit 2 and name the flag', async () => {
    const far = await cli.run('intervene', '--text', 'The cat', '--position', '9', '--string', 'x')
    expect(far.code).toBe(2)
    expect(far.stderr).toMatch(/--position/)
    const none = await cli.run('intervene', '--text', 'The cat', '--position', '1')
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/--string/)
    const tuning = await cli.run('analyze', '--text', 'x', '--max-temp-increases', '1')
    expect(tuning.code).toBe(2)
    expect(tuning.stderr).toMatch(/--max-temp-increases.*--optimise/)
  })
})
