/**
 * What to tell a person whose page never reached the Workbench: in a browser on the headless host
 * that is nearly always the address (the host makes a new token at every launch and accepts only
 * the URL it printed); in the Electron app the host is in-process, so it is a real failure.
 */
export interface ConnectionProblem {
  title: string
  body: string
  /** A hint with the address to use, when one can be given. */
  hint: string | null
}

export function connectionProblem(input: {
  /** The first `system:state` failed and no state was ever received. */
  neverConnected: boolean
  errorMessage: string
  /** The page was served by the headless host (a browser, not the Electron window). */
  headless: boolean
  /** The page URL carries `?token=`. */
  tokenInUrl: boolean
  origin: string
}): ConnectionProblem | null {
  if (!input.neverConnected) return null
  if (!input.headless) {
    return {
      title: 'The Workbench could not start its services',
      body: input.errorMessage,
      hint: 'Restart the app; if it happens again, run it from a terminal to see why.'
    }
  }
  if (!input.tokenInUrl) {
    return {
      title: 'This address needs the token printed by the host',
      body: 'The headless host only answers pages opened with the URL it printed when it started, token included.',
      hint: `Open the URL the host printed, ${input.origin}/?token=…`
    }
  }
  return {
    title: 'This token is not the one the host printed',
    body: 'The host makes a new token every time it starts, so an address from an earlier launch no longer works.',
    hint: `Open the URL the host printed last, ${input.origin}/?token=…`
  }
}
