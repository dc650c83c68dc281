/* eslint-disable @typescript-eslint/no-explicit-any -- JSON from the wire; the assertions check its shape */
/**
 * A client written against the predecessor: every request its description documents for /api/v2
 * (routes and WebSocket control messages, with its request bodies) replayed against a running
 * headless host (demo group, two virtual CPU devices, real workers), and each answer checked for
 * the predecessor's response shape. Where the Workbench adds fields, the predecessor's are still
 * there; docs/api.md lists where it deliberately differs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, GROUP, socket, startApiHost, type ApiHost } from './helpers'

const LENS = `${GROUP}/words-l1`
let h: ApiHost

beforeAll(async () => {
  h = await startApiHost()
}, 120_000)

afterAll(async () => {
  await h?.stop()
})

/** Keys every object of `body` must have (the predecessor's names). */
function hasKeys(body: any, keys: string[]): void {
  expect(body, JSON.stringify(body)).toBeTypeOf('object')
  expect(Object.keys(body)).toEqual(expect.arrayContaining(keys))
}

describe("the predecessor's /api/v2 routes", () => {
  it('lists models and groups with its fields', async () => {
    const models = await api(h, 'GET', '/models')
    expect(models.status).toBe(200)
    expect(Array.isArray(models.body)).toBe(true)
    const lens = models.body.find((m: any) => m.id === LENS)
    hasKeys(lens, [
      'id',
      'name',
      'description',
      'dataset',
      'architecture',
      'memory_estimate',
      'locations'
    ])
    expect(lens.memory_estimate).toBeGreaterThan(0)

    const groups = await api(h, 'GET', '/groups')
    expect(groups.status).toBe(200)
    const group = groups.body.find((g: any) => g.id === GROUP)
    hasKeys(group, ['id', 'name', 'models', 'memory_estimate_gb'])
    expect(group.models).toContain(LENS)
  })

  it('loads a model and a group, then reports memory, the current model and the info', async () => {
    const load = await api(h, 'POST', '/models/load', { model_id: LENS, device_id: 'cpu:0' })
    expect(load.status).toBe(200)
    hasKeys(load.body, ['status', 'model_id', 'device', 'device_id', 'group_id', 'message'])
    expect(load.body).toMatchObject({ status: 'loaded', group_id: GROUP, device: 'cpu:0' })

    const group = await api(h, 'POST', '/groups/load', { group_id: GROUP, device_id: 'cpu:0' })
    expect(group.status).toBe(200)
    hasKeys(group.body, ['group_id', 'device_id', 'message'])

    const memory = await api(h, 'GET', '/devices/cpu:0/memory')
    expect(memory.status).toBe(200)
    hasKeys(memory.body, [
      'device_id',
      'total_gb',
      'free_gb',
      'allocated_gb',
      'reserved_gb',
      'models_loaded'
    ])
    expect(memory.body.models_loaded).toBeGreaterThan(0)
    expect(memory.body.allocated_gb).toBeGreaterThan(0)

    const all = await api(h, 'GET', '/models/memory')
    expect(all.status).toBe(200)
    expect(all.body.devices.map((d: any) => d.device)).toEqual(['cpu:0', 'cpu:1'])

    const current = await api(h, 'GET', '/current')
    expect(current.status).toBe(200)
    expect(current.body).toMatchObject({ group_id: GROUP, device: 'cpu:0' })

    const info = await api(h, 'GET', `/models/${encodeURIComponent(LENS)}/info`)
    expect(info.status).toBe(200)
    hasKeys(info.body, [
      'model_id',
      'display_name',
      'layer',
      'auto_batch_size_max',
      'generation_config',
      'loaded',
      'locations',
      'checkpoint'
    ])
    expect(info.body.loaded).toBe(true)
    expect(info.body.locations).toContainEqual({ device_id: 'cpu:0', status: 'loaded' })
  })

  it('switches (deprecated /switch and /models/switch) and preloads a group', async () => {
    const sw = await api(h, 'POST', '/switch', { model_id: LENS })
    expect(sw.status).toBe(200)
    hasKeys(sw.body, ['status', 'model_id', 'device_id', 'group_id', 'message'])
    expect(sw.body.device).toBe('cpu:0')

    const sw2 = await api(h, 'POST', '/models/switch', { model_id: LENS, device_id: 'cpu:1' })
    expect(sw2.status).toBe(200)
    expect(sw2.body).toMatchObject({ model_id: LENS, device: 'cpu:1', group_id: GROUP })

    const pre = await api(h, 'POST', `/groups/${GROUP}/preload`)
    expect(pre.status).toBe(200)
    expect(pre.body).toMatchObject({ group_id: GROUP, preload: true })
    const groups = await api(h, 'GET', '/groups')
    expect(groups.body.find((g: any) => g.id === GROUP).preload).toBe(true)
    const unmark = await api(h, 'POST', '/groups/settings', {
      group_id: GROUP,
      preload: false,
      replicas: { min: 1, max: 2 }
    })
    expect(unmark.status).toBe(200)
    expect(unmark.body).toMatchObject({
      group_id: GROUP,
      preload: false,
      replicas: { min: 1, max: 2 }
    })
  })

  it('processes a prompt with num_predictions', async () => {
    const r = await api(h, 'POST', '/models/process', {
      model_id: LENS,
      prompt: 'The cat sat.',
      num_predictions: 2
    })
    expect(r.status).toBe(200)
    expect(r.body.rows.length).toBeGreaterThan(0)
  })

  it('clears a device (pins kept unless forced) and answers 404 for unknown devices', async () => {
    await api(h, 'POST', '/groups/load', { group_id: GROUP, device_id: 'cpu:1' })
    const pin = await api(h, 'POST', '/groups/pin', { group_id: GROUP, device_id: 'cpu:1' })
    expect(pin.status).toBe(200)
    const kept = await api(h, 'DELETE', '/devices/cpu:1/clear')
    expect(kept.status).toBe(200)
    hasKeys(kept.body, ['device_id', 'message'])
    expect(kept.body.unloaded).toEqual([])
    expect(kept.body.kept).toEqual([{ group_id: GROUP, reason: expect.stringMatching(/^pinned/) }])
    const forced = await api(h, 'DELETE', '/devices/cpu:1/clear?force=true')
    expect(forced.status).toBe(200)
    expect(forced.body.unloaded.map((u: any) => u.group_id)).toEqual([GROUP])
    const after = await api(h, 'GET', '/devices/cpu:1/memory')
    expect(after.body.models_loaded).toBe(0)

    expect((await api(h, 'DELETE', '/devices/7/clear')).status).toBe(404)
    expect((await api(h, 'GET', '/devices/cuda:3/memory')).status).toBe(404)
    const bad = await api(h, 'DELETE', '/devices/cpu:1/clear?force=maybe')
    expect(bad.status).toBe(400)
    expect(bad.body.error.field).toBe('force')
  })
})

