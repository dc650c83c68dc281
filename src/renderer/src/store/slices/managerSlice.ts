import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import type { HardwareState } from '@shared/domain/system'

/** Utilisation samples kept per device for the card's sparkline. */
export const SPARKLINE_WINDOW_MS = 60_000

export interface UtilisationSample {
  at: number
  value: number
}

export interface ManagerSlice {
  manager: {
    snapshot: DevicesSnapshot | null
    utilisation: Record<string, UtilisationSample[]>
  }
}

export const initialManagerSlice: ManagerSlice = { manager: { snapshot: null, utilisation: {} } }

export function receivedDevicesSnapshot(
  state: ManagerSlice,
  snapshot: DevicesSnapshot
): ManagerSlice {
  const current = state.manager.snapshot
  if (current && current.takenAt > snapshot.takenAt) return state
  return { manager: { ...state.manager, snapshot } }
}

/** The utilisation a device card shows: the machine's CPU load for CPU devices, the GPU's own for cuda:N. */
export function utilisationOf(hardware: HardwareState, deviceId: string): number | null {
  if (deviceId === 'cpu' || deviceId.startsWith('cpu:')) return hardware.cpu.utilization
  const index = Number(deviceId.split(':')[1])
  const gpu = hardware.gpus.find((g) => g.index === index)
  return gpu ? gpu.utilization : null
}

export function recordUtilisation(
  state: ManagerSlice,
  hardware: HardwareState,
  deviceIds: readonly string[]
): ManagerSlice {
  const at = hardware.takenAt
  const next: Record<string, UtilisationSample[]> = {}
  for (const id of deviceIds) {
    const value = utilisationOf(hardware, id)
    const kept = (state.manager.utilisation[id] ?? []).filter(
      (s) => at - s.at <= SPARKLINE_WINDOW_MS && s.at < at
    )
    next[id] = value === null ? kept : [...kept, { at, value }]
  }
  return { manager: { ...state.manager, utilisation: next } }
}
