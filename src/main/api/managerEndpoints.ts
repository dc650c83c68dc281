/**
 * The predecessor's remaining /api/v2 routes (§3.2 of its description: models and groups lists,
 * device clear and memory, the deprecated /current and /switch, and the routes its docs promised:
 * /models/switch, /groups/{id}/preload, /models/memory, /models/{id}/info), plus the Workbench's
 * group settings. Every one goes through the Router like the rest of the table; bodies are the
 * predecessor's shapes (seedViews.ts), with the Workbench's fields added where it knows more.
 */
import { z } from 'zod'
import { ReplicaSettingsSchema, type ManagedDevice } from '@shared/domain/devices'
import type { DevicesSnapshot } from '@shared/ipc/channels/devices'
import type { HardwareState } from '@shared/domain/system'
import {
  defineEndpoint,
  type Endpoint,
  type EndpointAnswer,
  type EndpointContext
} from './endpoint'
import { fail } from './failures'
import { resolveLens } from './lensRef'
import { toDeviceId, DeviceRefSchema } from './names'
import {
  firstResidentModel,
  lensesOn,
  modelId,
  seedDeviceId,
  seedDeviceMemory,
  seedGroups,
  seedModelGroupsList,
  seedModelInfo,
  seedModels
} from './seedViews'

const GroupIdSchema = z.string().min(1).max(200)
const AnyJson = z.unknown()

/** The manager's snapshot (starting it if nothing has yet) and the hardware next to it. */
export async function stateOf(
  ctx: EndpointContext
): Promise<{ snapshot: DevicesSnapshot; hardware: HardwareState }> {
  const snapshot = await ctx.call('devices:state', undefined)
  const {
    devices: _d,
    library: _l,
    queue: _q,
    ...hardware
  } = await ctx.call('system:state', undefined)
  return { snapshot, hardware }
}

/** `{device_id}` of a path: a GPU index (`0` → cuda:0) or a device id; 404 when unknown. */
function deviceParam(snapshot: DevicesSnapshot, params: Record<string, string>): ManagedDevice {
  const ref = params.device_id ?? ''
  const id = /^\d+$/.test(ref) ? `cuda:${ref}` : ref
  const device = snapshot.devices.find((d) => d.id === id)
  if (!device) {
    fail(
      'not_found',
      `no device ${ref} (devices: ${snapshot.devices.map((d) => d.id).join(', ')})`,
      'device_id'
    )
  }
  return device
}

const wire = (body: unknown, status = 200): EndpointAnswer => ({ status, body, wire: true })

/** A load through `models:load` with the predecessor's answer (`load_model`'s dict). */
export async function loadModelAnswer(
  ctx: EndpointContext,
  ref: string,
  deviceId: string | undefined,
  message: (groupId: string, deviceId: string) => string
): Promise<Record<string, unknown>> {
  const lens = await resolveLens(ref, ctx)
  const result = await ctx.call(
    'models:load',
    { groupId: lens.groupId, deviceId, wait: true },
    { group_id: 'model_id' }
  )
  return {
    status: 'loaded',
    job_id: result.jobId,
    model_id: modelId(lens.groupId, lens.lensId),
    group_id: lens.groupId,
    device: result.deviceId,
    device_id: seedDeviceId(result.deviceId),
    message: message(lens.groupId, result.deviceId)
  }
}

const SwitchRequestSchema = z.strictObject({
  model_id: z.string().min(1).max(401),
  device_id: DeviceRefSchema.optional()
})

async function currentModel(ctx: EndpointContext): Promise<Record<string, unknown>> {
  const { snapshot } = await stateOf(ctx)
  const first = snapshot.devices[0]
  if (!first) return { status: 'no_devices' }
  const lenses = lensesOn(first, snapshot.library)
  const [groupId, lensId] = (lenses[0] ?? '').split('/')
  const info = groupId && lensId ? seedModelInfo(snapshot.library, groupId, lensId) : null
  if (!info) return { status: 'no_model_loaded', device: first.id }
  return { ...info, device_id: seedDeviceId(first.id), device: first.id }
}

