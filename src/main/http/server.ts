import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { networkInterfaces, hostname as machineHostname } from 'node:os'
import type { Duplex } from 'node:stream'
import { createLogger } from '../platform/logger'
import { runGuarded } from '../platform/boundary'
import { refuseUpgrade, sendText } from './replies'
import {
  bearerToken,
  firstHeader,
  malformedHeaders,
  parseRequestTarget,
  tokenMatches
} from './requests'

const log = createLogger('http')

/** Answers a request and returns true, or returns false to let the next route try. */
export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL
) => boolean | Promise<boolean>

export type UpgradeHandler = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  url: URL
) => void | Promise<void>

export interface HttpHostOptions {
  /** Address to bind; loopback unless the user asks otherwise. */
  host?: string
  /** 0 picks a free port. */
  port?: number
  /** Fixed token for tests; a fresh random one per launch otherwise. */
  token?: string
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]', '::1']

export function isLoopbackAddress(address: string): boolean {
  return (
    address === 'localhost' ||
    address === '::1' ||
    address === '[::1]' ||
    /^127(\.\d{1,3}){3}$/.test(address)
  )
}

function formatHostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/**
 * The headless host's HTTP server. Other features register on it rather than opening servers of
 * their own: `addRoute('/api/v2/', handler)` for HTTP and `addUpgrade('/api/v2/ws', handler)` for
 * WebSockets. Every request first passes the Host check (DNS rebinding); upgrades must then pass
 * their own checks (`isAllowedOrigin`, `hasValidToken`) before accepting.
 */
export class HttpHost {
  readonly token: string
  readonly bindHost: string
  readonly #requestedPort: number
  readonly #server: Server
  readonly #routes: Array<{ prefix: string; handler: RouteHandler }> = []
  readonly #upgrades = new Map<string, UpgradeHandler>()
  #allowedHostNames = new Set<string>()
  #port = 0

