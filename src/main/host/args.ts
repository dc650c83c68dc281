import { parseArgs } from 'node:util'
import { parseAllowedOrigin } from '../api'

export interface HostArgs {
  host: string
  port: number
  rendererDir?: string
  /** Scripting API config file (a fixed token for a long-running server). */
  apiConfig?: string
  /**
   * `--compat`: the predecessor's tokenless routes for its own browser frontend, from the origins
   * of `--allow-origin` (repeatable). Absent when compat mode is off.
   */
  compatOrigins?: string[]
}

export const HOST_USAGE =
  'usage: npm run serve -- [--port N] [--host ADDR] [--api-config FILE] [--compat --allow-origin URL ...]   (default 127.0.0.1, a random free port)'

/** Parses `--port N --host ADDR [--renderer DIR]`; throws with a readable message otherwise. */
export function parseHostArgs(argv: readonly string[]): HostArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      renderer: { type: 'string' },
      'api-config': { type: 'string' },
      compat: { type: 'boolean' },
      'allow-origin': { type: 'string', multiple: true }
    },
    strict: true,
    allowPositionals: false
  })
  const port = values.port === undefined ? 0 : Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be an integer from 0 to 65535, got ${JSON.stringify(values.port)}`)
  }
  const host = values.host ?? '127.0.0.1'
  if (!host.trim()) throw new Error('--host must not be empty')
  const origins = (values['allow-origin'] ?? []).map(parseAllowedOrigin)
  if (origins.length && !values.compat) {
    throw new Error(
      "--allow-origin only means something with --compat (the predecessor's frontend)"
    )
  }
  return {
    host,
    port,
    rendererDir: values.renderer,
    apiConfig: values['api-config'],
    ...(values.compat ? { compatOrigins: origins } : {})
  }
}
