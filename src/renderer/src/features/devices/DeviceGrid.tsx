import type { JSX } from 'react'
import { useShallow } from 'zustand/react/shallow'
import { useAppStore } from '../../store'
import { selectDevices } from '../../store/selectors'
import { DeviceCard } from './DeviceCard'

export function DeviceGrid(): JSX.Element {
  // The selector builds a new array each time: compare its items, not its identity.
  const devices = useAppStore(useShallow(selectDevices))
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
