import { describe, expect, it } from 'vitest'
import { createUrlTrust } from './urlTrust'

describe('createUrlTrust', () => {
  it('trusts exactly the built page, whatever its query or hash', () => {
    const trust = createUrlTrust({ file: '/opt/app/out/renderer/index.html' })
    expect(trust('file:///opt/app/out/renderer/index.html')).toBe(true)
    expect(trust('file:///opt/app/out/renderer/index.html#/devices')).toBe(true)
    expect(trust('file:///opt/app/out/renderer/other.html')).toBe(false)
    expect(trust('file:///tmp/index.html')).toBe(false)
    expect(trust('https://example.com/')).toBe(false)
    expect(trust('not a url')).toBe(false)
  })

  it('trusts the dev server origin only when one is configured', () => {
    const trust = createUrlTrust({ file: '/a/index.html', devServerUrl: 'http://localhost:5173/' })
    expect(trust('http://localhost:5173/index.html')).toBe(true)
    expect(trust('http://localhost:5174/')).toBe(false)
    expect(createUrlTrust({ file: '/a/index.html' })('http://localhost:5173/')).toBe(false)
  })
})
