import type { JSX } from 'react'
import { OptimiseOptionsSchema } from '@shared/domain/analysis'
import type { NumberFieldPath } from '../../lib/humanErrors'
import { NumberField } from './NumberField'

/** The optimiser's settings as typed in the console (strings: a cleared field stays cleared). */
export interface OptimiseDraft {
  samplesPerIteration: string
  salienceThreshold: string
  maxTempIncreases: string
  tempIncreaseFactor: string
}

/** The predecessor's defaults, read from the schema main validates with. */
export function defaultOptimiseDraft(): OptimiseDraft {
  const d = OptimiseOptionsSchema.parse({})
  return {
    samplesPerIteration: String(d.samplesPerIteration),
    salienceThreshold: String(d.salienceThreshold),
    maxTempIncreases: String(d.maxTempIncreases),
    tempIncreaseFactor: String(d.tempIncreaseFactor)
  }
}

export const OPTIMISE_FIELDS: ReadonlyArray<{
  key: keyof OptimiseDraft
  path: NumberFieldPath
  label: string
  title: string
  step?: number
}> = [
  {
    key: 'samplesPerIteration',
    path: 'options.optimise.samplesPerIteration',
    label: 'Samples / iter.',
    title:
      'Rollouts per regeneration; the starting explanation is the best of this many (best-of-K is not used)'
  },
  {
    key: 'salienceThreshold',
    path: 'options.optimise.salienceThreshold',
    label: 'Salience below',
    title: 'A word whose salience is below this has the rest of the explanation regenerated',
    step: 0.05
  },
  {
    key: 'maxTempIncreases',
    path: 'options.optimise.maxTempIncreases',
    label: 'Temp. increases',
    title: 'Retries of a regeneration that did not lower the MSE, each at a higher temperature'
  },
  {
    key: 'tempIncreaseFactor',
    path: 'options.optimise.tempIncreaseFactor',
    label: '× per increase',
    title: 'The temperature is multiplied by this at each retry',
    step: 0.1
  }
]

/**
 * The "Optimise explanations" toggle and, while it is on, the iterative optimiser's main settings
 * (the analysis option that replaces best-of-K).
 */
export function OptimiseOptions({
  on,
  onToggle,
  draft,
  onChange,
  invalid
}: {
  on: boolean
  onToggle(on: boolean): void
  draft: OptimiseDraft
  onChange(key: keyof OptimiseDraft, value: string): void
  invalid(path: NumberFieldPath): boolean
}): JSX.Element {
  return (
    <>
      <label
        className="toggle"
        title="Search each explanation iteratively, word by word, for a lower MSE instead of keeping the best of K samples"
      >
        <input
          type="checkbox"
          checked={on}
          onChange={(e) => onToggle(e.target.checked)}
          data-testid="opt-optimise"
        />{' '}
        Optimise explanations
      </label>
      {on && (
        <span className="console__optimise" role="group" aria-label="Optimiser settings">
          {OPTIMISE_FIELDS.map((f) => (
            <NumberField
              key={f.key}
              label={f.label}
              title={f.title}
              path={f.path}
              value={draft[f.key]}
              onChange={(v) => onChange(f.key, v)}
              invalid={invalid(f.path)}
              testId={`opt-optimise-${f.key}`}
              step={f.step}
            />
          ))}
        </span>
      )}
    </>
  )
}
