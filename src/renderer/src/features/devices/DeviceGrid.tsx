import type { JSX } from 'react'
import { useShallow } from 'zustand/react/shallow'
import { useAppStore } from '../../store'
import { selectDevices } from '../../store/selectors'
import { DeviceCard } from './DeviceCard'
import { HardwareCard } from './HardwareCard'

export function DeviceGrid(): JSX.Element {
  const managed = useAppStore((s) => s.manager.snapshot?.devices)
  // Until the device manager answers, show what the machine has.
  const hardware = useAppStore(useShallow(selectDevices))
  const gpuNote = useAppStore((s) => s.system.snapshot?.gpuNote)
  const nothingPlaced = managed ? managed.every((d) => d.placements.length === 0) : false
  return (
    <section className="device-grid-section" aria-label="Devices">
      <h2 className="section-title">Devices</h2>
      {nothingPlaced && (
        <p className="empty empty--hero" data-testid="devices-empty">
          Drag a group onto a device to begin.
        </p>
      )}
      <div className="device-grid" data-testid="device-grid">
        {managed
          ? managed.map((device) => <DeviceCard key={device.id} device={device} />)
          : hardware.map((device) => <HardwareCard key={device.id} device={device} />)}
      </div>
      {gpuNote && (
        <p className="note" data-testid="gpu-note">
          {gpuNote}
        </p>
      )}
    </section>
  )
}
