import { parseArgs } from 'node:util'

export interface HostArgs {
  host: string
  port: number
  rendererDir?: string
  /** Scripting API config file (a fixed token for a long-running server). */
  apiConfig?: string
}

export const HOST_USAGE =
  'usage: npm run serve -- [--port N] [--host ADDR] [--api-config FILE]   (default 127.0.0.1, a random free port)'

/** Parses `--port N --host ADDR [--renderer DIR]`; throws with a readable message otherwise. */
export function parseHostArgs(argv: readonly string[]): HostArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      renderer: { type: 'string' },
      'api-config': { type: 'string' }
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
  return { host, port, rendererDir: values.renderer, apiConfig: values['api-config'] }
}
