import {
  DndContext,
  DragOverlay,
  KeyboardSensor,
  PointerSensor,
  pointerWithin,
  rectIntersection,
  useSensor,
  useSensors,
  type Announcements,
  type CollisionDetection,
  type DragEndEvent,
  type DragOverEvent,
  type DragStartEvent,
  type KeyboardCoordinateGetter
} from '@dnd-kit/core'
import { useCallback, useMemo, useRef, useState, type JSX, type ReactNode } from 'react'
import type { FitEstimate } from '@shared/domain/devices'
import { call, errorOf } from '../../ipc/client'
import { humanError } from '../../lib/humanErrors'
import { announce } from '../../store'
import { PlacementContext, type DragData, type DropData, type FitPreview } from './PlacementContext'

/** Pointer first (what the mouse is over); the keyboard has no pointer, so overlap decides. */
const collision: CollisionDetection = (args) => {
  const byPointer = pointerWithin(args)
  return byPointer.length > 0 ? byPointer : rectIntersection(args)
}

/**
 * Arrow keys jump the picked-up group from one device card to the next instead of nudging it by
 * pixels, so keyboard placement takes one key press per card.
 */
const jumpBetweenCards: KeyboardCoordinateGetter = (event, { context }) => {
  const forward = event.code === 'ArrowRight' || event.code === 'ArrowDown'
  const backward = event.code === 'ArrowLeft' || event.code === 'ArrowUp'
  if (!forward && !backward) return undefined
  event.preventDefault()
  const targets = context.droppableContainers
    .getEnabled()
    .map((c) => ({ id: c.id, rect: context.droppableRects.get(c.id) }))
    .filter((t): t is { id: typeof t.id; rect: NonNullable<typeof t.rect> } => t.rect !== undefined)
    .sort((a, b) => a.rect.top - b.rect.top || a.rect.left - b.rect.left)
  if (targets.length === 0) return undefined
  const at = targets.findIndex((t) => t.id === context.over?.id)
  const n = targets.length
  const next = targets[at < 0 ? (forward ? 0 : n - 1) : (at + (forward ? 1 : -1) + n) % n]
  if (!next) return undefined
  const size = context.collisionRect ?? { width: 40, height: 20 }
  return {
    x: next.rect.left + next.rect.width / 2 - size.width / 2,
    y: next.rect.top + next.rect.height / 2 - size.height / 2
  }
}

function verdictSentence(e: FitEstimate): string {
  switch (e.verdict) {
    case 'loaded':
      return `${e.groupId} is already on ${e.deviceId}`
    case 'fits':
      return `${e.groupId} fits on ${e.deviceId}`
    case 'fits_after_evicting':
      return `${e.groupId} fits on ${e.deviceId} after evicting ${e.evictions.map((x) => x.groupId).join(', ')}`
    case 'does_not_fit':
      return `${e.groupId} does not fit on ${e.deviceId}: ${e.reason}`
  }
}

/**
 * Drag a library group onto a device card (load) or a placed group onto another card (move). While
 * hovering, the card shows the manager's estimate; the drop starts the job and the card follows its
 * stages from `devices:changed`. Everything works with the keyboard: Space picks up, arrows move
 * between cards, Space drops, Escape cancels; each step is announced.
 */
