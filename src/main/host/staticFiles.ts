import { readFile, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, resolve, sep } from 'node:path'
import { eventChannelNames } from '@shared/ipc/contract'
import { createBridgeScript } from './bridgeScript'
import { sendText } from '../http/replies'
import type { RouteHandler } from '../http/server'

const MIME: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8'
}

export const BRIDGE_PATH = '/bridge.js'

/**
 * The host's policy, sent as a header: same origin for everything, plus the WebSocket on this very
 * host and port (`'self'` covers ws: only in newer CSP implementations, so it is named outright).
 */
export function contentSecurityPolicy(hostHeader: string): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self' ws://${hostHeader}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'"
  ].join('; ')
}

/**
 * The built index.html, made for the browser: its CSP meta (written for Electron's file:// page)
 * gives way to the header above, and /bridge.js runs before the app so `window.api` exists when
 * the renderer starts.
 */
export function prepareIndexHtml(html: string): string {
  const withoutMeta = html.replace(
    /<meta\s+http-equiv=["']Content-Security-Policy["'][^>]*>\s*/i,
    ''
  )
  const tag = `<script src="${BRIDGE_PATH}"></script>`
  const at = withoutMeta.search(/<script\b/i)
  if (at >= 0) return `${withoutMeta.slice(0, at)}${tag}\n    ${withoutMeta.slice(at)}`
  return withoutMeta.replace(/<\/head>/i, `  ${tag}\n  </head>`)
}

function securityHeaders(req: IncomingMessage): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy(req.headers.host ?? '127.0.0.1'),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'x-frame-options': 'DENY'
  }
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  body: string | Buffer,
  contentType: string,
  cache: string
): void {
  res.writeHead(200, {
    ...securityHeaders(req),
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': cache
  })
  res.end(req.method === 'HEAD' ? undefined : body)
}

/** Serves the built renderer (out/renderer) read-only, with the bridge injected. */
export function createStaticRoute(rootDir: string): RouteHandler {
  const root = resolve(rootDir)
  const bridgeScript = createBridgeScript(eventChannelNames)
  let indexHtml: string | undefined

  return async (req, res, url) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, 'method not allowed')
      return true
    }
    if (url.pathname === BRIDGE_PATH) {
      send(req, res, bridgeScript, MIME['.js']!, 'no-store')
      return true
    }
    if (url.pathname === '/' || url.pathname === '/index.html') {
      indexHtml ??= prepareIndexHtml(await readFile(resolve(root, 'index.html'), 'utf8'))
      send(req, res, indexHtml, MIME['.html']!, 'no-store')
      return true
    }
    let relative: string
    try {
      relative = decodeURIComponent(url.pathname)
    } catch {
      return false
    }
    const file = resolve(root, `.${relative}`)
    if (!file.startsWith(root + sep) || relative.includes('\0')) return false
    const info = await stat(file).catch(() => undefined)
    if (!info?.isFile()) return false
    const type = MIME[extname(file).toLowerCase()] ?? 'application/octet-stream'
    // Vite names assets by content hash, so they can be cached for good.
    const cache = relative.startsWith('/assets/')
      ? 'public, max-age=31536000, immutable'
      : 'no-cache'
    send(req, res, await readFile(file), type, cache)
    return true
  }
}
