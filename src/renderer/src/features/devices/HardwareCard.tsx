import type { JSX } from 'react'
import { clampFraction, formatBytes, formatLoad, formatPercent } from '../../lib/format'
import type { DeviceView } from '../../store/selectors'

function UsageBar({ label, fraction }: { label: string; fraction: number }): JSX.Element {
  const clamped = clampFraction(fraction)
  return (
    <div
      className="usage-bar"
      role="meter"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(clamped * 100)}
    >
      <div className="usage-bar__fill" style={{ width: `${clamped * 100}%` }} />
    </div>
  )
}

function Figure({
  name,
  value,
  testId
}: {
  name: string
  value: string
  testId: string
}): JSX.Element {
  return (
    <div className="figure">
      <dt>{name}</dt>
      <dd data-testid={testId}>{value}</dd>
    </div>
  )
}

/** One device before the manager is up: what it is and how much of it is in use. */
export function HardwareCard({
  device,
  compact = false
}: {
  device: DeviceView
  compact?: boolean
}): JSX.Element {
  const usedBytes =
    device.kind === 'gpu'
      ? device.memoryUsedBytes
      : Math.max(0, device.memoryTotalBytes - device.memoryFreeBytes)
  const memoryFraction = device.memoryTotalBytes > 0 ? usedBytes / device.memoryTotalBytes : 0
  return (
    <article
      className={`device-card device-card--${device.kind}${compact ? ' device-card--compact' : ''}`}
      data-testid="device-card"
      data-device-id={device.id}
      data-memory-total-bytes={device.memoryTotalBytes}
      data-memory-free-bytes={device.memoryFreeBytes}
      aria-labelledby={`device-${device.id}-name`}
    >
      <header className="device-card__header">
        <span className="device-card__id" data-testid="device-id">
          {device.id}
        </span>
        <h2 className="device-card__name" id={`device-${device.id}-name`} data-testid="device-name">
          {device.name}
        </h2>
        {device.kind === 'gpu' && (
          <span className="device-card__uuid" title={device.uuid}>
            {device.uuid}
          </span>
        )}
      </header>
      {!compact && (
        <dl className="device-card__figures">
          {device.kind === 'cpu' && (
            <Figure name="Cores" value={String(device.cores)} testId="device-cores" />
          )}
          <Figure
            name="Memory"
            value={formatBytes(device.memoryTotalBytes)}
            testId="device-memory-total"
          />
          <Figure
            name="Free"
            value={formatBytes(device.memoryFreeBytes)}
            testId="device-memory-free"
          />
          <Figure name="Used" value={formatBytes(usedBytes)} testId="device-memory-used" />
          <Figure
            name={device.kind === 'cpu' ? 'Machine load (1 min)' : 'Utilisation'}
            value={
              device.kind === 'cpu'
                ? formatLoad(device.utilization, device.cores).text
                : formatPercent(device.utilization)
            }
            testId="device-utilization"
          />
        </dl>
      )}
      <UsageBar label={`${device.id} memory in use`} fraction={memoryFraction} />
    </article>
  )
}