export function PlacementDnd({ children }: { children: ReactNode }): JSX.Element {
  const [preview, setPreview] = useState<FitPreview | null>(null)
  const [cardErrors, setCardErrors] = useState<Record<string, string>>({})
  const [active, setActive] = useState<DragData | null>(null)
  const [activeDragId, setActiveDragId] = useState<string | null>(null)
  const estimates = useRef(new Map<string, FitEstimate>())
  const previewKey = useRef('')

  const sensors = useSensors(
    useSensor(PointerSensor, { activationConstraint: { distance: 4 } }),
    useSensor(KeyboardSensor, { coordinateGetter: jumpBetweenCards })
  )

  const showPreview = useCallback((drag: DragData, drop: DropData | null) => {
    if (!drop) {
      previewKey.current = ''
      setPreview(null)
      return
    }
    const key = `${drag.groupId}@${drop.deviceId}`
    previewKey.current = key
    const fromDeviceId = drag.kind === 'placed' ? drag.fromDeviceId : null
    const base = { deviceId: drop.deviceId, groupId: drag.groupId, fromDeviceId }
    const cached = estimates.current.get(key)
    setPreview({ ...base, estimate: cached ?? null, error: null })
    if (cached) return
    call('models:estimate', { groupId: drag.groupId, deviceId: drop.deviceId }).then(
      (estimate) => {
        estimates.current.set(key, estimate)
        if (previewKey.current === key) {
          setPreview({ ...base, estimate, error: null })
          announce(verdictSentence(estimate))
        }
      },
      (err: unknown) => {
        if (previewKey.current === key)
          setPreview({ ...base, estimate: null, error: humanError(errorOf(err)).message })
      }
    )
  }, [])

  const onDragStart = useCallback((event: DragStartEvent) => {
    estimates.current.clear()
    setActive((event.active.data.current as DragData | undefined) ?? null)
    setActiveDragId(String(event.active.id))
  }, [])

  const onDragOver = useCallback(
    (event: DragOverEvent) => {
      const drag = event.active.data.current as DragData | undefined
      const drop = (event.over?.data.current as DropData | undefined) ?? null
      if (drag) showPreview(drag, drop)
    },
    [showPreview]
  )

  const finish = useCallback(() => {
    previewKey.current = ''
    setPreview(null)
    setActive(null)
    setActiveDragId(null)
  }, [])

  const onDragEnd = useCallback(
    (event: DragEndEvent) => {
      const drag = event.active.data.current as DragData | undefined
      const drop = event.over?.data.current as DropData | undefined
      const estimate =
        drag && drop ? estimates.current.get(`${drag.groupId}@${drop.deviceId}`) : undefined
      finish()
      if (!drag || !drop) return
      if (drag.kind === 'placed' && drag.fromDeviceId === drop.deviceId) return
      if (estimate?.verdict === 'loaded') return
      const deviceId = drop.deviceId
      setCardErrors(({ [deviceId]: _cleared, ...rest }) => rest)
      if (estimate?.verdict === 'does_not_fit') {
        setCardErrors((e) => ({
          ...e,
          [deviceId]: `${drag.groupId} does not fit: ${estimate.reason}`
        }))
        return
      }
      const action =
        drag.kind === 'placed'
          ? call('models:move', {
              groupId: drag.groupId,
              fromDeviceId: drag.fromDeviceId,
              toDeviceId: deviceId,
              wait: false
            })
          : call('models:load', { groupId: drag.groupId, deviceId, wait: false })
      announce(`${drag.kind === 'placed' ? 'Moving' : 'Loading'} ${drag.groupId} on ${deviceId}`)
      action.catch((err: unknown) => {
        const message = humanError(errorOf(err)).message
        setCardErrors((e) => ({ ...e, [deviceId]: message }))
        announce(`Could not place ${drag.groupId} on ${deviceId}: ${message}`)
      })
    },
    [finish]
  )

  const announcements = useMemo<Announcements>(
    () => ({
      onDragStart: ({ active: a }) =>
        `Picked up ${(a.data.current as DragData | undefined)?.label ?? a.id}. Use the arrow keys to move between devices, Space to place it, Escape to cancel.`,
      onDragOver: ({ active: a, over }) =>
        over
          ? `${(a.data.current as DragData | undefined)?.label ?? a.id} is over ${(over.data.current as DropData | undefined)?.label ?? over.id}. Checking whether it fits.`
          : `${(a.data.current as DragData | undefined)?.label ?? a.id} is not over a device.`,
      onDragEnd: ({ active: a, over }) =>
        over
          ? `Dropped ${(a.data.current as DragData | undefined)?.label ?? a.id} on ${(over.data.current as DropData | undefined)?.label ?? over.id}.`
          : `Dropped ${(a.data.current as DragData | undefined)?.label ?? a.id} outside the devices; nothing changed.`,
      onDragCancel: ({ active: a }) =>
        `Placement of ${(a.data.current as DragData | undefined)?.label ?? a.id} cancelled.`
    }),
    []
  )

  const ui = useMemo(
    () => ({
      preview,
      cardErrors,
      activeDragId,
      dismissError: (deviceId: string) => setCardErrors(({ [deviceId]: _gone, ...rest }) => rest)
    }),
    [preview, cardErrors, activeDragId]
  )

  return (
    <DndContext
      sensors={sensors}
      collisionDetection={collision}
      onDragStart={onDragStart}
      onDragOver={onDragOver}
      onDragEnd={onDragEnd}
      onDragCancel={finish}
      accessibility={{
        announcements,
        screenReaderInstructions: {
          draggable:
            'To place this group, press Space to pick it up, the arrow keys to move between device cards, and Space again to drop it. Escape cancels.'
        }
      }}
    >
      <PlacementContext.Provider value={ui}>{children}</PlacementContext.Provider>
      <DragOverlay dropAnimation={null}>
        {active ? (
          <div className="drag-chip" data-testid="drag-overlay">
            {active.label}
          </div>
        ) : null}
      </DragOverlay>
    </DndContext>
  )
}
