import { useDraggable, useDroppable } from '@dnd-kit/core'
import type { JSX } from 'react'
import type { JobState } from '@shared/domain/jobs'
import type { ManagedDevice, Placement } from '@shared/domain/devices'
import type { HardwareState } from '@shared/domain/system'
import { call, errorOf } from '../../ipc/client'
import { reportError, useAppStore } from '../../store'
import { utilisationOf, type UtilisationSample } from '../../store/slices/managerSlice'
import { clampFraction, formatBytes, formatLoad, formatPercent } from '../../lib/format'
import {
  dragIds,
  usePlacementUi,
  type DragData,
  type DropData
} from '../placement/PlacementContext'
import { Sparkline } from './Sparkline'

const NO_SAMPLES: UtilisationSample[] = []

/** How the device's budget splits: this app's groups, other processes, free. */
export function memorySplit(
  device: ManagedDevice,
  hardware: HardwareState | null
): { app: number; other: number; free: number; total: number } {
  const total = device.budgetBytes
  const app = Math.min(total, device.usedBytes)
  let free = total - app
  if (hardware) {
    if (device.kind === 'gpu') {
      const gpu = hardware.gpus.find((g) => `cuda:${g.index}` === device.id)
      if (gpu) free = Math.min(free, Math.max(0, gpu.memoryFreeBytes))
    } else {
      // A CPU budget is a share of the machine's RAM: what other processes take shrinks it.
      free = Math.min(free, Math.max(0, hardware.cpu.memoryFreeBytes))
    }
  }
  return { app, other: Math.max(0, total - app - free), free, total }
}

/**
 * The device's memory budget and how it splits. One figure per meaning: "groups" is what placement
 * counts for the groups placed here (the same figure each group chip shows), "other" what other
 * processes take out of the budget, "free" what is left of it.
 */
function MemoryBar({
  device,
  hardware,
  compact
}: {
  device: ManagedDevice
  hardware: HardwareState | null
  compact: boolean
}): JSX.Element {
  const { app, other, free, total } = memorySplit(device, hardware)
  const pct = (v: number): string => `${total > 0 ? (v / total) * 100 : 0}%`
  const label = `${device.id} memory budget ${formatBytes(total)}: ${formatBytes(app)} placed groups, ${formatBytes(other)} other processes, ${formatBytes(free)} free`
  return (
    <div className={`memory${compact ? ' memory--compact' : ''}`} title={label}>
      <div className="memory-bar" role="img" aria-label={label} data-testid="memory-bar">
        <div className="memory-bar__app" style={{ width: pct(app) }} />
        <div className="memory-bar__other" style={{ width: pct(other) }} />
      </div>
      {compact ? (
        <span className="memory-legend" data-testid="memory-summary">
          <strong>{formatBytes(app)}</strong>&nbsp;of {formatBytes(total)} budget
        </span>
      ) : (
        <div className="memory-legend" data-testid="memory-summary">
          <span className="swatch swatch--app" /> groups {formatBytes(app)}
          <span className="swatch swatch--other" /> other processes {formatBytes(other)}
          <span className="swatch swatch--free" /> free {formatBytes(free)}
          <span className="memory-legend__total" data-testid="device-budget">
            budget {formatBytes(total)}
          </span>
        </div>
      )}
    </div>
  )
}

