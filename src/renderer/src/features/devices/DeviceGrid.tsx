import type { JSX } from 'react'
import { useAppStore } from '../../store'
import { selectDevices } from '../../store/selectors'
import { DeviceCard } from './DeviceCard'

export function DeviceGrid(): JSX.Element {
  const devices = useAppStore(selectDevices)
  const gpuNote = useAppStore((s) => s.system.snapshot?.gpuNote)
  return (
    <section className="device-grid-section" aria-label="Devices">
      <div className="device-grid" data-testid="device-grid">
        {devices.map((device) => (
          <DeviceCard key={device.id} device={device} />
        ))}
      </div>
      {gpuNote && (
        <p className="note" data-testid="gpu-note">
          {gpuNote}
        </p>
      )}
    </section>
  )
}
