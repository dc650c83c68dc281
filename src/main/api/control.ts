/**
 * The predecessor's WebSocket control messages (`switch_model`, `load_model`, `load_group`,
 * `clear_device`, `get_model_info`, `list_model_groups`, `list_models`, `preload_group`,
 * `unload_group`) and their replies with its shapes. Each runs the /api/v2 endpoint that does the
 * same over HTTP (one handler, one validation, one error translation); both sockets, /api/v2/ws
 * and the predecessor's /ws, call `runControl`.
 */
import { z } from 'zod'
import { describeZodError, type SerializedError } from '@shared/ipc/errors'
import { matchEndpoint, type EndpointContext } from './endpoint'
import { endpoints } from './endpoints'
import { ApiFailure, toApiFailure } from './failures'
import { resolveLens } from './lensRef'
import { DeviceRefSchema, toWire } from './names'
import { stateOf } from './managerEndpoints'
import {
  GENERATION_CONFIG,
  firstResidentModel,
  seedModelGroupsList,
  seedModelInfo,
  seedModels,
  type CurrentModel
} from './seedViews'

const ModelRef = z.string().min(1).max(401)
const GroupRef = z.string().min(1).max(200)

/** The control messages; `strict` for /api/v2/ws, extra keys ignored on /ws (as the predecessor did). */
function controlShapes(strict: boolean) {
  const obj = <S extends z.ZodRawShape>(shape: S) =>
    strict ? z.strictObject(shape) : z.looseObject(shape)
  const switchModel = { model_id: ModelRef, group_id: GroupRef.optional() }
  return {
    switch_model: obj({ type: z.literal('switch_model'), ...switchModel }),
    switch_model_grouped: obj({ type: z.literal('switch_model_grouped'), ...switchModel }),
    load_model: obj({
      type: z.literal('load_model'),
      model_id: ModelRef,
      device_id: DeviceRefSchema.nullable().optional()
    }),
    load_group: obj({
      type: z.literal('load_group'),
      group_id: GroupRef,
      device_id: DeviceRefSchema.nullable().optional()
    }),
    clear_device: obj({
      type: z.literal('clear_device'),
      device_id: DeviceRefSchema,
      force: z.boolean().optional()
    }),
    get_model_info: obj({ type: z.literal('get_model_info'), model_id: ModelRef }),
    list_model_groups: obj({
      type: z.literal('list_model_groups'),
      refresh: z.boolean().optional()
    }),
    list_models: obj({ type: z.literal('list_models'), refresh: z.boolean().optional() }),
    preload_group: obj({ type: z.literal('preload_group'), group_id: GroupRef }),
    unload_group: obj({
      type: z.literal('unload_group'),
      group_id: GroupRef,
      device_id: DeviceRefSchema.optional(),
      force: z.boolean().optional()
    })
  }
}

export const STRICT_CONTROL_SCHEMAS = controlShapes(true)
export const LOOSE_CONTROL_SCHEMAS = controlShapes(false)
export type ControlType = keyof typeof STRICT_CONTROL_SCHEMAS
export type ControlMessage = z.output<(typeof STRICT_CONTROL_SCHEMAS)[ControlType]>
export const CONTROL_TYPES = Object.keys(STRICT_CONTROL_SCHEMAS) as ControlType[]

export function isControlType(type: unknown): type is ControlType {
  return typeof type === 'string' && (CONTROL_TYPES as string[]).includes(type)
}

export function isControlMessage<M extends { type: string }>(m: M): m is M & ControlMessage {
  return isControlType(m.type)
}

/** The "current" model of the predecessor: global, changed by a switch. */
export interface ControlSession {
  current: CurrentModel | null
}

/** A reply: the predecessor's message, or an error to send in the socket's own error shape. */
export type ControlReply =
  | { kind: 'message'; message: Record<string, unknown> }
  | {
      kind: 'error'
      /** The predecessor's message type for this failure (`error`, `model_load_error`, …). */
      type: string
      error: SerializedError
      extra: Record<string, unknown>
    }

/** Runs the /api/v2 endpoint at `method path` with `body`, as its HTTP route would. */
export async function callEndpoint(
  ctx: EndpointContext,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: Record<string, unknown>,
  query?: URLSearchParams
): Promise<Record<string, unknown>> {
  const match = matchEndpoint(endpoints, method, path)
  if (!match || 'allowed' in match) throw new Error(`no endpoint ${method} ${path}`)
  const accepted = match.endpoint.accept(body)
  if (!accepted.ok) {
    const { message, field } = describeZodError(accepted.error)
    throw new ApiFailure(400, { code: 'invalid_input', message, ...(field ? { field } : {}) })
  }
  const answer = await accepted.run(
    { raw: body ?? {}, params: match.params, ...(query ? { query } : {}) },
    ctx
  )
  return (answer.wire ? answer.body : toWire(answer.body)) as Record<string, unknown>
}

function errorReply(type: string, err: unknown, extra: Record<string, unknown> = {}): ControlReply {
  return { kind: 'error', type, error: toApiFailure(err).error, extra }
}

const message = (m: Record<string, unknown>): ControlReply => ({ kind: 'message', message: m })

