import { createContext, useContext } from 'react'
import type { FitEstimate } from '@shared/domain/devices'

/** What the card under a dragged group shows: the manager's fit estimate, or why there is none. */
export interface FitPreview {
  deviceId: string
  groupId: string
  /** Moving a placed group from this device (null: loading it from the library). */
  fromDeviceId: string | null
  estimate: FitEstimate | null
  error: string | null
}

export interface PlacementUi {
  preview: FitPreview | null
  /** The last placement error per device card (shown on that card until the next action). */
  cardErrors: Record<string, string>
  /** Drag ids currently dragged (for styling the source). */
  activeDragId: string | null
  dismissError(deviceId: string): void
}

export const PlacementContext = createContext<PlacementUi>({
  preview: null,
  cardErrors: {},
  activeDragId: null,
  dismissError: () => undefined
})

export function usePlacementUi(): PlacementUi {
  return useContext(PlacementContext)
}

export const dragIds = {
  group: (groupId: string): string => `group:${groupId}`,
  placed: (deviceId: string, groupId: string): string => `placed:${deviceId}:${groupId}`,
  device: (deviceId: string): string => `device:${deviceId}`
}

export type DragData =
  | { kind: 'group'; groupId: string; label: string }
  | { kind: 'placed'; groupId: string; fromDeviceId: string; label: string }

export type DropData = { kind: 'device'; deviceId: string; label: string }