function PlacementChip({
  device,
  placement,
  loadJob,
  lenses,
  replica,
  preload,
  compact
}: {
  device: ManagedDevice
  placement: Placement
  loadJob: JobState | undefined
  lenses: string[]
  /** This copy's number among the group's devices, when it is on more than one. */
  replica: { index: number; count: number } | null
  preload: boolean
  compact: boolean
}): JSX.Element {
  const { activeDragId } = usePlacementUi()
  const id = dragIds.placed(device.id, placement.groupId)
  const data: DragData = {
    kind: 'placed',
    groupId: placement.groupId,
    fromDeviceId: device.id,
    label: `${placement.groupId} (on ${device.id})`
  }
  const { attributes, listeners, setNodeRef } = useDraggable({
    id,
    data,
    disabled: placement.state !== 'ready'
  })
  const act = (run: () => Promise<unknown>, what: string): void => {
    run().catch((err: unknown) =>
      reportError(`${what} ${placement.groupId} on ${device.id}`, errorOf(err))
    )
  }
  const progress = loadJob?.progress
  return (
    <li
      className={`placement placement--${placement.state}${activeDragId === id ? ' placement--dragging' : ''}`}
      data-testid="placement"
      data-group-id={placement.groupId}
      data-state={placement.state}
    >
      <div className="placement__head">
        <button
          type="button"
          className="placement__handle"
          ref={setNodeRef}
          {...listeners}
          {...attributes}
          aria-label={`Move ${placement.groupId} to another device`}
          title="Drag to another device to move"
        >
          ⠿
        </button>
        <strong className="placement__name">{placement.groupId}</strong>
        <span className={`badge badge--${placement.state}`} data-testid="placement-state">
          {placement.state}
        </span>
        {placement.pinned && <span className="badge badge--pinned">pinned</span>}
        {replica && (
          <span className="badge" data-testid="placement-replica">
            replica {replica.index} of {replica.count}
          </span>
        )}
        {preload && (
          <span className="badge" data-testid="placement-preload" title="Loaded at every start">
            preload
          </span>
        )}
      </div>
      {!compact && lenses.length > 0 && (
        <div className="placement__lenses">lenses: {lenses.join(', ')}</div>
      )}
      <div
        className="placement__bytes"
        data-testid="placement-bytes"
        title={`bundle estimate ${formatBytes(placement.estimatedBytes)}; measured at load ${placement.measuredBytes === null ? '—' : formatBytes(placement.measuredBytes)}; placement counts ${formatBytes(placement.countedBytes)}`}
      >
        {compact || placement.measuredBytes === null ? (
          <>
            {formatBytes(placement.countedBytes)}{' '}
            {placement.measuredBytes === null ? 'estimated' : 'measured'}
          </>
        ) : (
          // Both figures, so a wrong estimate is visible where placement decisions are made.
          <>
            {formatBytes(placement.measuredBytes)} measured · estimate{' '}
            {formatBytes(placement.estimatedBytes)}
          </>
        )}
        {!compact && placement.loadMs !== null && (
          <> · loaded in {(placement.loadMs / 1000).toFixed(1)} s</>
        )}
      </div>
      {placement.state === 'loading' && (
        <div className="placement__stage" data-testid="load-stage" role="status">
          {loadJob?.stage ?? 'queued'}
          {progress && progress.rowsTotal > 0 && (
            <progress
              max={progress.rowsTotal}
              value={progress.rowsDone}
              aria-label="load progress"
            />
          )}
        </div>
      )}
      {placement.error && (
        <div className="placement__error" role="alert">
          {placement.error}
        </div>
      )}
      <div className="placement__actions">
        {!compact && (
          <label className="toggle">
            <input
              type="checkbox"
              checked={placement.pinned}
              disabled={placement.state !== 'ready'}
              onChange={(e) =>
                act(
                  () =>
                    call('models:pin', {
                      groupId: placement.groupId,
                      deviceId: device.id,
                      pinned: e.target.checked
                    }),
                  'pin'
                )
              }
            />
            pin
          </label>
        )}
        <button
          type="button"
          className="button button--small"
          disabled={placement.state !== 'ready' || placement.pinned}
          title={placement.pinned ? 'Unpin first' : 'Unload from this device'}
          aria-label={`Unload ${placement.groupId} from ${device.id}`}
          onClick={() =>
            act(
              () => call('models:unload', { groupId: placement.groupId, deviceId: device.id }),
              'unload'
            )
          }
        >
          {compact ? '×' : 'Unload'}
        </button>
      </div>
    </li>
  )
}

function statusText(device: ManagedDevice, queued: number): string {
  switch (device.status) {
    case 'busy':
      return queued > 0 ? `busy · ${queued} queued` : 'busy'
    case 'ready':
      return 'idle'
    default:
      return device.status
  }
}

/** The device's load: the machine's CPU load over its cores for CPU devices, the GPU's own for cuda:N. */
function loadOf(
  device: ManagedDevice,
  hardware: HardwareState | null
): { text: string; fraction: number; title: string } {
  const utilisation = hardware ? utilisationOf(hardware, device.id) : null
  if (utilisation === null || !hardware) return { text: '—', fraction: 0, title: 'no reading yet' }
  if (device.kind === 'cpu') {
    const { text, fraction } = formatLoad(utilisation, hardware.cpu.cores)
    return {
      text,
      fraction,
      title: `1-minute load average of the whole machine (${hardware.cpu.cores} cores), shared by every CPU device`
    }
  }
  return {
    text: formatPercent(utilisation),
    fraction: clampFraction(utilisation),
    title: 'GPU utilisation (nvidia-smi)'
  }
}

