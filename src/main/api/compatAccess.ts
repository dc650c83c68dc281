/**
 * Compat mode's door: the predecessor's browser frontend sends no token, so its routes (`/ws`,
 * `/api/gpu_stats`, `POST /reset`) accept tokenless callers whose `Origin` is one the user listed
 * with `--allow-origin` (as the predecessor's `ALLOWED_ORIGINS` did), or who send none (a script:
 * browsers always send one). A page from any other origin is refused. Opt-in, and loud.
 */
import type { IncomingMessage } from 'node:http'
import { AppError } from '@shared/ipc/errors'
import { firstHeader } from '../http/requests'

/** `http://localhost:3000` as an origin; anything else (a path, `*`, a bad URL) is refused. */
export function parseAllowedOrigin(text: string): string {
  const field = '--allow-origin'
  if (text.trim() === '*')
    throw new AppError(
      'invalid_input',
      `${field} *: name each origin (e.g. http://localhost:3000)`,
      {
        field
      }
    )
  let url: URL
  try {
    url = new URL(text.trim())
  } catch {
    throw new AppError(
      'invalid_input',
      `${field} ${text}: not a URL (e.g. http://localhost:3000)`,
      {
        field
      }
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new AppError('invalid_input', `${field} ${text}: only http and https origins`, { field })
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username)
    throw new AppError(
      'invalid_input',
      `${field} ${text}: an origin has no path (e.g. ${url.origin})`,
      {
        field
      }
    )
  return url.origin
}

export class CompatAccess {
  readonly origins: ReadonlySet<string>
  readonly #isOwnOrigin: (req: IncomingMessage) => boolean

  constructor(origins: readonly string[], isOwnOrigin: (req: IncomingMessage) => boolean) {
    this.origins = new Set(origins)
    this.#isOwnOrigin = isOwnOrigin
  }

  #origin(req: IncomingMessage): string | undefined {
    return firstHeader(req.headers.origin)
  }

  /** Tokenless access: no Origin (not a browser), a listed origin, or this server's own page. */
  allows(req: IncomingMessage): boolean {
    const origin = this.#origin(req)
    return origin === undefined || this.origins.has(origin) || this.#isOwnOrigin(req)
  }

  /** A browser page from an origin nobody listed. */
  isForeignOrigin(req: IncomingMessage): boolean {
    return this.#origin(req) !== undefined && !this.allows(req)
  }

  /** CORS headers for a listed origin (none for others: the browser then blocks the answer). */
  corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = this.#origin(req)
    if (origin === undefined || !this.origins.has(origin)) return {}
    return { 'access-control-allow-origin': origin, vary: 'Origin' }
  }
}
