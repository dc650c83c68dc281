import type { JSX } from 'react'
import { useShallow } from 'zustand/react/shallow'
import { useAppStore } from '../../store'
import { selectDevices } from '../../store/selectors'
import { DeviceCard } from './DeviceCard'
import { HardwareCard } from './HardwareCard'

function toggleExpanded(): void {
  useAppStore.setState((s) => ({ ui: { ...s.ui, devicesExpanded: !s.ui.devicesExpanded } }))
}

/**
 * The devices: a compact strip above the results (each card a drop target with its status, load,
 * budget and placed groups), or the full cards on demand. Drag-to-place works the same in both.
 */
export function DeviceGrid(): JSX.Element {
  const managed = useAppStore((s) => s.manager.snapshot?.devices)
  // Until the device manager answers, show what the machine has.
  const hardware = useAppStore(useShallow(selectDevices))
  const gpuNote = useAppStore((s) => s.system.snapshot?.gpuNote)
  const expanded = useAppStore((s) => s.ui.devicesExpanded)
  const nothingPlaced = managed ? managed.every((d) => d.placements.length === 0) : false
  const compact = !expanded
  return (
    <section
      className={`device-grid-section${compact ? ' device-grid-section--strip' : ''}`}
      aria-label="Devices"
    >
      <header className="device-grid-section__head">
        <h2 className="section-title">Devices</h2>
        {nothingPlaced && (
          <span className="devices-hint" data-testid="devices-empty">
            Drag a group onto a device to begin.
          </span>
        )}
        {gpuNote &&
          (compact ? (
            <span className="badge devices-gpu-note" data-testid="gpu-note" title={gpuNote}>
              no GPU listed<span className="visually-hidden">: {gpuNote}</span>
            </span>
          ) : (
            <span className="note devices-gpu-note" data-testid="gpu-note">
              {gpuNote}
            </span>
          ))}
        <button
          type="button"
          className="link devices-toggle"
          aria-expanded={expanded}
          onClick={toggleExpanded}
          data-testid="devices-toggle"
        >
          {expanded ? 'Compact view' : 'Device details'}
        </button>
      </header>
      <div className={compact ? 'device-strip' : 'device-grid'} data-testid="device-grid">
        {managed
          ? managed.map((device) => (
              <DeviceCard key={device.id} device={device} compact={compact} />
            ))
          : hardware.map((device) => (
              <HardwareCard key={device.id} device={device} compact={compact} />
            ))}
      </div>
    </section>
  )
}