export const managerEndpoints: readonly Endpoint[] = [
  defineEndpoint({
    method: 'GET',
    path: '/models',
    summary: 'Every lens ("model" of the predecessor) with the devices its group is loaded on',
    responses: [{ status: 200, schema: z.array(AnyJson), description: 'The lenses' }],
    errors: [401],
    async handle(_input, ctx) {
      const { snapshot } = await stateOf(ctx)
      return wire(seedModels(snapshot.library))
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/groups',
    summary: 'Every model group: lenses, memory estimate, where it is loaded, replicas, preload',
    responses: [{ status: 200, schema: z.array(AnyJson), description: 'The groups' }],
    errors: [401],
    async handle(_input, ctx) {
      const { snapshot } = await stateOf(ctx)
      return wire(seedGroups(snapshot.library))
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/model_groups',
    summary: "The WebSocket's model_groups_list message over HTTP",
    responses: [{ status: 200, schema: AnyJson, description: 'model_groups_list' }],
    errors: [401],
    async handle(_input, ctx) {
      const { snapshot } = await stateOf(ctx)
      return wire(
        seedModelGroupsList(
          snapshot.devices,
          snapshot.library,
          firstResidentModel(snapshot.devices, snapshot.library)
        )
      )
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/models/memory',
    summary: 'Memory of every device (as GET /devices/{device_id}/memory)',
    responses: [{ status: 200, schema: AnyJson, description: '{devices: [...]}' }],
    errors: [401],
    async handle(_input, ctx) {
      const { snapshot, hardware } = await stateOf(ctx)
      return wire({
        devices: snapshot.devices.map((d) => seedDeviceMemory(d, snapshot.library, hardware))
      })
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/models/{model_id}/info',
    summary: 'One lens: name, layer, batch ceiling, generation settings, where it is loaded',
    responses: [{ status: 200, schema: AnyJson, description: 'The model info' }],
    errors: [401, 404],
    async handle({ params }, ctx) {
      const lens = await resolveLens(params.model_id ?? '', ctx)
      const { snapshot } = await stateOf(ctx)
      return wire(seedModelInfo(snapshot.library, lens.groupId, lens.lensId))
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/devices/{device_id}/memory',
    summary: 'A device: budget, free, allocated, reserved (GB) and the lenses loaded',
    responses: [{ status: 200, schema: AnyJson, description: 'The memory figures' }],
    errors: [401, 404],
    async handle({ params }, ctx) {
      const { snapshot, hardware } = await stateOf(ctx)
      return wire(seedDeviceMemory(deviceParam(snapshot, params), snapshot.library, hardware))
    }
  }),
  defineEndpoint({
    method: 'DELETE',
    path: '/devices/{device_id}/clear',
    summary:
      'Unload every unpinned, idle group from a device (?force=true: pinned ones too, jobs using them cancelled)',
    responses: [{ status: 200, schema: AnyJson, description: 'What went and what stayed' }],
    errors: [401, 404, 503],
    async handle({ params, query }, ctx) {
      const { snapshot } = await stateOf(ctx)
      const device = deviceParam(snapshot, params)
      const forceText = query?.get('force') ?? 'false'
      if (!['true', 'false', '1', '0'].includes(forceText))
        fail('invalid_input', `force must be true or false, not ${forceText}`, 'force')
      const result = await ctx.call('devices:clear', {
        deviceId: device.id,
        force: forceText === 'true' || forceText === '1'
      })
      const went = result.unloaded.map((u) => u.groupId)
      return wire({
        status: 'cleared',
        device_id: seedDeviceId(device.id),
        device: device.id,
        unloaded: result.unloaded.map((u) => ({
          group_id: u.groupId,
          freed_bytes: u.freedBytes,
          expected_bytes: u.expectedBytes,
          memory_returned: u.memoryReturned
        })),
        kept: result.kept.map((k) => ({ group_id: k.groupId, reason: k.reason })),
        message: went.length
          ? `Cleared ${went.join(', ')} from ${device.id}${result.kept.length ? `; kept ${result.kept.map((k) => `${k.groupId} (${k.reason})`).join(', ')}` : ''}`
          : `Nothing to clear on ${device.id}${result.kept.length ? `; kept ${result.kept.map((k) => `${k.groupId} (${k.reason})`).join(', ')}` : ''}`
      })
    }
  }),
  defineEndpoint({
    method: 'GET',
    path: '/current',
    summary: 'Deprecated (as in the predecessor): the first lens loaded on the first device',
    responses: [{ status: 200, schema: AnyJson, description: 'The model info, or a status' }],
    errors: [401],
    async handle(_input, ctx) {
      return wire(await currentModel(ctx))
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/switch',
    summary: 'Deprecated (as in the predecessor): load a lens on the first device',
    request: SwitchRequestSchema.omit({ device_id: true }),
    responses: [{ status: 200, schema: AnyJson, description: 'Loaded' }],
    errors: [400, 401, 404, 409, 422, 503],
    async handle({ body }, ctx) {
      const { snapshot } = await stateOf(ctx)
      const first = snapshot.devices[0]?.id
      return wire(
        await loadModelAnswer(ctx, body.model_id, first, (g, d) => `Switched to ${g} on ${d}`)
      )
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/models/switch',
    summary: "Load a lens's group where placement chooses (or on device_id)",
    request: SwitchRequestSchema,
    responses: [{ status: 200, schema: AnyJson, description: 'Loaded' }],
    errors: [400, 401, 404, 409, 422, 503],
    async handle({ body }, ctx) {
      return wire(
        await loadModelAnswer(
          ctx,
          body.model_id,
          toDeviceId(body.device_id),
          (g, d) => `Switched to ${g} on ${d}`
        )
      )
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/groups/{group_id}/preload',
    summary: 'Mark a group preload (loaded at every start before any job) and load it now',
    responses: [{ status: 200, schema: AnyJson, description: 'Preloaded' }],
    errors: [401, 404, 422, 503],
    async handle({ params }, ctx) {
      const groupId = GroupIdSchema.safeParse(params.group_id)
      if (!groupId.success) fail('not_found', `no group ${params.group_id}`, 'group_id')
      const settings = await ctx.call('models:settings', { groupId: groupId.data, preload: true })
      const loaded = await ctx.call('models:load', { groupId: groupId.data, wait: true })
      return wire({
        group_id: groupId.data,
        preload: settings.preload,
        replicas: settings.replicas,
        device: loaded.deviceId,
        device_id: seedDeviceId(loaded.deviceId),
        job_id: loaded.jobId,
        message: `${groupId.data} is loaded on ${loaded.deviceId} and will be preloaded at every start`
      })
    }
  }),
  defineEndpoint({
    method: 'POST',
    path: '/groups/settings',
    summary:
      "A group's replicas {min, max} (max null: no limit) and preload flag; saved and restored at start",
    request: z.strictObject({
      group_id: GroupIdSchema,
      replicas: ReplicaSettingsSchema.optional(),
      preload: z.boolean().optional()
    }),
    responses: [{ status: 200, schema: AnyJson, description: 'The settings now' }],
    errors: [400, 401, 404],
    async handle({ body }, ctx) {
      const settings = await ctx.call('models:settings', {
        groupId: body.group_id,
        ...(body.replicas ? { replicas: body.replicas } : {}),
        ...(body.preload !== undefined ? { preload: body.preload } : {})
      })
      return wire({ group_id: body.group_id, ...settings })
    }
  })
]
