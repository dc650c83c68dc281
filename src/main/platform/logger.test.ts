import { afterEach, describe, expect, it } from 'vitest'
import { createLogger, setLogSink, type LogEntry } from './logger'

let restore: (() => void) | undefined
afterEach(() => restore?.())

describe('logger', () => {
  it('writes one entry per event with its scope and the error message', () => {
    const seen: LogEntry[] = []
    restore = setLogSink((e) => seen.push(e))
    const log = createLogger('devices')
    log.warn('cancel not delivered', new Error('channel closed'))
    log.info('started')
    expect(seen).toEqual([
      { level: 'warn', scope: 'devices', message: 'cancel not delivered', error: 'channel closed' },
      { level: 'info', scope: 'devices', message: 'started' }
    ])
  })

  it('a .catch handler from failed() logs what was being done instead of swallowing it', async () => {
    const seen: LogEntry[] = []
    restore = setLogSink((e) => seen.push(e))
    const log = createLogger('api')
    await Promise.reject(new Error('gone')).catch(log.failed('cancelling job-1', 'debug'))
    expect(seen).toEqual([
      { level: 'debug', scope: 'api', message: 'cancelling job-1 failed', error: 'gone' }
    ])
  })

  it('drops entries below the threshold and survives a sink that throws', () => {
    const seen: LogEntry[] = []
    restore = setLogSink((e) => seen.push(e), 'warn')
    const log = createLogger('x')
    log.debug('noise')
    log.error('kept')
    expect(seen.map((e) => e.message)).toEqual(['kept'])
    restore()
    restore = setLogSink(() => {
      throw new Error('broken sink')
    })
    expect(() => log.error('still fine')).not.toThrow()
  })
})