/** The model groups list with the session's current model (or the first resident one). */
export async function modelGroupsList(
  ctx: EndpointContext,
  session: ControlSession
): Promise<Record<string, unknown>> {
  const { snapshot } = await stateOf(ctx)
  return seedModelGroupsList(
    snapshot.devices,
    snapshot.library,
    session.current ?? firstResidentModel(snapshot.devices, snapshot.library)
  )
}

/** Runs one control message; the replies to send to the socket that asked, in order. */
export async function runControl(
  m: ControlMessage,
  ctx: EndpointContext,
  session: ControlSession
): Promise<ControlReply[]> {
  switch (m.type) {
    case 'switch_model':
    case 'switch_model_grouped': {
      try {
        const r = await callEndpoint(ctx, 'POST', '/models/switch', { model_id: m.model_id })
        const lens = await resolveLens(m.model_id, ctx)
        session.current = { groupId: lens.groupId, modelId: String(r.model_id) }
        const { snapshot } = await stateOf(ctx)
        const info = seedModelInfo(snapshot.library, lens.groupId, lens.lensId)
        return [
          message({
            type: 'model_switch_complete',
            model_id: r.model_id,
            device_id: r.device_id,
            device: r.device,
            group_id: r.group_id,
            message: r.message,
            model_info: info,
            generation_config: GENERATION_CONFIG
          })
        ]
      } catch (err) {
        return [errorReply('model_switch_error', err, { model_id: m.model_id })]
      }
    }
    case 'load_model': {
      try {
        const r = await callEndpoint(ctx, 'POST', '/models/load', {
          model_id: m.model_id,
          ...(m.device_id !== undefined && m.device_id !== null ? { device_id: m.device_id } : {})
        })
        const lens = await resolveLens(m.model_id, ctx)
        const { snapshot } = await stateOf(ctx)
        return [
          message({
            type: 'model_loaded',
            model_id: r.model_id,
            device_id: r.device_id,
            group_id: r.group_id,
            job_id: r.job_id,
            placement: r.placement,
            model_info: seedModelInfo(snapshot.library, lens.groupId, lens.lensId),
            generation_config: GENERATION_CONFIG
          })
        ]
      } catch (err) {
        return [errorReply('model_load_error', err, { model_id: m.model_id })]
      }
    }
    case 'load_group':
    case 'preload_group': {
      try {
        const device =
          m.type === 'load_group' && m.device_id !== undefined && m.device_id !== null
            ? { device_id: m.device_id }
            : {}
        const r = await callEndpoint(ctx, 'POST', '/groups/load', {
          group_id: m.group_id,
          ...device
        })
        const { snapshot } = await stateOf(ctx)
        const g = snapshot.library.groups.find((x) => x.groupId === m.group_id)
        const loaded = g?.lenses.map((l) => `${m.group_id}/${l.id}`) ?? []
        return [
          message({
            type: m.type === 'load_group' ? 'group_loaded' : 'group_preload_complete',
            group_id: m.group_id,
            device_id: r.device_id,
            job_id: r.job_id,
            loaded_models: loaded,
            message: `Successfully loaded group ${m.group_id} on device ${String(r.device_id)}`
          })
        ]
      } catch (err) {
        return [
          errorReply(m.type === 'load_group' ? 'error' : 'group_preload_error', err, {
            group_id: m.group_id
          })
        ]
      }
    }
    case 'unload_group': {
      try {
        const r = await callEndpoint(ctx, 'POST', '/groups/unload', {
          group_id: m.group_id,
          ...(m.device_id !== undefined ? { device_id: m.device_id } : {}),
          ...(m.force !== undefined ? { force: m.force } : {})
        })
        const { snapshot } = await stateOf(ctx)
        const g = snapshot.library.groups.find((x) => x.groupId === m.group_id)
        return [
          message({
            type: 'group_unload_complete',
            group_id: m.group_id,
            group_name: g?.name ?? m.group_id,
            unloaded: r.unloaded,
            message: r.message
          })
        ]
      } catch (err) {
        return [errorReply('group_unload_error', err, { group_id: m.group_id })]
      }
    }
    case 'clear_device': {
      try {
        const id = typeof m.device_id === 'number' ? String(m.device_id) : m.device_id
        const r = await callEndpoint(
          ctx,
          'DELETE',
          `/devices/${encodeURIComponent(id)}/clear`,
          undefined,
          new URLSearchParams(m.force ? { force: 'true' } : {})
        )
        return [
          message({
            type: 'device_cleared',
            device_id: m.device_id,
            device: r.device,
            unloaded: r.unloaded,
            kept: r.kept,
            message: r.message
          })
        ]
      } catch (err) {
        return [errorReply('error', err, { device_id: m.device_id })]
      }
    }
    case 'get_model_info': {
      try {
        const r = await callEndpoint(ctx, 'GET', `/models/${encodeURIComponent(m.model_id)}/info`)
        return [message({ ...r, type: 'model_info', model_id: r.model_id })]
      } catch (err) {
        return [errorReply('error', err, { model_id: m.model_id })]
      }
    }
    case 'list_model_groups':
      return [message(await modelGroupsList(ctx, session))]
    case 'list_models': {
      const { snapshot } = await stateOf(ctx)
      return [
        message({
          type: 'models_list',
          models: seedModels(snapshot.library),
          current_model: session.current?.modelId ?? null
        })
      ]
    }
  }
}
