import { renderToStaticMarkup } from 'react-dom/server'
import { describe, expect, it } from 'vitest'
import { defaultOptimiseDraft, OPTIMISE_FIELDS, OptimiseOptions } from './OptimiseOptions'

const render = (on: boolean, invalidPath?: string): string =>
  renderToStaticMarkup(
    <OptimiseOptions
      on={on}
      onToggle={() => undefined}
      draft={defaultOptimiseDraft()}
      onChange={() => undefined}
      invalid={(path) => path === invalidPath}
    />
  )

describe('optimise explanations option', () => {
  it('starts from the predecessor’s defaults (16 samples, threshold 0, 2 increases of ×1.5)', () => {
    expect(defaultOptimiseDraft()).toEqual({
      samplesPerIteration: '16',
      salienceThreshold: '0',
      maxTempIncreases: '2',
      tempIncreaseFactor: '1.5'
    })
  })

  it('shows its settings only while it is on, marking the one main refused', () => {
    const off = render(false)
    expect(off).toContain('Optimise explanations')
    expect(off).toContain('data-testid="opt-optimise"')
    expect(off).not.toContain('opt-optimise-samplesPerIteration')

    const on = render(true, 'options.optimise.maxTempIncreases')
    for (const f of OPTIMISE_FIELDS) expect(on).toContain(`data-testid="opt-optimise-${f.key}"`)
    const input = (key: string): string =>
      on.match(new RegExp(`<input[^>]*data-testid="opt-optimise-${key}"[^>]*>`))?.[0] ?? ''
    expect(input('samplesPerIteration')).toContain('value="16"')
    expect(input('tempIncreaseFactor')).toContain('value="1.5"')
    expect(input('maxTempIncreases')).toContain('aria-invalid="true"')
    expect(input('samplesPerIteration')).not.toContain('aria-invalid')
  })
})
