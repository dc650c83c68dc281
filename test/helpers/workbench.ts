/**
 * The Workbench's main-side services with real device workers on virtual CPU devices, driven
 * through the contract as a window would: what the integration tests share.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { JobState } from '../../src/shared/domain/jobs'
import type { InvokeResult } from '../../src/shared/ipc/errors'
import { probeProviders } from '../../src/main/engine/ort'
import { ensureDemoBundle } from '../../src/main/engine'
import { createMemoryClient, type MemoryClient } from '../../src/main/ipc/memoryTransport'
import type { DevicesServiceOptions } from '../../src/main/devices/service'
import { createServices, type Services } from '../../src/main/services/createServices'

/** Unwraps a contract result; an error as data becomes a thrown Error with its message. */
export async function ok<T>(p: Promise<InvokeResult<T>>): Promise<T> {
  const r = await p
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

/** Polls `jobs:get` until the job is done, failed or cancelled. */
export async function finished(
  client: MemoryClient,
  jobId: string,
  timeoutMs = 60_000
): Promise<JobState> {
  const start = Date.now()
  for (;;) {
    const s = await ok(client.invoke('jobs:get', { jobId }))
    if (['done', 'failed', 'cancelled'].includes(s.status)) return s
    if (Date.now() - start > timeoutMs) throw new Error(`job ${jobId} still ${s.status}`)
    await new Promise((r) => setTimeout(r, 30))
  }
}

export interface TestWorkbench {
  services: Services
  /** A temporary models folder (the demo group is always in the library besides). */
  modelsDir: string
  client(id: string): MemoryClient
  close(): Promise<void>
}

/**
 * Starts the services on the given virtual devices (one thread each unless said otherwise) with a
 * fresh models folder; `prepareModels` may put bundles in it before the first scan.
 */
export async function startWorkbench(
  devices: DevicesServiceOptions['devices'],
  options: {
    prepareModels?: (modelsDir: string) => Promise<void>
    devicesOptions?: Omit<DevicesServiceOptions, 'devices' | 'modelsDir'>
  } = {}
): Promise<TestWorkbench> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'talkative-test-models-'))
  await ensureDemoBundle()
  await options.prepareModels?.(modelsDir)
  const services = createServices({
    probeProviders: () => probeProviders(['cpu']),
    devices: { modelsDir, devices, watch: false, ...options.devicesOptions }
  })
  const clients: MemoryClient[] = []
  services.start()
  await services.devices.manager()
  return {
    services,
    modelsDir,
    client(id) {
      const c = createMemoryClient(services.router, services.hub, id)
      clients.push(c)
      return c
    },
    async close() {
      for (const c of clients) c.close()
      await services.dispose()
      await rm(modelsDir, { recursive: true, force: true })
    }
  }
}
