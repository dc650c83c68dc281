import { describe, expect, it } from 'vitest'
import { connectionProblem } from './connection'

const base = {
  neverConnected: true,
  errorMessage: 'cannot reach the Workbench host',
  headless: true,
  tokenInUrl: true,
  origin: 'http://127.0.0.1:4000'
}

describe('connection problem screen', () => {
  it('says nothing once the page has connected', () => {
    expect(connectionProblem({ ...base, neverConnected: false })).toBeNull()
  })

  it('tells a browser without a token to open the URL the host printed', () => {
    const p = connectionProblem({ ...base, tokenInUrl: false })!
    expect(p.title).toBe('This address needs the token printed by the host')
    expect(p.hint).toContain('http://127.0.0.1:4000/?token=')
  })

  it('tells a browser with a stale token that the host makes a new one at every launch', () => {
    const p = connectionProblem(base)!
    expect(p.title).toBe('This token is not the one the host printed')
    expect(p.body).toContain('new token every time')
  })

  it('in the desktop app reports the failure itself', () => {
    expect(connectionProblem({ ...base, headless: false })).toMatchObject({
      title: 'The Workbench could not start its services',
      body: 'cannot reach the Workbench host'
    })
  })
})
