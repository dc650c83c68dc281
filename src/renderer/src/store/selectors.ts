import type { CpuInfo, GpuInfo, ProviderProbe } from '@shared/domain/system'
import type { SystemSlice } from './slices/systemSlice'

export type DeviceView = CpuInfo | GpuInfo

const NO_DEVICES: DeviceView[] = []
const NO_PROVIDERS: ProviderProbe[] = []

/** CPU first, then GPUs by index: the order of the device cards. Use with `useShallow`. */
export function selectDevices(state: SystemSlice): DeviceView[] {
  const snapshot = state.system.snapshot
  if (!snapshot) return NO_DEVICES
  return [snapshot.cpu, ...[...snapshot.gpus].sort((a, b) => a.index - b.index)]
}

export function selectProviders(state: SystemSlice): ProviderProbe[] {
  return state.system.snapshot?.providers ?? NO_PROVIDERS
}
