import { describe, expect, it } from 'vitest'
import { measuredLoadBytes } from './residency'

const MB = 1024 ** 2

describe('measuredLoadBytes: what a load costs on the CPU', () => {
  it.each([
    [
      'a fresh load: the RSS growth',
      { rssBeforeBytes: 100 * MB, rssAfterBytes: 130 * MB },
      30 * MB
    ],
    [
      'a fresh load during which RSS fell counts nothing',
      { rssBeforeBytes: 100 * MB, rssAfterBytes: 99 * MB },
      0
    ],
    [
      'a reload from the host cache: the bytes taken out plus the growth',
      {
        rssBeforeBytes: 100 * MB,
        rssAfterBytes: 101 * MB,
        cacheBytesBefore: 3 * MB,
        cacheBytesAfter: 0
      },
      4 * MB
    ],
    [
      // Found by reloadCache.test: the garbage collector handed back 2.6 MB during a 2.8 MB reload.
      'a reload during which RSS fell still counts what it took from the cache',
      {
        rssBeforeBytes: 100 * MB,
        rssAfterBytes: 97.4 * MB,
        cacheBytesBefore: 2.8 * MB,
        cacheBytesAfter: 0
      },
      2.8 * MB
    ],
    [
      'a load that put nothing in or took nothing out of the cache ignores it',
      {
        rssBeforeBytes: 100 * MB,
        rssAfterBytes: 110 * MB,
        cacheBytesBefore: 5 * MB,
        cacheBytesAfter: 5 * MB
      },
      10 * MB
    ],
    [
      'a cache that grew during the load (another group evicted into it) takes nothing away',
      {
        rssBeforeBytes: 100 * MB,
        rssAfterBytes: 110 * MB,
        cacheBytesBefore: 5 * MB,
        cacheBytesAfter: 7 * MB
      },
      10 * MB
    ]
  ])('%s', (_name, m, expected) => {
    expect(measuredLoadBytes(m)).toBeCloseTo(expected, 0)
  })
})
