import { z } from 'zod'
import {
  FitEstimateSchema,
  GroupSettingsSchema,
  PlacementSchema,
  ReplicaSettingsSchema
} from '../../domain/devices'
import { ModelLibrarySchema } from '../../domain/models'
import { DeviceIdSchema } from '../../domain/system'
import { defineInvoke } from '../define'

const GroupIdSchema = z.string().min(1).max(200)

/** Where a group ended up after a load or move. */
export const PlacementResultSchema = z.object({
  jobId: z.string(),
  deviceId: DeviceIdSchema,
  /** Null when `wait: false` (follow `jobs:changed` for the outcome). */
  placement: PlacementSchema.nullable()
})
export type PlacementResult = z.infer<typeof PlacementResultSchema>

export const UnloadResultSchema = z.object({
  unloaded: z.array(
    z.object({
      deviceId: DeviceIdSchema,
      /** Measured bytes the unload gave back, and whether that matches what the load took. */
      freedBytes: z.number(),
      expectedBytes: z.number(),
      memoryReturned: z.boolean()
    })
  )
})

/** Models domain: the library and where its groups are placed. */
export const modelsInvokes = {
  /** The library: every group of the models folder (broken ones with their errors) + the demo. */
  'models:list': defineInvoke(
    z
      .object({ rescan: z.boolean().default(false) })
      .strict()
      .optional(),
    ModelLibrarySchema
  ),
  /**
   * Load a group: on `deviceId`, or where placement chooses (a device holding it → one where it
   * fits → the least loaded, evicting least recently used unpinned groups if needed). Runs as a
   * `load` job in the fair queue; with `wait` (default) answers once it is loaded.
   */
  'models:load': defineInvoke(
    z
      .object({
        groupId: GroupIdSchema,
        deviceId: DeviceIdSchema.optional(),
        wait: z.boolean().default(true)
      })
      .strict(),
    PlacementResultSchema
  ),
  /**
   * Unload a group from `deviceId` (default: every device holding it). Pinned groups and groups a
   * running job uses are refused (`conflict`) unless `force` (which cancels those jobs first).
   */
  'models:unload': defineInvoke(
    z
      .object({
        groupId: GroupIdSchema,
        deviceId: DeviceIdSchema.optional(),
        force: z.boolean().default(false)
      })
      .strict(),
    UnloadResultSchema
  ),
  /** Pin (never evicted or moved automatically) or unpin a loaded group on a device. */
  'models:pin': defineInvoke(
    z.object({ groupId: GroupIdSchema, deviceId: DeviceIdSchema, pinned: z.boolean() }).strict(),
    PlacementSchema
  ),
  /** Move a group: load it on `toDeviceId`, then unload it from `fromDeviceId` (default: where it is). */
  'models:move': defineInvoke(
    z
      .object({
        groupId: GroupIdSchema,
        fromDeviceId: DeviceIdSchema.optional(),
        toDeviceId: DeviceIdSchema,
        wait: z.boolean().default(true)
      })
      .strict(),
    PlacementResultSchema
  ),
  /**
   * A group's replicas (`min`, `max`) and preload flag; omitted fields keep their value. Saved with
   * the placements; a preload group is loaded at the next start before any job runs.
   */
  'models:settings': defineInvoke(
    z
      .object({
        groupId: GroupIdSchema,
        replicas: ReplicaSettingsSchema.optional(),
        preload: z.boolean().optional()
      })
      .strict(),
    GroupSettingsSchema
  ),
  /** Will it fit? fits / fits after evicting X / does not fit and why — before any load. */
  'models:estimate': defineInvoke(
    z.object({ groupId: GroupIdSchema, deviceId: DeviceIdSchema }).strict(),
    FitEstimateSchema
  )
} as const
