/**
 * Headless host entry (plain Node, never Electron): `node out/main/host.js --port N --host ADDR`.
 * Prints exactly one line with the URL to open, token included.
 */
import { loadApiConfig, type ApiOptions } from '../api'
import { HOST_USAGE, parseHostArgs, type HostArgs } from './args'
import { isLoopbackAddress } from '../http/server'
import { startHost } from './startHost'

async function main(): Promise<void> {
  let args: HostArgs
  let api: ApiOptions | undefined
  try {
    args = parseHostArgs(process.argv.slice(2))
    const apiConfig = args.apiConfig ?? process.env.TALKATIVE_API_CONFIG
    if (apiConfig) api = loadApiConfig(apiConfig)
    if (args.compatOrigins) api = { ...api, compatOrigins: args.compatOrigins }
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${HOST_USAGE}`)
    process.exitCode = 2
    return
  }
  if (!isLoopbackAddress(args.host)) {
    console.warn(
      `warning: --host ${args.host} is not a loopback address: anyone who can reach it and ` +
        'learns the token can drive this Workbench'
    )
  }
  const host = await startHost({
    host: args.host,
    port: args.port,
    rendererDir: args.rendererDir,
    api
  })
  console.log(`Talkative Workbench (headless host): ${host.url}`)

  const shutdown = (): void => {
    void host.stop().finally(() => process.exit(0))
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
}

main().catch((err: unknown) => {
  console.error(`host failed to start: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