/**
 * One device the manager runs: memory budget, load, what is placed there, and the drop target.
 * `compact`: the strip above the results (status, load, budget, placed groups, the fit preview);
 * the full card adds the figures, the sparkline and the placement details.
 */
export function DeviceCard({
  device,
  compact = false
}: {
  device: ManagedDevice
  compact?: boolean
}): JSX.Element {
  const hardware = useAppStore((s) => s.system.snapshot)
  const samples = useAppStore((s) => s.manager.utilisation[device.id] ?? NO_SAMPLES)
  const queue = useAppStore((s) => s.manager.snapshot?.queue)
  const library = useAppStore((s) => s.manager.snapshot?.library)
  const { preview, cardErrors, dismissError } = usePlacementUi()
  const drop: DropData = {
    kind: 'device',
    deviceId: device.id,
    label: `device ${device.id} (${device.name})`
  }
  const { setNodeRef, isOver } = useDroppable({ id: dragIds.device(device.id), data: drop })
  const myPreview = preview?.deviceId === device.id ? preview : null
  const queued =
    queue?.jobs.filter(
      (j) =>
        j.status === 'queued' &&
        (j.requestedDeviceId === device.id || j.devices.includes(device.id))
    ).length ?? 0
  const loadJobs =
    queue?.jobs.filter(
      (j) =>
        j.kind === 'load' &&
        (j.status === 'loading' || j.status === 'running' || j.status === 'queued')
    ) ?? []
  const load = loadOf(device, hardware)
  const cardError = cardErrors[device.id]
  return (
    <article
      ref={setNodeRef}
      className={`device-card device-card--${device.kind}${compact ? ' device-card--compact' : ''}${isOver ? ' device-card--over' : ''}${myPreview?.estimate ? ` device-card--${myPreview.estimate.verdict}` : ''}`}
      data-testid="device-card"
      data-device-id={device.id}
      data-status={device.status}
      data-memory-total-bytes={
        device.kind === 'cpu' ? hardware?.cpu.memoryTotalBytes : device.budgetBytes
      }
      data-memory-free-bytes={device.kind === 'cpu' ? hardware?.cpu.memoryFreeBytes : undefined}
      aria-labelledby={`device-${device.id}-name`}
    >
      <header className="device-card__header">
        <span className="device-card__id" data-testid="device-id">
          {device.id}
        </span>
        <span className="badge badge--ep" data-testid="device-provider" title="execution provider">
          {device.provider ?? 'no provider'}
        </span>
        <span
          className={`badge badge--status badge--${device.status}`}
          data-testid="device-status"
          role="status"
        >
          {statusText(device, queued)}
        </span>
        {compact && (
          <span className="device-card__load" title={load.title}>
            {device.kind === 'cpu' ? 'load ' : ''}
            <span data-testid="device-utilization">{load.text}</span>
          </span>
        )}
        <h2
          className="device-card__name"
          id={`device-${device.id}-name`}
          data-testid="device-name"
          title={device.name}
        >
          {device.name}
        </h2>
      </header>
      {!compact && device.statusDetail && (
        <p className="device-card__detail">{device.statusDetail}</p>
      )}
      {device.providerError && (
        <p className="device-card__error" role="alert" title={device.providerError}>
          {device.providerError}
        </p>
      )}
      {!compact && (
        <dl className="device-card__figures">
          {device.kind === 'cpu' && hardware && (
            <div className="figure">
              <dt>Cores</dt>
              <dd data-testid="device-cores">{hardware.cpu.cores}</dd>
            </div>
          )}
          {device.kind === 'cpu' && hardware && (
            <div className="figure">
              <dt>Machine RAM</dt>
              <dd data-testid="device-memory-total">
                {formatBytes(hardware.cpu.memoryTotalBytes)}
              </dd>
            </div>
          )}
          <div className="figure">
            <dt>Threads</dt>
            <dd>{device.threads || 'auto'}</dd>
          </div>
          <div className="figure">
            <dt title="resident memory of this device's worker process above its idle baseline (what the OS reports; placement counts the groups' figures)">
              Worker RSS
            </dt>
            <dd>{device.processBytes === null ? '—' : `+${formatBytes(device.processBytes)}`}</dd>
          </div>
          <div className="figure">
            <dt title={load.title}>{device.kind === 'cpu' ? 'Machine load' : 'Utilisation'}</dt>
            <dd data-testid="device-utilization">{load.text}</dd>
          </div>
        </dl>
      )}
      <MemoryBar device={device} hardware={hardware} compact={compact} />
      {!compact && (
        <Sparkline
          samples={samples}
          label={`${device.id} ${device.kind === 'cpu' ? 'machine load' : 'utilisation'}`}
        />
      )}
      {myPreview && (
        <div
          className={`fit-preview fit-preview--${myPreview.estimate?.verdict ?? 'pending'}`}
          data-testid="fit-preview"
          data-verdict={myPreview.estimate?.verdict ?? (myPreview.error ? 'error' : 'pending')}
          role="status"
        >
          {myPreview.error
            ? myPreview.error
            : !myPreview.estimate
              ? `Checking whether ${myPreview.groupId} fits…`
              : previewText(myPreview.estimate)}
        </div>
      )}
      {cardError && (
        <div className="device-card__error" role="alert" data-testid="card-error">
          {cardError}
          <button
            type="button"
            className="link"
            onClick={() => dismissError(device.id)}
            aria-label="Dismiss"
          >
            ×
          </button>
        </div>
      )}
      {device.placements.length === 0 ? (
        !myPreview && (
          <p className="empty" data-testid="device-empty">
            Drag a group here to load it.
          </p>
        )
      ) : (
        <ul className="placements">
          {device.placements.map((p) => (
            <PlacementChip
              key={p.groupId}
              device={device}
              placement={p}
              compact={compact}
              loadJob={loadJobs.find(
                (j) =>
                  j.groupId === p.groupId &&
                  (j.devices.includes(device.id) || j.requestedDeviceId === device.id)
              )}
              lenses={
                library?.groups
                  .find((g) => g.groupId === p.groupId)
                  ?.lenses.map((l) => `${l.name} (L${l.layer})`) ?? []
              }
              {...replicaOf(
                library?.groups.find((g) => g.groupId === p.groupId),
                device.id
              )}
            />
          ))}
        </ul>
      )}
      {!compact && device.placements.length > 0 && (
        <button
          type="button"
          className="button button--small"
          data-testid="clear-device"
          disabled={device.placements.every((p) => p.pinned || p.state !== 'ready')}
          onClick={() => {
            const going = device.placements.filter((p) => !p.pinned && p.state === 'ready')
            const kept = device.placements.filter((p) => p.pinned)
            const question = `Unload ${going.map((p) => p.groupId).join(', ')} from ${device.id}?${kept.length ? ` Pinned ${kept.map((p) => p.groupId).join(', ')} stay.` : ''}`
            if (!window.confirm(question)) return
            call('devices:clear', { deviceId: device.id, force: false }).catch((err: unknown) =>
              reportError(`clear ${device.id}`, errorOf(err))
            )
          }}
        >
          Clear device
        </button>
      )}
      {!compact && device.lastUnload && !device.lastUnload.ok && (
        <p className="note">
          Last unload of {device.lastUnload.groupId} gave back{' '}
          {formatBytes(device.lastUnload.freedBytes)} of{' '}
          {formatBytes(device.lastUnload.expectedBytes)}.
        </p>
      )}
    </article>
  )
}

/** "replica 2 of 2" when the group is on several devices; its preload flag. */
function replicaOf(
  group: { loadedOn: string[]; settings?: { preload: boolean } } | undefined,
  deviceId: string
): { replica: { index: number; count: number } | null; preload: boolean } {
  const index = group ? group.loadedOn.indexOf(deviceId) : -1
  const count = group?.loadedOn.length ?? 0
  return {
    replica: count > 1 && index >= 0 ? { index: index + 1, count } : null,
    preload: group?.settings?.preload ?? false
  }
}

function previewText(
  e: NonNullable<import('../placement/PlacementContext').FitPreview['estimate']>
): string {
  const need = `needs ${formatBytes(e.requiredBytes)}, ${formatBytes(Math.max(0, e.budgetBytes - e.usedBytes))} free`
  switch (e.verdict) {
    case 'loaded':
      return `${e.groupId} is already here`
    case 'fits':
      return `Fits: ${need}`
    case 'fits_after_evicting':
      return `Fits after evicting ${e.evictions.map((x) => `${x.groupId} (${formatBytes(x.bytes)})`).join(', ')}`
    case 'does_not_fit':
      return `Does not fit: ${e.reason}`
  }
}
