import type { JSX } from 'react'
import type { NumberFieldPath } from '../../lib/humanErrors'

/** A number input kept as typed: a cleared field stays empty (and is refused), never becomes 0. */
export function NumberField({
  label,
  path,
  value,
  onChange,
  invalid,
  testId,
  step,
  title,
  disabled
}: {
  label: string
  title?: string
  path: NumberFieldPath
  value: string
  onChange(value: string): void
  invalid: boolean
  testId?: string
  step?: number
  disabled?: boolean
}): JSX.Element {
  return (
    <label data-field={path} title={title}>
      {label}
      <input
        type="number"
        inputMode="decimal"
        step={step}
        value={value}
        disabled={disabled}
        aria-invalid={invalid || undefined}
        onChange={(e) => onChange(e.target.value)}
        data-testid={testId}
      />
    </label>
  )
}
