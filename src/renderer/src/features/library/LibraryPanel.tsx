import { useDraggable } from '@dnd-kit/core'
import { useState, type JSX } from 'react'
import type { LibraryGroup } from '@shared/domain/models'
import { call, errorOf } from '../../ipc/client'
import { formatBytes } from '../../lib/format'
import { reportError, useAppStore } from '../../store'
import { dragIds, usePlacementUi, type DragData } from '../placement/PlacementContext'
import { AddLens, droppedFilePath } from './AddLens'
import { AddModel } from './AddModel'
import { GroupSettings } from './GroupSettings'

/** `124 M`, `1.2 B` parameters. */
export function formatParameters(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)} B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} M`
  return `${Math.round(n / 1e3)} k`
}

/** What the card says of the base model: architecture, size, dtypes. */
function baseLine(group: LibraryGroup): string | null {
  const b = group.base
  if (!b) return null
  const parts = [b.architecture]
  if (b.parameters !== null) parts.push(`${formatParameters(b.parameters)} params`)
  parts.push(
    b.checkpointDtype ? `${b.checkpointDtype} → runs in ${b.graphDtype}` : `runs in ${b.graphDtype}`
  )
  return parts.join(' · ')
}

function GroupCard({ group }: { group: LibraryGroup }): JSX.Element {
  const { activeDragId } = usePlacementUi()
  const id = dragIds.group(group.groupId)
  const data: DragData = { kind: 'group', groupId: group.groupId, label: `group ${group.name}` }
  const broken = group.status === 'broken'
  const { attributes, listeners, setNodeRef } = useDraggable({ id, data, disabled: broken })
  const size = group.measuredBytes ?? group.estimatedBytes
  // Lenses join groups of the models folder; in Electron a .pt dropped on the card fills the form.
  const canAddLens = group.source === 'folder' && !broken
  const canDrop = canAddLens && window.api?.pathForFile !== undefined
  const [dropped, setDropped] = useState<string | null>(null)
  return (
    <li
      className={`group-card${broken ? ' group-card--broken' : ''}${activeDragId === id ? ' group-card--dragging' : ''}`}
      data-testid="group-card"
      data-group-id={group.groupId}
      onDragOver={(e) => {
        if (canDrop && e.dataTransfer.types.includes('Files')) e.preventDefault()
      }}
      onDrop={(e) => {
        if (!canDrop) return
        e.preventDefault()
        setDropped(droppedFilePath(e))
      }}
    >
      <div
        className="group-card__grip"
        ref={setNodeRef}
        {...listeners}
        {...attributes}
        aria-label={
          broken
            ? `${group.name} (broken, cannot be placed)`
            : `Place group ${group.name} on a device`
        }
        data-testid="group-drag-handle"
      >
        <span className="group-card__dots" aria-hidden="true">
          ⠿
        </span>
        <strong className="group-card__name">{group.name}</strong>
        <span className="badge">{group.source}</span>
        {group.settings?.preload && (
          <span className="badge" data-testid="group-preload" title="Loaded at every start">
            preload
          </span>
        )}
      </div>
      {baseLine(group) && (
        <div className="group-card__meta" data-testid="group-base">
          {baseLine(group)}
        </div>
      )}
      <div className="group-card__meta">
        {group.estimatedBytesByKind && group.measuredBytes === null && (
          <span
            title="weights as loaded plus one batch at the device's rows budget"
            data-testid="group-estimate"
          >
            ~{formatBytes(group.estimatedBytesByKind.cpu)} on a CPU ·{' '}
            {formatBytes(group.estimatedBytesByKind.gpu)} on a GPU (estimated)
          </span>
        )}
        {size !== null && (group.measuredBytes !== null || !group.estimatedBytesByKind) && (
          <span
            title={
              group.measuredBytes !== null ? 'measured on a previous load' : "the bundle's estimate"
            }
          >
            ~{formatBytes(size)} {group.measuredBytes !== null ? 'measured' : 'estimated'}
          </span>
        )}
        {group.loadedOn.length > 0 && <span> · on {group.loadedOn.join(', ')}</span>}
      </div>
      {group.status === 'ok' && group.lenses.length === 0 && (
        <p className="muted small" data-testid="group-no-lens">
          No lens yet: generation and chat run on the base.
        </p>
      )}
      {group.lenses.length > 0 && (
        <ul className="group-card__lenses">
          {group.lenses.map((l) => (
            <li key={l.id}>
              {l.name} <span className="muted">layer {l.layer}</span>
            </li>
          ))}
        </ul>
      )}
      <GroupSettings group={group} />
      {canAddLens && <AddLens group={group} dropped={dropped} />}
      {group.errors.map((e, i) => (
        <p key={i} className="group-card__error" role="alert">
          {e.file ? <code>{e.file}</code> : null} {e.message}
        </p>
      ))}
    </li>
  )
}

/** The model library: one card per group, each draggable onto a device card. */
export function LibraryPanel(): JSX.Element {
  const library = useAppStore((s) => s.manager.snapshot?.library)
  const [rescanning, setRescanning] = useState(false)
  return (
    <section className="library" aria-label="Model library" data-testid="library">
      <header className="panel-head">
        <h2 className="section-title">Model library</h2>
        <button
          type="button"
          className="button button--small"
          disabled={rescanning}
          onClick={() => {
            setRescanning(true)
            call('models:list', { rescan: true })
              .catch((err: unknown) => reportError('rescan', errorOf(err)))
              .finally(() => setRescanning(false))
          }}
        >
          {rescanning ? 'Scanning…' : 'Rescan'}
        </button>
      </header>
      {!library ? (
        <p className="empty">Starting the device manager…</p>
      ) : (
        <>
          <p className="muted small" title={library.folder}>
            Folder: {library.folder}
          </p>
          {library.folderError && <p className="group-card__error">{library.folderError}</p>}
          <AddModel />
          <ul className="group-list">
            {library.groups.map((g) => (
              <GroupCard key={g.groupId} group={g} />
            ))}
          </ul>
        </>
      )}
    </section>
  )
}
