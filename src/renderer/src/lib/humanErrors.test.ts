import { describe, expect, it } from 'vitest'
import { checkNumberField, humanError, numberLimits, NUMBER_FIELDS } from './humanErrors'

describe('error messages for people', () => {
  it('maps a validation error from main to a sentence built from the field and its limits', () => {
    const raw = {
      code: 'invalid_input',
      message: 'sessions:run: options.bestOfK: Too big: expected number to be <=512',
      field: 'options.bestOfK'
    }
    expect(humanError(raw)).toEqual({
      message: 'Best of K must be between 1 and 512',
      field: 'options.bestOfK'
    })
    expect(
      humanError({
        code: 'invalid_input',
        message: 'jobs:submit: generate.maxNewTokens: Too small: expected number to be >=1',
        field: 'generate.maxNewTokens'
      }).message
    ).toBe('New tokens must be between 1 and 4096')
    expect(
      humanError({
        code: 'invalid_input',
        message: 'sessions:run: options.seed: Invalid input: expected int, received number',
        field: 'options.seed'
      }).message
    ).toBe('Seed must be a whole number between 0 and 2147483647')
  })

  it('says other errors without the channel and path prefixes, naming the field in words', () => {
    expect(
      humanError({
        code: 'invalid_input',
        message: 'sessions:run: options.positions: end must be greater than start',
        field: 'options.positions'
      }).message
    ).toBe('Positions: end must be greater than start')
    expect(humanError({ code: 'not_found', message: 'sessions:get: no session s-x' })).toEqual({
      message: 'No session s-x'
    })
    expect(
      humanError({
        code: 'invalid_input',
        message: 'the text has 640 tokens; this model takes at most 512',
        field: 'text'
      })
    ).toEqual({ message: 'The text has 640 tokens; this model takes at most 512', field: 'text' })
    expect(
      humanError({ code: 'invalid_input', message: 'bad.json is not a session file' })
    ).toEqual({
      message: 'bad.json is not a session file'
    })
    expect(humanError({ code: 'internal', message: 'worker crashed' })).toEqual({
      message: 'Worker crashed'
    })
  })

  it('reads every number field’s limits from the schema main validates with', () => {
    expect(numberLimits(NUMBER_FIELDS['options.bestOfK'].schema)).toEqual({
      min: 1,
      max: 512,
      integer: true
    })
    expect(numberLimits(NUMBER_FIELDS['options.temperature'].schema)).toEqual({
      min: 0,
      max: 5,
      integer: false
    })
    expect(numberLimits(NUMBER_FIELDS['options.lastNMessages'].schema)).toEqual({
      min: 1,
      max: null,
      integer: true
    })
    for (const [path, { schema }] of Object.entries(NUMBER_FIELDS)) {
      const limits = numberLimits(schema)
      expect(limits.min, path).not.toBeNull()
    }
  })

  it('a cleared number field is an error, never a silent 0; typed values are checked like main checks them', () => {
    expect(checkNumberField('options.bestOfK', '')).toEqual({
      ok: false,
      message: 'Best of K needs a number'
    })
    expect(checkNumberField('options.seed', '   ')).toEqual({
      ok: false,
      message: 'Seed needs a number'
    })
    expect(checkNumberField('options.bestOfK', 'abc')).toEqual({
      ok: false,
      message: 'Best of K needs a number'
    })
    expect(checkNumberField('options.bestOfK', '600')).toEqual({
      ok: false,
      message: 'Best of K must be between 1 and 512'
    })
    expect(checkNumberField('options.bestOfK', '2.5')).toEqual({
      ok: false,
      message: 'Best of K must be a whole number between 1 and 512'
    })
    expect(checkNumberField('options.lastNMessages', '0')).toEqual({
      ok: false,
      message: 'N (last messages) must be at least 1'
    })
    expect(checkNumberField('options.bestOfK', ' 8 ')).toEqual({ ok: true, value: 8 })
    expect(checkNumberField('options.temperature', '0.7')).toEqual({ ok: true, value: 0.7 })
    expect(checkNumberField('options.seed', '0')).toEqual({ ok: true, value: 0 })
  })

  it('checks the optimiser’s settings against the optimiser schema', () => {
    expect(checkNumberField('options.optimise.samplesPerIteration', '0')).toEqual({
      ok: false,
      message: 'Samples per iteration must be between 1 and 512'
    })
    expect(checkNumberField('options.optimise.maxTempIncreases', '1.5')).toEqual({
      ok: false,
      message: 'Temperature increases must be a whole number between 0 and 10'
    })
    expect(checkNumberField('options.optimise.tempIncreaseFactor', '0.5')).toEqual({
      ok: false,
      message: 'Temperature factor must be between 1 and 10'
    })
    expect(checkNumberField('options.optimise.salienceThreshold', '-0.25')).toEqual({
      ok: true,
      value: -0.25
    })
    expect(
      humanError({
        code: 'invalid_input',
        message: 'sessions:run: options.optimise.samplesPerIteration: Too big',
        field: 'options.optimise.samplesPerIteration'
      })
    ).toEqual({
      message: 'Samples per iteration must be between 1 and 512',
      field: 'options.optimise.samplesPerIteration'
    })
  })
})
