/**
 * Contract tests over the in-memory transport: the same router and hub every real transport uses,
 * with payloads serialised as on a wire.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HardwareStateSchema } from '@shared/domain/system'
import { eventChannelNames, invokeChannelNames } from '@shared/ipc/contract'
import { AppError } from '@shared/ipc/errors'
import { probeProviders } from '../engine'
import { createServices, type Services } from '../services/createServices'
import { createMemoryClient, type MemoryClient } from './memoryTransport'
import { Router } from '../router/router'
import { EventHub } from '../router/eventHub'

const noNvidiaSmi = async (): Promise<{
  stdout: string
  stderr: string
  exitCode: null
  spawnError: string
}> => ({ stdout: '', stderr: '', exitCode: null, spawnError: 'ENOENT' })

describe('contract over the in-memory transport', () => {
  let services: Services
  let client: MemoryClient

  beforeEach(() => {
    services = createServices({
      runCommand: noNvidiaSmi,
      probeProviders: () => probeProviders(['cpu']),
      pollIntervalMs: 25
    })
    client = createMemoryClient(services.router, services.hub, 'test-client')
  })

  afterEach(async () => {
    client.close()
    await services.dispose()
  })

  it('routes every invoke channel of the contract to a handler', () => {
    expect([...services.router.channels].sort()).toEqual([...invokeChannelNames].sort())
  })

  it('system:state answers with data that matches its output schema', async () => {
    const result = await client.invoke('system:state')
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(HardwareStateSchema.safeParse(result.value).success).toBe(true)
    expect(result.value.cpu.id).toBe('cpu')
  })

  it('accepts the empty object the schema allows', async () => {
    expect((await client.invoke('system:state', {})).ok).toBe(true)
  })

  it.each([
    ['an unexpected key', { verbose: true }, /system:state: .*verbose/],
    ['a string', 'please', /system:state: /],
    ['a number', 42, /system:state: /],
    ['an array', [1, 2], /system:state: /]
  ])('rejects %s as invalid_input, as data', async (_name, payload, message) => {
    const result = await client.invoke('system:state', payload as never)
    expect(result).toEqual({
      ok: false,
      error: expect.objectContaining({
        code: 'invalid_input',
        message: expect.stringMatching(message)
      })
    })
  })

  it('answers an unknown channel with unknown_channel, never a throw', async () => {
    const result = await client.invoke('system:reboot' as never)
    expect(result).toEqual({
      ok: false,
      error: { code: 'unknown_channel', message: 'unknown channel "system:reboot"' }
    })
    const notAString = await services.router.dispatch(42, undefined, { clientId: 't' })
    expect(notAString.ok).toBe(false)
    const proto = await services.router.dispatch('__proto__', undefined, { clientId: 't' })
    expect(proto).toMatchObject({ ok: false, error: { code: 'unknown_channel' } })
  })

  it('turns a handler throw into an error as data (AppError keeps code and field)', async () => {
    const router = new Router({
      'system:state': () => {
        throw new AppError('unavailable', 'probe not ready', { field: 'gpus' })
      }
    })
    const thrower = createMemoryClient(router, new EventHub(), 'x')
    expect(await thrower.invoke('system:state')).toEqual({
      ok: false,
      error: { code: 'unavailable', message: 'probe not ready', field: 'gpus' }
    })
    const crashing = createMemoryClient(
      new Router({
        'system:state': async () => {
          throw new TypeError('cannot read properties of undefined')
        }
      }),
      new EventHub(),
      'y'
    )
    expect(await crashing.invoke('system:state')).toEqual({
      ok: false,
      error: { code: 'internal', message: 'cannot read properties of undefined' }
    })
  })

  it('a channel without a handler is unknown_channel too', async () => {
    const empty = createMemoryClient(new Router({}), new EventHub(), 'z')
    expect(await empty.invoke('system:state')).toMatchObject({
      ok: false,
      error: { code: 'unknown_channel', message: 'channel system:state has no handler' }
    })
  })

  it('pushes system:changed to subscribers and stops after unsubscribe', async () => {
    const received: number[] = []
    const off = client.on('system:changed', (state) => received.push(state.takenAt))
    await expect.poll(() => received.length).toBeGreaterThan(0)
    off()
    const count = received.length
    await new Promise((r) => setTimeout(r, 100))
    expect(received.length).toBe(count)
  })

  it('closing the last client stops the hub subscription (and with it, polling)', () => {
    expect(services.hub.size).toBe(1)
    expect(services.system.polling).toBe(true)
    client.close()
    expect(services.hub.size).toBe(0)
    expect(services.system.polling).toBe(false)
  })

  it('refuses to subscribe to an event channel the contract does not name', () => {
    expect(() => client.on('system:exploded' as never, () => undefined)).toThrow(
      /unknown event channel/
    )
    expect(eventChannelNames).toContain('system:changed')
  })

  it('the hub refuses to emit a payload that breaks the contract', () => {
    const hub = new EventHub()
    expect(() => hub.emit('system:changed', { cpu: 'fast' } as never)).toThrow(
      /does not match the contract/
    )
  })

  it('one failing listener does not stop the others', () => {
    const hub = new EventHub()
    const heard: string[] = []
    hub.subscribe(() => {
      throw new Error('broken client')
    })
    hub.subscribe((channel) => heard.push(channel))
    const state = {
      cpu: {
        id: 'cpu',
        kind: 'cpu',
        name: 'c',
        cores: 1,
        memoryTotalBytes: 1,
        memoryFreeBytes: 1,
        utilization: 0
      },
      gpus: [],
      onnxRuntimeVersion: '1',
      providers: [],
      appVersion: '0',
      takenAt: 1
    } as const
    hub.emit('system:changed', state as never)
    expect(heard).toEqual(['system:changed'])
  })
})
