import { describe, expect, it } from 'vitest'
import { AnalyzeOptionsSchema } from '@shared/domain/analysis'
import { ApiFailure } from './failures'
import { analysisOptions, generateOptions, promptInput } from './options'

const DEFAULT_K = AnalyzeOptionsSchema.shape.bestOfK.parse(undefined)

/** The options as the endpoint sees them: the parsed body and the raw one are alike here. */
function analysis(options: Record<string, unknown>, numPredictions?: number) {
  return analysisOptions(options, options, numPredictions)
}

function refusal(run: () => unknown): { field: string | undefined; message: string } {
  try {
    run()
  } catch (err) {
    expect(err).toBeInstanceOf(ApiFailure)
    const e = err as ApiFailure
    expect(e.status).toBe(400)
    return { field: e.error.field, message: e.error.message }
  }
  throw new Error('expected a 400')
}

describe("the predecessor's analysis option names", () => {
  it.each([
    [{ no_kl: true }, undefined, { kl: false }],
    [{ calculate_token_salience: false }, undefined, { salience: false }],
    [{ best_of_k: 4 }, undefined, { bestOfK: 4 }],
    [{}, 4, { bestOfK: 4 }],
    [
      { optimize_explanations_config: { best_of_k: 4, temperature: 0.5 } },
      4,
      { bestOfK: 4, temperature: 0.5 }
    ],
    // batch_size is positions per batch: rows per batch count each of the K rollouts.
    [{ batch_size: 8, best_of_k: 4 }, undefined, { bestOfK: 4, rowsPerBatch: 32 }],
    [{ batch_size: 2 }, undefined, { rowsPerBatch: 2 * DEFAULT_K }],
    [
      { optimize_explanations_config: { best_of_k: 2, n_groups_per_rollout: 3 } },
      undefined,
      { bestOfK: 2, rowsPerBatch: 6 }
    ],
    [{ no_eval: true }, undefined, { kl: false, salience: false }],
    [{ use_chat_format: true, is_chat: true, best_of_k: 2 }, undefined, { bestOfK: 2 }]
  ])('%j (num_predictions %s) means %j', (options, numPredictions, expected) => {
    expect(analysis(options, numPredictions)).toEqual(expected)
  })

  it.each([
    [{ best_of_k: 4 }, 2, 'num_predictions'],
    [
      { optimize_explanations_config: { best_of_k: 3 }, best_of_k: 4 },
      undefined,
      'options.optimize_explanations_config.best_of_k'
    ],
    [
      { temperature: 1, optimize_explanations_config: { temperature: 0.5 } },
      undefined,
      'options.optimize_explanations_config.temperature'
    ],
    [
      { optimize_explanations_config: { use_batched: false } },
      undefined,
      'options.optimize_explanations_config.use_batched'
    ],
    [{ batch_size: 8, best_of_k: 4, rows_per_batch: 16 }, undefined, 'options.batch_size'],
    [{ batch_size: 65536, best_of_k: 2 }, undefined, 'options.batch_size'],
    [{ no_eval: true, kl: true }, undefined, 'options.no_eval'],
    [{ no_kl: true, kl: true }, undefined, 'options.no_kl']
  ])('refuses %j (num_predictions %s), naming %s', (options, numPredictions, field) => {
    expect(refusal(() => analysis(options, numPredictions)).field).toBe(field)
  })

  it('names the replacement for the sequential optimiser', () => {
    const r = refusal(() => analysis({ optimize_explanations_config: { use_batched: false } }))
    expect(r.message).toContain('best_of_k')
  })
})

describe("the predecessor's generation option names", () => {
  it.each([
    [{ num_tokens: 5 }, undefined, { maxNewTokens: 5 }],
    [{ max_new_tokens: 5, num_tokens: 5 }, undefined, { maxNewTokens: 5 }],
    [{ num_completions: 3 }, 3, { completions: 3 }],
    [
      { temperature: 0.8, top_p: 0.95, return_full_text: false, is_chat: true },
      undefined,
      { temperature: 0.8, topP: 0.95 }
    ]
  ])('%j (num_completions %s) means %j', (options, numCompletions, expected) => {
    expect(generateOptions(options, options, numCompletions)).toEqual(expected)
  })

  it('refuses contradictions and the unsupported mode, naming the field and the replacement', () => {
    expect(
      refusal(() => generateOptions({}, { num_tokens: 5, max_new_tokens: 6 }, undefined)).field
    ).toBe('options.num_tokens')
    expect(refusal(() => generateOptions({}, { completions: 2 }, 3)).field).toBe('num_completions')
    const mode = refusal(() =>
      generateOptions({}, { return_full_text: 'full_and_completion' }, undefined, 'generation')
    )
    expect(mode.field).toBe('generation.return_full_text')
    expect(mode.message).toMatch(/return_full_text true .* false/)
  })
})

describe('prompts with use_chat_format', () => {
  it('keeps a plain prompt as text unless a chat is asked for', () => {
    expect(promptInput('Hello there')).toEqual({ text: 'Hello there' })
    expect(promptInput('Hello there', true)).toEqual({
      messages: [{ role: 'user', content: 'Hello there' }]
    })
  })

  it('reads a JSON conversation, or one message object', () => {
    const chat = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' }
    ]
    expect(promptInput(JSON.stringify(chat), true)).toEqual({ messages: chat })
    expect(promptInput('{"role":"user","content":"Hi"}', true)).toEqual({
      messages: [{ role: 'user', content: 'Hi' }]
    })
  })

  it('refuses broken JSON and wrong roles, naming the prompt', () => {
    expect(refusal(() => promptInput('[{"role":', true)).field).toBe('prompt')
    expect(refusal(() => promptInput('[{"role":"robot","content":"x"}]', true)).field).toBe(
      'prompt'
    )
  })
})