describe("the predecessor's WebSocket control messages", () => {
  it('answers each with its reply type and fields', async () => {
    const s = await socket(h)
    try {
      const ask = async (
        message: Record<string, unknown>,
        reply: string,
        also: (m: any) => boolean = () => true
      ): Promise<any> => {
        const from = s.messages.length
        s.send(message)
        return s.next(
          (m) => (m.type === reply && also(m)) || m.type.endsWith('_error') || m.type === 'error',
          60_000,
          from
        )
      }

      const groups = await ask({ type: 'list_model_groups' }, 'model_groups_list')
      expect(groups.type).toBe('model_groups_list')
      hasKeys(groups, ['groups', 'current_group', 'current_model', 'memory_info', 'model_status'])
      const g = groups.groups.find((x: any) => x.group_id === GROUP)
      hasKeys(g, [
        'group_id',
        'group_name',
        'description',
        'base_model',
        'device_info',
        'is_cpu_cached',
        'visible',
        'models'
      ])
      hasKeys(g.models[0], [
        'id',
        'name',
        'layer',
        'auto_batch_size_max',
        'is_loaded',
        'is_gpu_loaded',
        'is_cpu_cached',
        'is_current'
      ])

      const switched = await ask({ type: 'switch_model', model_id: LENS }, 'model_switch_complete')
      expect(switched.type).toBe('model_switch_complete')
      hasKeys(switched, ['model_id', 'device_id', 'group_id', 'message'])
      const after = await ask({ type: 'list_model_groups' }, 'model_groups_list')
      expect(after.current_model).toBe(LENS)
      expect(after.current_group).toBe(GROUP)

      // Every socket also hears the Workbench's own model_loaded broadcast (job_id, placement):
      // the reply to this socket is the one with the predecessor's model_info.
      const loaded = await ask(
        { type: 'load_model', model_id: LENS, device_id: 'cpu:1' },
        'model_loaded',
        (m) => 'model_info' in m
      )
      expect(loaded.type).toBe('model_loaded')
      hasKeys(loaded, ['model_id', 'device_id', 'group_id', 'model_info', 'generation_config'])
      expect(loaded.device_id).toBe('cpu:1')

      const group = await ask(
        { type: 'load_group', group_id: GROUP, device_id: 'cpu:1' },
        'group_loaded'
      )
      expect(group.type).toBe('group_loaded')
      expect(group).toMatchObject({ group_id: GROUP, device_id: 'cpu:1' })

      const info = await ask({ type: 'get_model_info', model_id: LENS }, 'model_info')
      expect(info.type).toBe('model_info')
      hasKeys(info, [
        'model_id',
        'display_name',
        'layer',
        'auto_batch_size_max',
        'generation_config',
        'loaded',
        'locations',
        'checkpoint'
      ])

      const cleared = await ask({ type: 'clear_device', device_id: 'cpu:1' }, 'device_cleared')
      expect(cleared.type).toBe('device_cleared')
      expect(cleared).toMatchObject({ device_id: 'cpu:1' })
      expect(cleared.message).toContain('cpu:1')

      const missing = await ask(
        { type: 'switch_model', model_id: 'no-such-group/x' },
        'model_switch_error'
      )
      expect(missing.type).toBe('model_switch_error')
      expect(missing.model_id).toBe('no-such-group/x')
      expect(missing.error.code).toBe('not_found')

      const badDevice = await ask({ type: 'clear_device', device_id: 9 }, 'device_cleared')
      expect(badDevice.type).toBe('error')
      expect(badDevice.error.code).toBe('not_found')
    } finally {
      s.close()
    }
  })
})
