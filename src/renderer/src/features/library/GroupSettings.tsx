import { useState, type JSX } from 'react'
import type { LibraryGroup } from '@shared/domain/models'
import { call, errorOf } from '../../ipc/client'
import { reportError } from '../../store'

/**
 * A group's placement settings on its library card: loaded at every start ("preload"), and how many
 * copies the scheduler may keep (`replicas` min/max; an empty max: as many as there are devices).
 * docs/devices.md ("Replicas", "Placements that survive a restart") says what each does.
 */
export function GroupSettings({ group }: { group: LibraryGroup }): JSX.Element | null {
  // Numbers being edited are the user's until saved; otherwise the saved settings show.
  const [draft, setDraft] = useState<{ min: string; max: string } | null>(null)
  const settings = group.settings
  if (!settings || group.status === 'broken') return null
  const saved = {
    min: String(settings.replicas.min),
    max: settings.replicas.max === null ? '' : String(settings.replicas.max)
  }
  const shown = draft ?? saved
  const save = (patch: {
    preload?: boolean
    replicas?: { min: number; max: number | null }
  }): void => {
    call('models:settings', { groupId: group.groupId, ...patch }).catch((err: unknown) =>
      reportError(`settings of ${group.groupId}`, errorOf(err))
    )
  }
  const saveReplicas = (): void => {
    setDraft(null)
    const min = Number(shown.min)
    const max = shown.max.trim() === '' ? null : Number(shown.max)
    if (!Number.isInteger(min) || (max !== null && !Number.isInteger(max))) return
    if (min === settings.replicas.min && max === settings.replicas.max) return
    // The host checks the pair (max at least min) and says what is wrong.
    save({ replicas: { min, max } })
  }
  return (
    <details className="group-card__settings" data-testid="group-settings">
      <summary>Placement settings</summary>
      <label className="small">
        <input
          type="checkbox"
          data-testid="group-preload-toggle"
          checked={settings.preload}
          onChange={(e) => save({ preload: e.target.checked })}
        />{' '}
        Preload at every start
      </label>
      <form
        className="small"
        onSubmit={(e) => {
          e.preventDefault()
          saveReplicas()
        }}
      >
        Replicas: min{' '}
        <input
          type="number"
          min={0}
          max={64}
          className="group-card__number"
          aria-label={`Fewest copies of ${group.name}`}
          data-testid="group-replicas-min"
          value={shown.min}
          onChange={(e) => setDraft({ ...shown, min: e.target.value })}
        />{' '}
        max{' '}
        <input
          type="number"
          min={1}
          max={64}
          placeholder="any"
          className="group-card__number"
          aria-label={`Most copies of ${group.name} (empty: any)`}
          data-testid="group-replicas-max"
          value={shown.max}
          onChange={(e) => setDraft({ ...shown, max: e.target.value })}
        />{' '}
        <button
          type="submit"
          className="button button--small"
          disabled={draft === null}
          data-testid="group-replicas-save"
        >
          Save
        </button>
      </form>
    </details>
  )
}
