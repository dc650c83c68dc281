/**
 * Reading a request, the same way for every route of the server: headers, the bearer token, a
 * size-limited body.
 */
import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** Accepts any of `tokens`, compared in constant time (lengths leak, contents do not). */
export function tokenMatches(candidate: string | undefined, tokens: readonly string[]): boolean {
  if (!candidate) return false
  const given = Buffer.from(candidate)
  let ok = false
  for (const token of tokens) {
    const expected = Buffer.from(token)
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true
  }
  return ok
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const auth = firstHeader(req.headers.authorization)
  const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null
  return m ? m[1] : undefined
}

/** The body was larger than the route accepts. */
export class BodyTooLarge extends Error {}

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(firstHeader(req.headers['content-length']) ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) throw new BodyTooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new BodyTooLarge()
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** Where every path is resolved; only its path and query are ever used. */
const TARGET_BASE = 'http://workbench.invalid'

export type RequestTarget = { ok: true; url: URL } | { ok: false; reason: string }

/**
 * The request target as a URL, or why it is not one this server answers. Only the origin form
 * (`/path?query`) is accepted: `//host/…` and `/\host` would parse as another authority, and
 * the absolute and asterisk forms name no path of ours. Checked before any route sees the request.
 */
export function parseRequestTarget(raw: string | undefined): RequestTarget {
  if (raw === undefined || raw === '') return { ok: false, reason: 'empty request target' }
  if (raw.length > 8192) return { ok: false, reason: 'request target longer than 8192 bytes' }
  if (!raw.startsWith('/')) return { ok: false, reason: 'request target must start with /' }
  if (raw.startsWith('//')) return { ok: false, reason: 'request target must not start with //' }
  // Control characters, spaces and backslashes: WHATWG URL parsing would quietly rewrite them
  // (a backslash counts as a slash), so the path a route sees would differ from the one sent.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\]/.test(raw))
    return { ok: false, reason: 'request target holds a space, a control character or a \\' }
  let url: URL
  try {
    url = new URL(raw, TARGET_BASE)
  } catch {
    return { ok: false, reason: 'request target is not a valid path' }
  }
  if (url.origin !== TARGET_BASE) return { ok: false, reason: 'request target names a host' }
  return { ok: true, url }
}

/**
 * Why the request's headers cannot be trusted, or undefined: a repeated `Host` (Node keeps the
 * first one only, so two parties could read two different hosts from one request).
 */
export function malformedHeaders(req: Pick<IncomingMessage, 'rawHeaders'>): string | undefined {
  let hosts = 0
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]?.toLowerCase() === 'host') hosts++
  }
  if (hosts > 1) return `${hosts} Host headers (exactly one is allowed)`
  return undefined
}