  constructor(options: HttpHostOptions = {}) {
    this.bindHost = options.host ?? '127.0.0.1'
    this.#requestedPort = options.port ?? 0
    this.token = options.token ?? randomBytes(24).toString('base64url')
    // The two entry points of the server, each inside its error boundary (docs/architecture.md).
    this.#server = createServer((req, res) => void this.#onRequest(req, res))
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onUpgrade(req, socket, head)
    )
    this.#server.on('error', (err) => log.error('the HTTP server failed', err))
  }

  get port(): number {
    return this.#port
  }

  get server(): Server {
    return this.#server
  }

  /** Loopback by default; a LAN address is the user's explicit choice (and warned about). */
  get isLoopbackOnly(): boolean {
    return isLoopbackAddress(this.bindHost)
  }

  /** The URL a user opens, token included. */
  get url(): string {
    const shown =
      this.bindHost === '0.0.0.0' || this.bindHost === '::' ? '127.0.0.1' : this.bindHost
    return `http://${formatHostForUrl(shown)}:${this.#port}/?token=${encodeURIComponent(this.token)}`
  }

  /** Routes are tried in registration order; prefixes are matched against the path. */
  addRoute(prefix: string, handler: RouteHandler): void {
    this.#routes.push({ prefix, handler })
  }

  addUpgrade(path: string, handler: UpgradeHandler): void {
    if (this.#upgrades.has(path)) throw new Error(`an upgrade handler for ${path} exists already`)
    this.#upgrades.set(path, handler)
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolvePromise, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#requestedPort, this.bindHost, () => {
        this.#server.off('error', reject)
        resolvePromise()
      })
    })
    this.#port = (this.#server.address() as AddressInfo).port
    this.#allowedHostNames = this.#computeAllowedHostNames()
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections?.()
    await new Promise<void>((resolvePromise) => this.#server.close(() => resolvePromise()))
  }

  /**
   * Host header check against DNS rebinding: a page on evil.example resolving to 127.0.0.1 still
   * sends `Host: evil.example`.
   */
  isAllowedHost(req: IncomingMessage): boolean {
    const host = firstHeader(req.headers.host)
    if (!host) return false
    return this.#allowedHostNames.has(host.toLowerCase())
  }

  /** Browsers always send Origin on WebSocket upgrades; it must be this server itself. */
  isAllowedOrigin(req: IncomingMessage): boolean {
    const origin = firstHeader(req.headers.origin)
    if (!origin) return false
    let parsed: URL
    try {
      parsed = new URL(origin)
    } catch {
      return false
    }
    return parsed.protocol === 'http:' && this.#allowedHostNames.has(parsed.host.toLowerCase())
  }

  /** Token from `?token=` or `Authorization: Bearer`, compared in constant time. */
  hasValidToken(req: IncomingMessage, url: URL): boolean {
    return tokenMatches(url.searchParams.get('token') ?? bearerToken(req), [this.token])
  }

  #computeAllowedHostNames(): Set<string> {
    const names = new Set<string>()
    const add = (name: string): void => {
      names.add(`${formatHostForUrl(name).toLowerCase()}:${this.#port}`)
    }
    for (const name of LOOPBACK_NAMES) add(name)
    if (!this.isLoopbackOnly) {
      add(this.bindHost)
      if (this.bindHost === '0.0.0.0' || this.bindHost === '::') {
        add(machineHostname())
        for (const list of Object.values(networkInterfaces())) {
          for (const entry of list ?? []) add(entry.address)
        }
      }
    }
    return names
  }

  /** Why the request is malformed (400), or its URL. Checked before anything else. */
  #checkRequest(req: IncomingMessage): { ok: true; url: URL } | { ok: false; reason: string } {
    const headers = malformedHeaders(req)
    if (headers) return { ok: false, reason: headers }
    return parseRequestTarget(req.url)
  }

  /**
   * The boundary of every HTTP request: a malformed request is a 400, a route that throws is
   * logged and answered 500 without its message (it may quote paths or internals), and the server
   * goes on serving either way.
   */
  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const what = (): string => `${req.method} ${String(req.url).slice(0, 200)}`
    try {
      const checked = this.#checkRequest(req)
      if (!checked.ok) {
        req.resume()
        sendText(res, 400, `bad request: ${checked.reason}`)
        return
      }
      if (!this.isAllowedHost(req)) {
        req.resume()
        sendText(res, 421, 'unexpected Host header')
        return
      }
      for (const route of this.#routes) {
        if (!checked.url.pathname.startsWith(route.prefix)) continue
        if (await route.handler(req, res, checked.url)) return
      }
      sendText(res, 404, 'not found')
    } catch (err) {
      log.error(`${what()} failed`, err)
      try {
        if (!res.headersSent) sendText(res, 500, 'internal error (logged by the Workbench)')
        else res.destroy()
      } catch (replyError) {
        log.error(`answering the failure of ${what()} failed`, replyError)
      }
    }
  }

  /**
   * The boundary of every upgrade: the raw socket gets an error listener first (Node removes its
   * own before the 'upgrade' event, so an ECONNRESET would otherwise end the process), a
   * malformed request is refused with 400, and a handler that throws or rejects is logged and its
   * socket refused.
   */
  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => log.debug('an upgrade socket failed', err))
    const what = (): string => `upgrade ${String(req.url).slice(0, 200)}`
    runGuarded(
      log,
      what,
      () => {
        const checked = this.#checkRequest(req)
        if (!checked.ok) return refuseUpgrade(socket, 400, 'Bad Request')
        if (!this.isAllowedHost(req)) return refuseUpgrade(socket, 421, 'Misdirected Request')
        const handler = this.#upgrades.get(checked.url.pathname)
        if (!handler) return refuseUpgrade(socket, 404, 'Not Found')
        return handler(req, socket, head, checked.url)
      },
      () => refuseUpgrade(socket, 500, 'Internal Server Error')
    )
  }
}
